//! `ember bench [-m MODEL]... [-p 128,512] [-n 64] [-t 1,2] [-r 5] [--json]`:
//! prompt-processing and generation speed, measured as llama.cpp's
//! `llama-bench` measures them, plus the time to first token from a cold
//! start and the peak RSS of that run.
//!
//! For each model × thread count × test, after one warm-up run, `-r`
//! repetitions each give a tokens/s figure; the table shows their mean ±
//! sample standard deviation.
//! - `ppN`: N prompt tokens (BOS, if the model adds one, then random ids
//!   from a fixed seed) processed from an empty KV cache in forward calls of
//!   `-b` tokens (512, llama-bench's micro-batch).
//! - `tgN`: N tokens fed one at a time from an empty KV cache, each a full
//!   forward pass (the first is BOS, the rest random ids, as llama-bench
//!   does; no sampling, so the figure is the model's decode speed).
//!
//! The timed loops do nothing but the forward calls: the ids are drawn
//! before the clock starts and a forward pass allocates nothing.
//!
//! Cold start (unless `--no-cold-start`): `ember run -m MODEL -p PROMPT -n 1
//! --temp 0 -t T` is re-executed as a child process (this same binary) after
//! one untimed run that warms the page cache; its wall time from spawn to
//! exit (open and map the file, build the tokenizer and the session, process
//! the prompt, sample the first token, exit) is the time to first token, and
//! its `ru_maxrss` (from `wait4`) the peak RSS.

use crate::model_arg;
use anyhow::{bail, Context};
use ember::session::{Session, SessionOptions};
use ember::tokenizer::Tokenizer;
use ember_benches::child::{run_measured, ChildRun};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The prompt of the cold-start run unless `--cold-prompt` says otherwise.
pub const COLD_PROMPT: &str = "The capital of France is";

/// Arguments of `ember bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model names or paths (repeat -m for several) [default: smollm2-135m-instruct].
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    models: Vec<String>,
    /// Prompt lengths, comma-separated (0: no prompt test).
    #[arg(short = 'p', long = "n-prompt", value_name = "N,..", default_value = "128,512")]
    n_prompt: String,
    /// Generation lengths, comma-separated (0: no generation test).
    #[arg(short = 'n', long = "n-gen", value_name = "N,..", default_value = "64")]
    n_gen: String,
    /// Thread counts, comma-separated (0: one per physical core) [default: one per physical core].
    #[arg(short = 't', long = "threads", value_name = "N,..")]
    threads: Option<String>,
    /// Repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long = "repetitions", value_name = "N", default_value_t = 5)]
    reps: usize,
    /// Prompt tokens per forward call.
    #[arg(short = 'b', long = "batch-size", value_name = "N", default_value_t = 512)]
    batch: usize,
    /// Skip the warm-up run of each test.
    #[arg(long = "no-warmup")]
    no_warmup: bool,
    /// Skip the cold-start measurement (time to first token, peak RSS).
    #[arg(long = "no-cold-start")]
    no_cold_start: bool,
    /// Prompt of the cold-start run.
    #[arg(long = "cold-prompt", value_name = "TEXT", default_value = COLD_PROMPT)]
    cold_prompt: String,
    /// Print one JSON object instead of a markdown table.
    #[arg(long)]
    json: bool,
}

/// Parses a comma-separated list of whole numbers (`128,512`), repeats
/// dropped; 0 is a value like any other (no such test for `-p`/`-n`, one
/// thread per core for `-t`). Errors name the flag.
pub fn parse_list(flag: &str, s: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            bail!("{flag}: empty item in the list {s:?} (expected numbers separated by commas, e.g. 128,512)");
        }
        let v: usize = item
            .parse()
            .map_err(|_| anyhow::anyhow!("{flag}: {item:?} is not a non-negative whole number (in {s:?})"))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// One kind of measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    /// `n` prompt tokens in one go.
    Prompt(usize),
    /// `n` tokens one at a time.
    Gen(usize),
}

impl Test {
    /// `pp512`, `tg64`.
    pub fn name(self) -> String {
        match self {
            Test::Prompt(n) => format!("pp{n}"),
            Test::Gen(n) => format!("tg{n}"),
        }
    }

    fn tokens(self) -> usize {
        match self {
            Test::Prompt(n) | Test::Gen(n) => n,
        }
    }
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// A small deterministic generator for the random prompt ids (splitmix64).
struct Ids(u64);

impl Ids {
    fn next(&mut self, n_vocab: usize) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n_vocab as u64) as u32
    }
}

/// The ids a test feeds: BOS first if the model adds one, then random ids
/// from a seed fixed per test, so every run of a test sees the same ids.
fn test_ids(test: Test, n_vocab: usize, bos: Option<u32>) -> Vec<u32> {
    let seed = match test {
        Test::Prompt(n) => 0x5EED_0000 ^ n as u64,
        Test::Gen(n) => 0x6E4E_0000 ^ n as u64,
    };
    let mut rng = Ids(seed);
    (0..test.tokens())
        .map(|i| if i == 0 { bos.unwrap_or_else(|| rng.next(n_vocab)) } else { rng.next(n_vocab) })
        .collect()
}

/// One repetition of `test` from an empty KV cache: wall time of the forward calls.
fn run_once(session: &mut Session<'_>, test: Test, ids: &[u32]) -> anyhow::Result<Duration> {
    session.reset();
    let t0 = Instant::now();
    match test {
        Test::Prompt(_) => session.prefill(ids)?,
        Test::Gen(_) => {
            for id in ids {
                session.prefill(std::slice::from_ref(id))?;
            }
        }
    }
    Ok(t0.elapsed())
}

/// What a model file is: its path, name, size in bytes of tensor data, parameters.
struct ModelInfo {
    path: PathBuf,
    name: String,
    size: u64,
    params: u64,
}

/// Speed figures of one (model, threads, test).
struct Row {
    model: usize,
    threads: usize,
    test: Test,
    samples_ns: Vec<u128>,
    samples_ts: Vec<f64>,
}

/// Cold-start figures of one (model, threads).
struct Cold {
    model: usize,
    threads: usize,
    samples_ms: Vec<f64>,
    peak_rss: Option<u64>,
}

/// Runs `cmd` to completion and measures it (wall time, peak RSS); fails
/// with its stderr if it exits with an error.
fn run_child(cmd: &mut Command) -> anyhow::Result<ChildRun> {
    let r = run_measured(cmd).with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !r.success {
        bail!("{:?} failed:\n{}", cmd.get_program(), r.stderr.trim_end());
    }
    Ok(r)
}

fn describe_model(path: &Path) -> anyhow::Result<(ember::Model, ModelInfo)> {
    if path.is_dir() {
        bail!("{} is a folder, not a GGUF file", path.display());
    }
    let model = ember::Model::open(path).with_context(|| format!("{}", path.display()))?;
    let (mut size, mut params) = (0u64, 0u64);
    for t in model.gguf().tensors() {
        size += t.data.len() as u64;
        params += t.n_elements();
    }
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let name = name.strip_suffix(".gguf").unwrap_or(&name).to_string();
    Ok((model, ModelInfo { path: path.to_path_buf(), name, size, params }))
}

/// Most repetitions of a test: the samples are kept, and a larger count asked
/// for memory up front (`-r 99999999999999999` aborted the process).
const MAX_REPS: usize = 100_000;

/// Runs `ember bench`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.reps == 0 {
        bail!("-r/--repetitions must be at least 1");
    }
    if args.reps > MAX_REPS {
        bail!("-r/--repetitions must be at most {MAX_REPS}, got {}", args.reps);
    }
    if args.batch == 0 {
        bail!("-b/--batch-size must be at least 1");
    }
    let n_prompt = parse_list("-p/--n-prompt", &args.n_prompt)?;
    let n_gen = parse_list("-n/--n-gen", &args.n_gen)?;
    let threads = match &args.threads {
        // 0 is one thread per physical core, as in `ember run -t 0`.
        Some(s) => {
            let mut out: Vec<usize> = Vec::new();
            for t in parse_list("-t/--threads", s)? {
                let t = if t == 0 { ember::threads::physical_cores() } else { t };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            out
        }
        None => vec![ember::threads::physical_cores()],
    };
    let tests: Vec<Test> = n_prompt
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| Test::Prompt(n))
        .chain(n_gen.iter().filter(|&&n| n > 0).map(|&n| Test::Gen(n)))
        .collect();
    if tests.is_empty() && args.no_cold_start {
        bail!("nothing to measure: every -p and -n value is 0 and --no-cold-start is set");
    }
    let names: Vec<&str> = if args.models.is_empty() {
        vec![ember::cache::DEFAULT_MODEL]
    } else {
        args.models.iter().map(|s| s.as_str()).collect()
    };
    // Resolve every model first, so a typo fails before minutes of measuring.
    let paths = names.iter().map(|n| model_arg::resolve(n)).collect::<anyhow::Result<Vec<_>>>()?;

    let mut infos = Vec::new();
    let mut rows = Vec::new();
    let mut colds = Vec::new();
    let mut tier = String::new();
    for (mi, path) in paths.iter().enumerate() {
        let (model, info) = describe_model(path)?;
        // BOS as the model's tokenizer adds it; a file without a tokenizer gets random ids only.
        let bos = Tokenizer::from_gguf(&model.gguf()).ok().and_then(|t| if t.add_bos() { t.bos() } else { None });
        let longest = tests.iter().map(|t| t.tokens()).max().unwrap_or(1);
        for &nt in &threads {
            if !tests.is_empty() {
                let opts = SessionOptions {
                    ctx_len: longest,
                    batch: args.batch.min(longest),
                    threads: nt,
                    ..SessionOptions::default()
                };
                let mut session = Session::new(&model, opts)
                    .with_context(|| format!("creating a session for {} with {nt} thread(s)", info.path.display()))?;
                tier = session.kernels().tier().name().to_string();
                let n_vocab = session.config().n_vocab;
                for &test in &tests {
                    let ids = test_ids(test, n_vocab, bos);
                    if !args.no_warmup {
                        run_once(&mut session, test, &ids).with_context(|| format!("{} (warm-up)", test.name()))?;
                    }
                    let mut samples = Vec::with_capacity(args.reps);
                    for _ in 0..args.reps {
                        samples.push(run_once(&mut session, test, &ids).with_context(|| test.name())?);
                    }
                    rows.push(Row {
                        model: mi,
                        threads: nt,
                        test,
                        samples_ns: samples.iter().map(|d| d.as_nanos()).collect(),
                        samples_ts: samples.iter().map(|d| test.tokens() as f64 / d.as_secs_f64().max(1e-12)).collect(),
                    });
                }
            }
            if !args.no_cold_start {
                colds.push(cold_start(mi, &info.path, nt, &args.cold_prompt, args.reps)?);
            }
        }
        infos.push(info);
    }
    if tier.is_empty() {
        tier = ember_quant::Kernels::detect().map(|k| k.tier().name().to_string()).unwrap_or_default();
    }
    if args.json {
        super::print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&to_json(&infos, &rows, &colds, &tier, &args))?
        ))?;
    } else {
        super::print_stdout(&to_markdown(&infos, &rows, &colds, &tier))?;
    }
    Ok(())
}

/// The cold-start measurement of one (model, threads): one untimed run to
/// warm the page cache, then `reps` timed ones.
fn cold_start(model: usize, path: &Path, threads: usize, prompt: &str, reps: usize) -> anyhow::Result<Cold> {
    let exe = std::env::current_exe().context("finding the ember binary to re-execute")?;
    let cmd = || {
        let mut c = Command::new(&exe);
        c.arg("run").arg("-m").arg(path).args(["-p", prompt, "-n", "1", "--temp", "0", "-t"]).arg(threads.to_string());
        c
    };
    run_child(&mut cmd()).context("cold start: `ember run -n 1` (page-cache warm-up run)")?;
    let mut samples_ms = Vec::with_capacity(reps);
    let mut peak: Option<u64> = None;
    for _ in 0..reps {
        let r = run_child(&mut cmd()).context("cold start: `ember run -n 1`")?;
        samples_ms.push(r.wall.as_secs_f64() * 1000.0);
        peak = r.peak_rss.map(|p| peak.map_or(p, |q| q.max(p)));
    }
    Ok(Cold { model, threads, samples_ms, peak_rss: peak })
}

fn to_json(infos: &[ModelInfo], rows: &[Row], colds: &[Cold], tier: &str, args: &Args) -> serde_json::Value {
    let results: Vec<_> = rows
        .iter()
        .map(|r| {
            let m = &infos[r.model];
            let ns: Vec<f64> = r.samples_ns.iter().map(|&n| n as f64).collect();
            let (avg_ns, stddev_ns) = mean_sd(&ns);
            let (avg_ts, stddev_ts) = mean_sd(&r.samples_ts);
            let (n_prompt, n_gen) = match r.test {
                Test::Prompt(n) => (n, 0),
                Test::Gen(n) => (0, n),
            };
            json!({
                "model_filename": m.path.display().to_string(),
                "model": m.name,
                "model_size": m.size,
                "model_n_params": m.params,
                "n_threads": r.threads,
                "test": r.test.name(),
                "n_prompt": n_prompt,
                "n_gen": n_gen,
                "avg_ns": avg_ns,
                "stddev_ns": stddev_ns,
                "avg_ts": avg_ts,
                "stddev_ts": stddev_ts,
                "samples_ns": r.samples_ns,
                "samples_ts": r.samples_ts,
            })
        })
        .collect();
    let cold: Vec<_> = colds
        .iter()
        .map(|c| {
            let (avg_ms, stddev_ms) = mean_sd(&c.samples_ms);
            json!({
                "model_filename": infos[c.model].path.display().to_string(),
                "model": infos[c.model].name,
                "n_threads": c.threads,
                "prompt": args.cold_prompt,
                "avg_ms": avg_ms,
                "stddev_ms": stddev_ms,
                "samples_ms": c.samples_ms,
                "peak_rss_bytes": c.peak_rss,
            })
        })
        .collect();
    json!({
        "ember_version": env!("CARGO_PKG_VERSION"),
        "kernel_tier": tier,
        "n_batch": args.batch,
        "repetitions": args.reps,
        "results": results,
        "cold_start": cold,
    })
}

/// `92.10 MiB`, `1.23 GiB`.
fn size_str(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.2} MiB")
    }
}

/// `134.52 M`, `1.24 B`.
fn params_str(p: u64) -> String {
    if p >= 1_000_000_000 {
        format!("{:.2} B", p as f64 / 1e9)
    } else {
        format!("{:.2} M", p as f64 / 1e6)
    }
}

fn to_markdown(infos: &[ModelInfo], rows: &[Row], colds: &[Cold], tier: &str) -> String {
    let mut s = String::new();
    if !rows.is_empty() {
        s.push_str("| model | size | params | threads | test | t/s |\n|---|---:|---:|---:|---:|---:|\n");
        for r in rows {
            let m = &infos[r.model];
            let (avg, sd) = mean_sd(&r.samples_ts);
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {avg:.2} ± {sd:.2} |\n",
                m.name,
                size_str(m.size),
                params_str(m.params),
                r.threads,
                r.test.name()
            ));
        }
    }
    if !colds.is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str("| model | threads | cold start to first token (ms) | peak RSS |\n|---|---:|---:|---:|\n");
        for c in colds {
            let (avg, sd) = mean_sd(&c.samples_ms);
            let rss = c.peak_rss.map_or_else(|| "n/a".to_string(), size_str);
            s.push_str(&format!("| {} | {} | {avg:.1} ± {sd:.1} | {rss} |\n", infos[c.model].name, c.threads));
        }
        s.push_str(
            "\ncold start: `ember run -n 1` in a child process, page cache warm, wall time from spawn to exit\n",
        );
    }
    s.push_str(&format!("kernels: {tier}\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("-p", "128,512").unwrap(), vec![128, 512]);
        assert_eq!(parse_list("-p", " 1 , 2,1").unwrap(), vec![1, 2]);
        assert_eq!(parse_list("-p", "0").unwrap(), vec![0]);
        assert!(parse_list("-p", "1,,2").unwrap_err().to_string().contains("empty item"));
        assert!(parse_list("-p", "x").unwrap_err().to_string().contains("\"x\" is not"));
        assert!(parse_list("-p", "-3").is_err());
    }

    #[test]
    fn stats() {
        let (m, s) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        // Sample (n-1) standard deviation: sqrt(32/7).
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[3.0]), (3.0, 0.0));
    }

    #[test]
    fn ids_are_fixed_and_in_range() {
        let a = test_ids(Test::Prompt(64), 50, Some(1));
        assert_eq!(a, test_ids(Test::Prompt(64), 50, Some(1)));
        assert_eq!(a[0], 1);
        assert!(a.iter().all(|&t| t < 50));
        assert_ne!(a[1..], test_ids(Test::Gen(64), 50, Some(1))[1..]);
        assert_eq!(test_ids(Test::Gen(3), 7, None).len(), 3);
    }
}
