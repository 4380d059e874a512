//! `compare`: ember against llama.cpp on the same GGUF files, side by side.
//!
//! ```text
//! cargo build --release -p ember-cli -p ember-benches
//! target/release/compare [-m MODEL.gguf]... [-p 128,512] [-n 64] [-t 1,2] [-r 5]
//!     [--llama-bench PATH] [--llama-simple PATH] [--ember PATH] [--derived DIR]
//!     [--no-cold-start] [--contention] [--contention-only] [--fresh-pages]
//! ```
//! (`benches/compare ARGS` builds and runs it.)
//!
//! - Speed: for each round (`-r`), model and thread count, one
//!   `ember bench -r 1 --json` then one `llama-bench -r 1 -o json` with the
//!   same `-p`/`-n`, so both see the same machine conditions (A B A B); each
//!   figure is the median over the rounds (with the mean ± sd beside it), and
//!   the ratio is ember's median / llama.cpp's, the ratio of the means beside
//!   it: on a shared machine one round in a different state of the VM moves
//!   a mean, not a median of five.
//! - Cold start: `ember run -n 1 --temp 0` against `llama-simple -n 1` (its
//!   thread count is llama.cpp's default, 4: it has no flag), the same short
//!   prompt, each in a child process whose wall time (spawn to exit) and
//!   `ru_maxrss` (`wait4`) are taken, after one untimed run of each to warm
//!   the page cache; interleaved too.
//! - Generation as memory traffic: tg t/s × file size (every weight is read
//!   once per token) against a plain read of memory by as many threads, and
//!   the same read as four interleaved streams per thread (the order of
//!   ember's decode gemvs, which gets more bandwidth on some machines),
//!   measured at the end of the run (after the child processes).
//! - Generation round by round: each round's tg figures beside a plain read
//!   of memory by as many threads, timed just before that round. On a
//!   shared VM the bandwidth moves by half for minutes at a time, and
//!   ember's generation with two threads, which in the slow state reads
//!   about as fast as the read, moves with it; this table shows which
//!   rounds ran in which state.
//! - Generation by the vCPUs' placement: the rounds of two threads grouped
//!   by the round trip timed before each (close or apart), with the ratio
//!   of the medians in each group.
//! - `--fresh-pages`: before anything is timed, each file is dropped from
//!   the page cache (`posix_fadvise(DONTNEED)`) and read once by `ember run
//!   -n 1`, so that both tools map the file as ember's own first load leaves
//!   it: in 2 MiB pages where the kernel makes them (ember's map asks for
//!   them). Which pages the cache holds moves decode speed by several
//!   percent (the report gives the share at the end); without the flag the
//!   run takes the cache as it finds it.
//! - `--contention`: a busy loop (`sh -c 'while :; do :; done'`, pinned to
//!   CPU 1 with `taskset` when there is one) runs while tg64 with `-t 2` is
//!   measured for both, interleaved.
//!
//! Without `-m`, the four files of issue 6: SmolLM2 Q4_1 and Gemma 3 Q4_K_M
//! from `$EMBER_HOME/models`, and SmolLM2 Q4_0 and Q8_0 made from the Q4_1
//! with `ember quantize --allow-requantize` into `--derived` (default
//! `$EMBER_HOME/derived`) if they are not there yet (byte-identical to
//! llama-quantize's output).
//!
//! The output is markdown on stdout (progress on stderr), ready for
//! `benches/RESULTS.md`.

use ember_benches::child;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

const USAGE: &str = "usage: compare [-m MODEL.gguf]... [-p 128,512] [-n 64] [-t 1,2] [-r 5] \
[--llama-bench PATH] [--llama-simple PATH] [--ember PATH] [--derived DIR] [--prompt TEXT] \
[--no-cold-start] [--contention] [--contention-only] [--fresh-pages]";

const DEFAULT_LLAMA_BENCH: &str = "/root/.cache/llama-cpp-ref/src/build/bin/llama-bench";

/// Command-line settings.
#[derive(Debug)]
struct Opts {
    models: Vec<PathBuf>,
    n_prompt: String,
    n_gen: String,
    threads: String,
    rounds: usize,
    llama_bench: PathBuf,
    llama_simple: Option<PathBuf>,
    ember: PathBuf,
    derived: Option<PathBuf>,
    prompt: String,
    cold_start: bool,
    speed: bool,
    contention: bool,
    fresh_pages: bool,
}

fn ember_home() -> PathBuf {
    if let Some(h) = std::env::var_os("EMBER_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/ember")
}

fn parse_opts(args: &[String]) -> Result<Opts> {
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let mut o = Opts {
        models: Vec::new(),
        n_prompt: "128,512".into(),
        n_gen: "64".into(),
        threads: "1,2".into(),
        rounds: 5,
        llama_bench: std::env::var_os("LLAMA_BENCH").map_or_else(|| PathBuf::from(DEFAULT_LLAMA_BENCH), PathBuf::from),
        llama_simple: std::env::var_os("LLAMA_SIMPLE").map(PathBuf::from),
        ember: exe_dir.map_or_else(|| PathBuf::from("ember"), |d| d.join("ember")),
        derived: None,
        prompt: "The capital of France is".into(),
        cold_start: true,
        speed: true,
        contention: false,
        fresh_pages: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "-m" | "--model" => o.models.push(PathBuf::from(val(a)?)),
            "-p" | "--n-prompt" => o.n_prompt = val(a)?,
            "-n" | "--n-gen" => o.n_gen = val(a)?,
            "-t" | "--threads" => o.threads = val(a)?,
            "-r" | "--rounds" => {
                let v = val(a)?;
                o.rounds = v.parse().map_err(|_| format!("-r: {v:?} is not a whole number"))?;
                if o.rounds == 0 {
                    return Err("-r must be at least 1".into());
                }
            }
            "--llama-bench" => o.llama_bench = PathBuf::from(val(a)?),
            "--llama-simple" => o.llama_simple = Some(PathBuf::from(val(a)?)),
            "--ember" => o.ember = PathBuf::from(val(a)?),
            "--derived" => o.derived = Some(PathBuf::from(val(a)?)),
            "--prompt" => o.prompt = val(a)?,
            "--no-cold-start" => o.cold_start = false,
            "--contention" => o.contention = true,
            "--fresh-pages" => o.fresh_pages = true,
            "--contention-only" => {
                o.contention = true;
                o.speed = false;
                o.cold_start = false;
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    for (flag, list) in [("-p", &o.n_prompt), ("-n", &o.n_gen), ("-t", &o.threads)] {
        if list.split(',').any(|x| x.trim().parse::<usize>().is_err()) {
            return Err(format!("{flag}: {list:?} is not a comma-separated list of whole numbers"));
        }
    }
    Ok(o)
}

/// One llama-bench (or `ember bench`) result: which test, and its tokens/s samples.
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    model: String,
    threads: usize,
    test: String,
    samples_ts: Vec<f64>,
}

/// `pp512`, `tg64`, or `pp512+tg64` for a combined test, as llama-bench names them.
fn test_name(n_prompt: u64, n_gen: u64) -> String {
    match (n_prompt, n_gen) {
        (p, 0) => format!("pp{p}"),
        (0, g) => format!("tg{g}"),
        (p, g) => format!("pp{p}+tg{g}"),
    }
}

fn field_u64(o: &Value, k: &str) -> Result<u64> {
    o[k].as_u64().ok_or_else(|| format!("llama-bench JSON: missing or non-integer {k:?} in {o}"))
}

fn samples_of(o: &Value, who: &str) -> Result<Vec<f64>> {
    let arr = o["samples_ts"].as_array().ok_or_else(|| format!("{who} JSON: no samples_ts array in {o}"))?;
    arr.iter().map(|v| v.as_f64().ok_or_else(|| format!("{who} JSON: non-numeric sample {v}"))).collect()
}

/// Parses `llama-bench -o json` output: an array with one object per test.
fn parse_llama_bench(text: &str) -> Result<(Vec<Sample>, String)> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("llama-bench output is not JSON: {e}"))?;
    let arr = v.as_array().ok_or("llama-bench JSON: expected an array of results")?;
    let mut out = Vec::new();
    let mut build = String::new();
    for o in arr {
        if field_u64(o, "n_depth").unwrap_or(0) != 0 {
            return Err("llama-bench JSON: tests with -d (depth) are not compared".into());
        }
        let model = o["model_filename"].as_str().ok_or("llama-bench JSON: missing model_filename")?.to_string();
        let test = test_name(field_u64(o, "n_prompt")?, field_u64(o, "n_gen")?);
        let threads = field_u64(o, "n_threads")? as usize;
        build = o["build_commit"].as_str().unwrap_or("").to_string();
        out.push(Sample { model, threads, test, samples_ts: samples_of(o, "llama-bench")? });
    }
    Ok((out, build))
}

/// Parses `ember bench --json` output.
fn parse_ember_bench(text: &str) -> Result<(Vec<Sample>, String)> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("ember bench output is not JSON: {e}"))?;
    let arr = v["results"].as_array().ok_or("ember bench JSON: no results array")?;
    let mut out = Vec::new();
    for o in arr {
        out.push(Sample {
            model: o["model_filename"].as_str().ok_or("ember bench JSON: missing model_filename")?.to_string(),
            threads: o["n_threads"].as_u64().ok_or("ember bench JSON: missing n_threads")? as usize,
            test: o["test"].as_str().ok_or("ember bench JSON: missing test")?.to_string(),
            samples_ts: samples_of(o, "ember bench")?,
        });
    }
    Ok((out, v["kernel_tier"].as_str().unwrap_or("").to_string()))
}

/// Mean and sample standard deviation.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    (m, (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt())
}

/// Wall time and peak RSS of a finished child.
struct ChildRun {
    wall: Duration,
    peak_rss: u64,
}

/// Runs `cmd` to completion (stdin closed); returns stdout, and the wall time
/// and peak RSS (`ru_maxrss` from `wait4`). Fails with stderr on a non-zero exit.
fn run_measured(cmd: &mut Command) -> Result<(String, ChildRun)> {
    let what = format!("{cmd:?}");
    let r = child::run_measured(cmd).map_err(|e| format!("running {what}: {e}"))?;
    if !r.success {
        return Err(format!("{what} failed:\n{}", tail(&r.stderr, 2000)));
    }
    Ok((r.stdout, ChildRun { wall: r.wall, peak_rss: r.peak_rss.unwrap_or(0) }))
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// The busy process of `--contention`; killed and reaped on drop.
struct Spinner(Child);

impl Spinner {
    fn start() -> Result<(Spinner, String)> {
        let busy = ["sh", "-c", "while :; do :; done"];
        let taskset = Command::new("taskset").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status();
        let (mut cmd, how) = if taskset.is_ok_and(|s| s.success()) {
            let mut c = Command::new("taskset");
            c.args(["-c", "1"]).args(busy);
            (c, "`taskset -c 1 sh -c 'while :; do :; done'` (pinned to CPU 1)")
        } else {
            let mut c = Command::new(busy[0]);
            c.args(&busy[1..]);
            (c, "`sh -c 'while :; do :; done'` (not pinned: no taskset)")
        };
        let child = cmd.stdin(Stdio::null()).spawn().map_err(|e| format!("cannot start the busy loop: {e}"))?;
        Ok((Spinner(child), how.to_string()))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Collected samples: (model's place in the list, threads, test order, model, test) → (ember, llama.cpp).
/// Rows come out in the order the models were given, then by threads, pp before tg, by length.
type Table = BTreeMap<(usize, usize, (u8, u64), String, String), (Vec<f64>, Vec<f64>)>;

/// Sort key of a test name: `pp*` before `tg*`, then by token count.
fn test_order(test: &str) -> (u8, u64) {
    let kind = if test.starts_with("pp") { 0 } else { 1 };
    let n = test.get(2..).and_then(|r| r.split('+').next()).and_then(|x| x.parse().ok()).unwrap_or(0);
    (kind, n)
}

struct Runner<'a> {
    o: &'a Opts,
    tier: String,
    llama_build: String,
}

/// The memory read rate measured just before one round of one model and
/// thread count (see [`Runner::speed`]).
#[derive(Clone, Debug, PartialEq)]
struct Probe {
    round: usize,
    model: usize,
    threads: usize,
    read_gbs: f64,
    /// [`ember_benches::round_trip_ns`] before a round of two or more
    /// threads (NaN for one).
    round_trip_ns: f64,
}

/// Bytes of the buffer read before each round: four times the 32 MiB
/// last-level cache of the EPYC this was tuned on, and a pass short enough
/// (a few ms) to take before every round.
const PROBE_BYTES: usize = 128 << 20;

/// Round trips of a cache line between two threads timed before each round
/// of two threads (a few ms; see [`ember_benches::round_trip_ns`]).
const ROUND_TRIPS: usize = 5000;

impl Runner<'_> {
    fn ember_bench(&mut self, model: &Path, p: &str, n: &str, t: usize) -> Result<Vec<Sample>> {
        let mut c = Command::new(&self.o.ember);
        c.arg("bench").arg("-m").arg(model);
        c.args(["-p", p, "-n", n, "-t", &t.to_string(), "-r", "1", "--no-cold-start", "--json"]);
        let (out, _) = run_measured(&mut c)?;
        let (s, tier) = parse_ember_bench(&out)?;
        self.tier = tier;
        Ok(s)
    }

    fn llama_bench(&mut self, model: &Path, p: &str, n: &str, t: usize) -> Result<Vec<Sample>> {
        let mut c = Command::new(&self.o.llama_bench);
        c.arg("-m").arg(model);
        c.args(["-p", p, "-n", n, "-t", &t.to_string(), "-r", "1", "-o", "json"]);
        let (out, _) = run_measured(&mut c)?;
        let (s, build) = parse_llama_bench(&out)?;
        self.llama_build = build;
        Ok(s)
    }

    /// Rounds of A B for each model and thread count; samples keyed by the model path.
    /// With `probe`, a plain read of a [`PROBE_BYTES`] buffer by as many
    /// threads as the round uses (the median of three passes) is timed
    /// before each round: the bandwidth the machine gives right then (on a
    /// shared VM it moves by half for minutes at a time, and generation with
    /// two threads moves with it); before a round of two threads or more, so
    /// is a cache line's round trip between two threads (where the VM has
    /// put its vCPUs, which the bandwidth of two threads follows).
    fn speed(
        &mut self,
        models: &[PathBuf],
        p: &str,
        n: &str,
        threads: &[usize],
        probe: bool,
    ) -> Result<(Table, Vec<Probe>)> {
        let mut table = Table::new();
        let mut probes = Vec::new();
        let buf = if probe { ember_benches::read_buffer_of(PROBE_BYTES) } else { Vec::new() };
        for round in 0..self.o.rounds {
            for (mi, m) in models.iter().enumerate() {
                for &t in threads {
                    eprintln!("compare: round {}/{} {} -t {t}", round + 1, self.o.rounds, name_of(m));
                    if probe {
                        let read_gbs = ember_benches::read_bandwidth_threads(&buf, t, 3);
                        let round_trip_ns = if t > 1 { ember_benches::round_trip_ns(ROUND_TRIPS, 3) } else { f64::NAN };
                        probes.push(Probe { round, model: mi, threads: t, read_gbs, round_trip_ns });
                    }
                    let key = m.display().to_string();
                    for s in self.ember_bench(m, p, n, t)? {
                        table
                            .entry((mi, s.threads, test_order(&s.test), key.clone(), s.test))
                            .or_default()
                            .0
                            .extend(s.samples_ts);
                    }
                    for s in self.llama_bench(m, p, n, t)? {
                        table
                            .entry((mi, s.threads, test_order(&s.test), key.clone(), s.test))
                            .or_default()
                            .1
                            .extend(s.samples_ts);
                    }
                }
            }
        }
        Ok((table, probes))
    }
}

/// Cold-start samples of one model: (ember ms, llama.cpp ms, ember peak RSS, llama.cpp peak RSS).
#[derive(Default)]
struct Cold {
    ember_ms: Vec<f64>,
    llama_ms: Vec<f64>,
    ember_rss: u64,
    llama_rss: u64,
}

fn cold_start(o: &Opts, simple: &Path, model: &Path) -> Result<Cold> {
    let ember = || {
        let mut c = Command::new(&o.ember);
        c.arg("run").arg("-m").arg(model).args(["-p", &o.prompt, "-n", "1", "--temp", "0"]);
        c
    };
    let llama = || {
        let mut c = Command::new(simple);
        c.arg("-m").arg(model).args(["-n", "1", &o.prompt]);
        c
    };
    // Warm the page cache for both.
    run_measured(&mut ember())?;
    run_measured(&mut llama())?;
    let mut r = Cold::default();
    for _ in 0..o.rounds {
        let (_, e) = run_measured(&mut ember())?;
        let (_, l) = run_measured(&mut llama())?;
        r.ember_ms.push(e.wall.as_secs_f64() * 1e3);
        r.llama_ms.push(l.wall.as_secs_f64() * 1e3);
        r.ember_rss = r.ember_rss.max(e.peak_rss);
        r.llama_rss = r.llama_rss.max(l.peak_rss);
    }
    Ok(r)
}

/// The four files of issue 6, making the derived ones if needed.
fn default_models(o: &Opts) -> Result<Vec<PathBuf>> {
    let home = ember_home();
    let q4_1 = home.join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let gemma = home.join("models/gemma3-270m/gemma-3-270m-q4_k_m.gguf");
    for p in [&q4_1, &gemma] {
        if !p.exists() {
            return Err(format!("{} is missing: run scripts/fetch-models.sh (or `ember pull`)", p.display()));
        }
    }
    let dir = o.derived.clone().unwrap_or_else(|| home.join("derived"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut out = vec![q4_1.clone()];
    for ty in ["Q4_0", "Q8_0"] {
        let p = dir.join(format!("SmolLM2-135M-Instruct.{ty}.gguf"));
        if !p.exists() {
            eprintln!("compare: making {} with ember quantize", p.display());
            let mut c = Command::new(&o.ember);
            c.arg("quantize").arg("--allow-requantize").arg(&q4_1).arg(&p).arg(ty);
            run_measured(&mut c)?;
        }
        out.push(p);
    }
    out.push(gemma);
    Ok(out)
}

fn name_of(p: &Path) -> String {
    let n = p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
    n.strip_suffix(".gguf").unwrap_or(&n).to_string()
}

/// The median of `v` (the upper one of an even count; NaN when empty).
fn median_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    ember_benches::median(&mut v)
}

fn fmt_ms(v: &[f64]) -> String {
    let (m, s) = mean_sd(v);
    format!("{:.0} ({m:.0} ± {s:.0})", median_of(v))
}

fn fmt_ts(v: &[f64]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    let (m, s) = mean_sd(v);
    format!("{:.2} ({m:.2} ± {s:.2})", median_of(v))
}

fn quotient(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "n/a".into()
    }
}

/// `a` / `b`: the ratio of the medians.
fn ratio(a: &[f64], b: &[f64]) -> String {
    quotient(median_of(a), median_of(b))
}

/// `a` / `b`: the ratio of the means.
fn ratio_of_means(a: &[f64], b: &[f64]) -> String {
    quotient(mean_sd(a).0, mean_sd(b).0)
}

fn speed_table(t: &Table) -> String {
    let mut s = String::from(
        "| model | threads | test | ember t/s | llama.cpp t/s | ember / llama.cpp | (means) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for ((_, th, _, m, test), (e, l)) in t {
        let _ = writeln!(
            s,
            "| {} | {th} | {test} | {} | {} | {} | {} |",
            name_of(Path::new(m)),
            fmt_ts(e),
            fmt_ts(l),
            ratio(e, l),
            ratio_of_means(e, l)
        );
    }
    s
}

/// Generation as memory traffic: each token reads every weight once, so
/// tokens/s × file size is the bytes/s a tool streams, set against a plain
/// read of memory with as many threads and the same read as four streams
/// per thread (`reads`: threads, plain, streamed; measured in this run).
fn traffic_table(t: &Table, reads: &[(usize, f64, f64)]) -> String {
    let mut s = format!(
        "\n### Generation as memory traffic\n\nGB/s = median tg t/s × model file size (every weight is read once per \
         token); plain read = a {} MiB buffer summed by that many threads; 4-stream read = the same buffer, each \
         thread reading four parts of its share side by side ({} bytes of each in turn, as ember's decode gemvs \
         walk their rows); both measured at the end of this run. The last column sets ember against the larger \
         read.\n\n\
         | model | threads | test | file MB | ember GB/s | llama.cpp GB/s | plain read GB/s | 4-stream read GB/s | ember / read |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        ember_benches::POOL_BYTES >> 20,
        ember_benches::STREAM_STEP
    );
    for ((_, th, _, m, test), (e, l)) in t {
        if !test.starts_with("tg") {
            continue;
        }
        let mb = std::fs::metadata(m).map_or(0.0, |md| md.len() as f64 / 1e6);
        let gbs = |v: &[f64]| median_of(v) * mb / 1e3;
        let (plain, streamed) = reads.iter().find(|r| r.0 == *th).map_or((f64::NAN, f64::NAN), |r| (r.1, r.2));
        let _ = writeln!(
            s,
            "| {} | {th} | {test} | {mb:.1} | {:.2} | {:.2} | {plain:.2} | {streamed:.2} | {:.2} |",
            name_of(Path::new(m)),
            gbs(e),
            gbs(l),
            gbs(e) / plain.max(streamed)
        );
    }
    s
}

/// Each round of generation on its own, beside the read rate measured just
/// before it ([`Probe`]): whether a low ratio came with a low read rate.
/// Round `r` of a test is sample `r` of each tool (one repetition per round).
fn rounds_table(t: &Table, probes: &[Probe]) -> String {
    if probes.is_empty() {
        return "\n### Generation round by round\n\n(no read probes: the peak RSS could not be reset after them)\n"
            .to_string();
    }
    let mut s = format!(
        "\n### Generation round by round\n\nread GB/s = a plain read of a {} MiB buffer by as many threads, just \
         before the round; trip ns = a cache line's round trip between two threads, just before a round of two \
         (on the 2-vCPU Zen 4 VM: about 100 ns when its vCPUs share a core complex, about 400 when they do not); \
         ember / read = ember's t/s × file size against the read.\n\n\
         | round | model | threads | test | read GB/s | trip ns | ember t/s | llama.cpp t/s | ember / llama.cpp | ember / read |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        PROBE_BYTES >> 20
    );
    let mut rows = tg_rounds(t, probes);
    rows.sort_by_key(|r| (r.round, r.model, r.threads));
    for r in rows {
        let trip = if r.trip.is_finite() { format!("{:.0}", r.trip) } else { "-".to_string() };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {trip} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.round + 1,
            r.name,
            r.threads,
            r.test,
            r.read,
            r.ember,
            r.llama,
            r.ember / r.llama,
            r.of_read
        );
    }
    s
}

/// One round of one generation test, beside the probes timed just before it
/// ([`Probe`]; NaN where there were none).
struct Round {
    round: usize,
    model: usize,
    threads: usize,
    name: String,
    test: String,
    /// The plain read, GB/s.
    read: f64,
    /// The round trip between two threads, ns.
    trip: f64,
    /// Both tools' t/s.
    ember: f64,
    llama: f64,
    /// ember's t/s × file size against the read.
    of_read: f64,
}

/// Every round of every generation test in `t`, in the table's order (a
/// test's rounds one after the other).
fn tg_rounds(t: &Table, probes: &[Probe]) -> Vec<Round> {
    let mut rows = Vec::new();
    for ((mi, th, _, m, test), (e, l)) in t {
        if !test.starts_with("tg") {
            continue;
        }
        let mb = std::fs::metadata(m).map_or(0.0, |md| md.len() as f64 / 1e6);
        for (round, (&ember, &llama)) in e.iter().zip(l).enumerate() {
            let probe = probes.iter().find(|p| p.round == round && p.model == *mi && p.threads == *th);
            let read = probe.map_or(f64::NAN, |p| p.read_gbs);
            rows.push(Round {
                round,
                model: *mi,
                threads: *th,
                name: name_of(Path::new(m)),
                test: test.clone(),
                read,
                trip: probe.map_or(f64::NAN, |p| p.round_trip_ns),
                ember,
                llama,
                of_read: ember * mb / 1e3 / read,
            });
        }
    }
    rows
}

/// The round trip (ns) that tells the VM's two placements of its vCPUs
/// apart in [`states_table`]: `ember_benches::round_trip_ns` reads about 100
/// ns on the 2-vCPU Zen 4 VM when they share a core complex and about 400
/// when they do not (session 18's final runs: 50 rounds under 200 ns, 10 at
/// 399-426).
const CLOSE_BELOW_NS: f64 = 250.0;

/// Generation with two threads or more, its rounds grouped by the round
/// trip measured just before each ([`Probe`]): rounds under
/// [`CLOSE_BELOW_NS`] ("close") and the others ("apart"), with the ratio of
/// the two tools' medians over each group. On the shared VM the state
/// flips within a run, and which state a run's rounds fall in moves its
/// ratios more than anything else (see `RESULTS.md`); this table says which.
fn states_table(t: &Table, probes: &[Probe]) -> String {
    let mut s = format!(
        "\n### Generation by the vCPUs' placement\n\nRounds of two threads or more, grouped by the round trip just \
         before them: close = under {CLOSE_BELOW_NS:.0} ns (vCPUs sharing a core complex), apart = the others; \
         medians over each group's rounds; ember / read = ember's t/s × file size against the round's plain read \
         (median).\n\n\
         | model | threads | test | state | rounds | trip ns | read GB/s | ember t/s | llama.cpp t/s | ember / llama.cpp | ember / read |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let range = |v: &[f64], digits: usize| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.digits$}-{hi:.digits$}")
    };
    let rounds = tg_rounds(t, probes);
    for test in rounds.chunk_by(|a, b| (a.model, a.threads, &a.test) == (b.model, b.threads, &b.test)) {
        let first = &test[0];
        if first.threads < 2 {
            continue;
        }
        for (state, close) in [("close", true), ("apart", false)] {
            let group: Vec<&Round> =
                test.iter().filter(|r| r.trip.is_finite() && (r.trip < CLOSE_BELOW_NS) == close).collect();
            if group.is_empty() {
                continue;
            }
            let of = |f: fn(&Round) -> f64| group.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let (es, ls) = (of(|r| r.ember), of(|r| r.llama));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {state} | {} | {} | {} | {:.2} | {:.2} | {} | {:.2} |",
                first.name,
                first.threads,
                first.test,
                group.len(),
                range(&of(|r| r.trip), 0),
                range(&of(|r| r.read), 1),
                median_of(&es),
                median_of(&ls),
                ratio(&es, &ls),
                median_of(&of(|r| r.of_read))
            );
        }
    }
    s
}

/// Resets this process's peak RSS ("high water mark") to its current RSS
/// (Linux: `5` written to `/proc/self/clear_refs`); whether that worked.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Drops `path`'s clean pages from the page cache (`posix_fadvise` with
/// `POSIX_FADV_DONTNEED`): its next reader reads it from the disk again.
fn evict(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: a plain system call on an open descriptor; it touches no memory of ours.
    let rc = unsafe { libc::posix_fadvise(std::os::fd::AsRawFd::as_raw_fd(&file), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(format!("{}: posix_fadvise(DONTNEED) failed ({rc})", path.display()));
    }
    Ok(())
}

/// The share of `path`'s bytes that the page cache holds in 2 MiB folios, as
/// a map of the whole file shows them (`FilePmdMapped` in
/// `/proc/self/smaps` after touching every page): a condition of the run
/// like the load average, since a one-token step reads every weight and
/// 2 MiB pages cost 512 times fewer page walks. Both tools map the same
/// cached pages. `None` where that is not known (not Linux, no smaps).
/// Called after the children have run: a mapping counts in this process's
/// peak RSS, which a child's `ru_maxrss` would inherit.
fn huge_page_share(path: &Path) -> Option<f64> {
    let file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    if len == 0 {
        return None;
    }
    // SAFETY: a fresh read-only shared mapping of `len` bytes of an open
    // file, unmapped below; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let mut sum = 0u8;
    for off in (0..len).step_by(4096) {
        // SAFETY: `off < len`, inside the mapping; a volatile read so the
        // page is faulted in.
        sum = sum.wrapping_add(unsafe { core::ptr::read_volatile(p.cast::<u8>().add(off)) });
    }
    core::hint::black_box(sum);
    let start = format!("{:x}-", p as usize);
    let smaps = std::fs::read_to_string("/proc/self/smaps");
    // SAFETY: the mapping made above, of `len` bytes, no longer used.
    unsafe { libc::munmap(p, len) };
    let smaps = smaps.ok()?;
    let kb: f64 = smaps
        .split_once(start.as_str())?
        .1
        .lines()
        .find_map(|l| l.strip_prefix("FilePmdMapped:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024.0 / len as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}\n\nember vs llama.cpp side by side: see benches/README.md.");
        return;
    }
    match parse_opts(&args).and_then(|o| run(&o, &args)) {
        Ok(md) => print!("{md}"),
        Err(e) => {
            eprintln!("compare: error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(o: &Opts, args: &[String]) -> Result<String> {
    if !o.ember.exists() {
        return Err(format!(
            "ember binary {} not found: `cargo build --release -p ember-cli` or pass --ember PATH",
            o.ember.display()
        ));
    }
    if !o.llama_bench.exists() {
        return Err(format!(
            "llama-bench {} not found: pass --llama-bench PATH or set LLAMA_BENCH (../shared/tools/build-llama-cpp.sh builds one)",
            o.llama_bench.display()
        ));
    }
    let models = if o.models.is_empty() { default_models(o)? } else { o.models.clone() };
    for m in &models {
        if !m.is_file() {
            return Err(format!("model {} not found", m.display()));
        }
    }
    // Absolute paths: both tools are given, and report, the same string.
    let models: Vec<PathBuf> = models.iter().map(|m| std::fs::canonicalize(m).unwrap_or_else(|_| m.clone())).collect();
    let threads: Vec<usize> = o.threads.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    let simple = o.llama_simple.clone().unwrap_or_else(|| o.llama_bench.with_file_name("llama-simple"));

    if o.fresh_pages {
        for m in &models {
            eprintln!("compare: dropping {} from the page cache, then `ember run -n 1`", name_of(m));
            evict(m)?;
            let mut c = Command::new(&o.ember);
            c.arg("run").arg("-m").arg(m).args(["-p", &o.prompt, "-n", "1", "--temp", "0"]);
            run_measured(&mut c)?;
        }
    }
    let mut r = Runner { o, tier: String::new(), llama_build: String::new() };
    let started = Instant::now();
    let load_start = loadavg();
    // A child inherits this process's peak RSS at the fork, and its
    // `ru_maxrss` includes it (see the reads below): the probes' buffer
    // would show in every cold-start figure. So the probes run only where
    // the peak can be reset to the current RSS afterwards, or where no cold
    // start follows.
    let probe = !o.cold_start || reset_peak_rss();
    let (speed, probes) = if o.speed {
        let (t, p) = r.speed(&models, &o.n_prompt, &o.n_gen, &threads, probe)?;
        if o.cold_start && probe && !reset_peak_rss() {
            return Err("could not reset the peak RSS after the read probes".into());
        }
        (Some(t), p)
    } else {
        (None, Vec::new())
    };
    let mut colds = Vec::new();
    if o.cold_start {
        if !simple.exists() {
            return Err(format!(
                "llama-simple {} not found: pass --llama-simple PATH or --no-cold-start",
                simple.display()
            ));
        }
        for m in &models {
            eprintln!("compare: cold start {}", name_of(m));
            colds.push((m.clone(), cold_start(o, &simple, m)?));
        }
    }
    let mut contention = None;
    if o.contention {
        let (_spin, how) = Spinner::start()?;
        std::thread::sleep(Duration::from_millis(300));
        let (t, _) = r.speed(&models, "0", "64", &[2], false)?;
        contention = Some((t, how));
    }
    // The memory ceiling generation runs against: every weight byte is read
    // once per token. Measured last: a child's `ru_maxrss` includes this
    // process's peak RSS at the fork, so the 256 MiB buffer would show up in
    // every cold-start figure taken after it.
    let reads: Vec<(usize, f64, f64)> = if o.speed {
        eprintln!("compare: plain and 4-stream reads of a {} MiB buffer", ember_benches::POOL_BYTES >> 20);
        let buf = ember_benches::read_buffer();
        threads
            .iter()
            .map(|&t| {
                let plain = ember_benches::read_bandwidth_threads(&buf, t, 5);
                (t, plain, ember_benches::read_bandwidth_streams(&buf, t, 4, 5))
            })
            .collect()
    } else {
        Vec::new()
    };

    let mut s = String::new();
    let commit = sh("git", &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"]);
    let _ = writeln!(s, "## ember vs llama.cpp\n");
    let _ = writeln!(s, "- date: {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    let _ = writeln!(
        s,
        "- CPU: {} ({} logical CPUs)",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(s, "- ember commit: {commit}, kernels: {}", r.tier);
    let _ = writeln!(s, "- llama.cpp: {} (build {})", o.llama_bench.display(), r.llama_build);
    let _ = writeln!(s, "- command: `compare {}`", args.join(" "));
    let _ = writeln!(
        s,
        "- {} interleaved rounds (ember then llama.cpp, one repetition each, after each tool's own warm-up); \
         load average {} at start, {} at end; took {:.0} s",
        o.rounds,
        load_start,
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    let shares: Vec<String> =
        models.iter().filter_map(|m| huge_page_share(m).map(|f| format!("{} {:.0}%", name_of(m), 100.0 * f))).collect();
    if !shares.is_empty() {
        let fresh = if o.fresh_pages { " (each file dropped from it and read once by `ember run` first)" } else { "" };
        let _ = writeln!(s, "- page cache{fresh}: share of each file in 2 MiB pages at the end: {}", shares.join(", "));
    }
    if let Some(t) = &speed {
        let _ = writeln!(
            s,
            "\n### Speed (tokens/s: median over rounds (mean ± sd); ratios of the medians (of the means))\n\n{}",
            speed_table(t)
        );
        let _ = writeln!(s, "{}", traffic_table(t, &reads));
        let _ = writeln!(s, "{}", rounds_table(t, &probes));
        if !probes.is_empty() {
            let _ = writeln!(s, "{}", states_table(t, &probes));
        }
    }
    if !colds.is_empty() {
        let _ = writeln!(
            s,
            "\n### Cold start to first token and peak RSS\n\n`ember run -n 1 --temp 0` (threads: one per core) vs \
             `llama-simple -n 1` (4 threads, its fixed default), prompt {:?}; wall time from spawn to exit of a \
             child process, page cache warm; times: median (mean ± sd), ratio of the medians; peak RSS = the \
             largest ru_maxrss.\n\n| model | ember ms | llama.cpp ms | ember / \
             llama.cpp | ember peak RSS MiB | llama.cpp peak RSS MiB | ember / llama.cpp |\n|---|---:|---:|---:|---:|---:|---:|",
            o.prompt
        );
        for (m, c) in &colds {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.2} |",
                name_of(m),
                fmt_ms(&c.ember_ms),
                fmt_ms(&c.llama_ms),
                ratio(&c.ember_ms, &c.llama_ms),
                mib(c.ember_rss),
                mib(c.llama_rss),
                c.ember_rss as f64 / c.llama_rss.max(1) as f64
            );
        }
    }
    if let Some((t, how)) = &contention {
        let _ = writeln!(
            s,
            "\n### Under contention: tg64, -t 2, with a busy process running\n\nbusy process: {how}\n\n{}",
            speed_table(t)
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../cli/tests/data/llama-bench-smollm2-q4_1.json");

    #[test]
    fn parses_captured_llama_bench_json() {
        let (s, build) = parse_llama_bench(SAMPLE).unwrap();
        assert_eq!(build, "0c1e570");
        // `llama-bench -p 16 -n 4 -r 2 -t 1,2`: pp16 and tg4 for each thread count.
        let keys: Vec<(usize, &str)> = s.iter().map(|x| (x.threads, x.test.as_str())).collect();
        assert_eq!(keys, [(1, "pp16"), (1, "tg4"), (2, "pp16"), (2, "tg4")]);
        assert!(s.iter().all(|x| x.model.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf")));
        // The first entry's samples, as captured.
        assert_eq!(s[0].samples_ts, [39.2382, 39.4409]);
        assert!(s.iter().all(|x| x.samples_ts.len() == 2 && x.samples_ts.iter().all(|&v| v > 0.0)));
    }

    /// A 2 MB stand-in model file `m.gguf` in a fresh temporary directory
    /// (the caller removes the directory).
    fn two_mb_model(tag: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("compare-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = dir.join("m.gguf");
        std::fs::write(&m, vec![0u8; 2_000_000]).unwrap();
        (dir, m)
    }

    #[test]
    fn traffic_table_is_tokens_per_second_times_file_size() {
        let (dir, m) = two_mb_model("traffic");
        let key = |test: &str| (0, 2, test_order(test), m.display().to_string(), test.to_string());
        let mut t = Table::new();
        t.insert(key("pp512"), (vec![100.0], vec![50.0]));
        t.insert(key("tg64"), (vec![90.0, 100.0, 140.0], vec![50.0]));
        let md = traffic_table(&t, &[(1, 9.0, 9.5), (2, 4.0, 5.0)]);
        std::fs::remove_dir_all(&dir).unwrap();
        // 2 MB x 100 t/s (the median; the mean is 110) = 0.2 GB/s; 2 MB x 50
        // t/s = 0.1 GB/s; reads with 2 threads 4 and 5 GB/s, ember against
        // the larger.
        assert!(md.contains("| m | 2 | tg64 | 2.0 | 0.20 | 0.10 | 4.00 | 5.00 | 0.04 |"), "{md}");
        assert!(!md.contains("pp512"), "prompt tests are not memory-bound: {md}");
    }

    #[test]
    fn speed_table_gives_medians_and_their_ratio_beside_the_means() {
        let mut t = Table::new();
        let key = |th: usize, test: &str| (0, th, test_order(test), "/x/m.gguf".to_string(), test.to_string());
        // ember: median 200, mean 170; llama.cpp: median 100, mean 200 (one
        // round four times as fast as the others).
        t.insert(key(2, "tg64"), (vec![100.0, 200.0, 210.0], vec![100.0, 100.0, 400.0]));
        let md = speed_table(&t);
        let row = md.lines().find(|l| l.starts_with("| m | 2 | tg64 |")).unwrap_or_else(|| panic!("{md}"));
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells[3], "200.00 (170.00 ± 60.83)", "{row}");
        assert_eq!(cells[4], "100.00 (200.00 ± 173.21)", "{row}");
        assert_eq!((cells[5], cells[6]), ("2.00", "0.85"), "the ratio of the medians, then of the means: {row}");
        assert!(md.starts_with("| model | threads | test | ember t/s | llama.cpp t/s | ember / llama.cpp | (means) |"));
    }

    #[test]
    fn rounds_table_pairs_each_round_with_the_read_before_it() {
        let (dir, m) = two_mb_model("rounds");
        let key = |th: usize, test: &str| (0, th, test_order(test), m.display().to_string(), test.to_string());
        let mut t = Table::new();
        t.insert(key(2, "pp512"), (vec![100.0, 100.0], vec![50.0, 50.0]));
        t.insert(key(2, "tg64"), (vec![150.0, 100.0], vec![100.0, 80.0]));
        t.insert(key(1, "tg64"), (vec![60.0, 61.0], vec![40.0, 40.0]));
        let probe =
            |round, threads, read_gbs, round_trip_ns| Probe { round, model: 0, threads, read_gbs, round_trip_ns };
        let nan = f64::NAN;
        let md = rounds_table(
            &t,
            &[probe(0, 1, 0.12, nan), probe(0, 2, 0.2, 120.4), probe(1, 1, 0.1, nan), probe(1, 2, 0.4, 530.0)],
        );
        std::fs::remove_dir_all(&dir).unwrap();
        // 2 MB x 60 t/s = 0.12 GB/s against a read of 0.12; 2 MB x 150 t/s
        // = 0.3 against 0.2; 2 MB x 61 t/s = 0.122 against 0.1; 2 MB x 100
        // t/s = 0.2 against 0.4.
        assert!(md.contains("| 1 | m | 1 | tg64 | 0.1 | - | 60.00 | 40.00 | 1.50 | 1.00 |"), "{md}");
        assert!(md.contains("| 1 | m | 2 | tg64 | 0.2 | 120 | 150.00 | 100.00 | 1.50 | 1.50 |"), "{md}");
        assert!(md.contains("| 2 | m | 1 | tg64 | 0.1 | - | 61.00 | 40.00 | 1.52 | 1.22 |"), "{md}");
        assert!(md.contains("| 2 | m | 2 | tg64 | 0.4 | 530 | 100.00 | 80.00 | 1.25 | 0.50 |"), "{md}");
        assert!(!md.contains("pp512"), "{md}");
        // rounds in order, -t 1 before -t 2 within a round
        let r1 = md.find("| 1 | m | 1 |").unwrap();
        let r1t2 = md.find("| 1 | m | 2 |").unwrap();
        let r2 = md.find("| 2 | m | 1 |").unwrap();
        assert!(r1 < r1t2 && r1t2 < r2, "{md}");
    }

    #[test]
    fn states_table_groups_two_thread_rounds_by_the_round_trip() {
        let (dir, m) = two_mb_model("states");
        let key = |th: usize, test: &str| (0, th, test_order(test), m.display().to_string(), test.to_string());
        let mut t = Table::new();
        t.insert(key(2, "pp512"), (vec![100.0; 4], vec![50.0; 4]));
        t.insert(key(1, "tg64"), (vec![60.0; 4], vec![40.0; 4]));
        // rounds 1, 3 and 4 close, round 2 apart
        t.insert(key(2, "tg64"), (vec![150.0, 200.0, 140.0, 160.0], vec![100.0, 100.0, 100.0, 80.0]));
        let probe =
            |round, threads, read_gbs, round_trip_ns| Probe { round, model: 0, threads, read_gbs, round_trip_ns };
        let nan = f64::NAN;
        let mut probes = vec![];
        for (round, (read, trip)) in [(0.3, 120.0), (0.5, 430.0), (0.28, 98.0), (0.32, 180.0)].into_iter().enumerate() {
            probes.push(probe(round, 1, 0.2, nan));
            probes.push(probe(round, 2, read, trip));
        }
        let md = states_table(&t, &probes);
        std::fs::remove_dir_all(&dir).unwrap();
        // close: ember 150, 140, 160 (median 150), llama.cpp 100, 100, 80
        // (median 100); 2 MB x t/s against the read: 1.0, 1.0, 1.0.
        assert!(md.contains("| m | 2 | tg64 | close | 3 | 98-180 | 0.3-0.3 | 150.00 | 100.00 | 1.50 | 1.00 |"), "{md}");
        assert!(
            md.contains("| m | 2 | tg64 | apart | 1 | 430-430 | 0.5-0.5 | 200.00 | 100.00 | 2.00 | 0.80 |"),
            "{md}"
        );
        assert!(!md.contains("pp512") && !md.contains("| m | 1 |"), "only generation with two threads: {md}");
        assert!(md.find("| close |").unwrap() < md.find("| apart |").unwrap(), "{md}");
    }

    #[test]
    fn children_do_not_see_a_freed_buffer_after_the_peak_rss_reset() {
        // What the reset is for: a child inherits this process's peak RSS at
        // the fork and reports it in `ru_maxrss`.
        let child_peak_mib = || {
            let run = child::run_measured(&mut Command::new("true")).unwrap();
            assert!(run.success);
            run.peak_rss.expect("wait4 gives ru_maxrss on Linux") >> 20
        };
        drop(std::hint::black_box(ember_benches::read_buffer_of(96 << 20)));
        let before = child_peak_mib();
        assert!(before >= 96, "a child after a 96 MiB buffer: {before} MiB");
        assert!(reset_peak_rss(), "writing /proc/self/clear_refs");
        let after = child_peak_mib();
        assert!(after < 64, "a child after the reset: {after} MiB (before: {before} MiB)");
    }

    #[test]
    fn rejects_bad_llama_bench_json() {
        assert!(parse_llama_bench("not json").unwrap_err().contains("not JSON"));
        assert!(parse_llama_bench("{}").unwrap_err().contains("array"));
        assert!(parse_llama_bench(r#"[{"model_filename":"m","n_prompt":1,"n_gen":0}]"#)
            .unwrap_err()
            .contains("n_threads"));
    }

    #[test]
    fn test_names() {
        assert_eq!(test_name(512, 0), "pp512");
        assert_eq!(test_name(0, 64), "tg64");
        assert_eq!(test_name(512, 64), "pp512+tg64");
        assert!(test_order("pp128") < test_order("pp1024"));
        assert!(test_order("pp1024") < test_order("tg64"));
        assert_eq!(test_order("pp512+tg64"), (0, 512));
    }

    #[test]
    fn parses_ember_bench_json() {
        let text = r#"{"kernel_tier":"avx2","results":[{"model_filename":"/m.gguf","n_threads":2,"test":"tg64","samples_ts":[10.5]}]}"#;
        let (s, tier) = parse_ember_bench(text).unwrap();
        assert_eq!(tier, "avx2");
        assert_eq!(s, [Sample { model: "/m.gguf".into(), threads: 2, test: "tg64".into(), samples_ts: vec![10.5] }]);
    }

    #[test]
    fn options() {
        let a = |v: &[&str]| parse_opts(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = a(&["-m", "x.gguf", "-r", "3", "--contention"]).unwrap();
        assert_eq!((o.rounds, o.contention, o.models.len(), o.fresh_pages), (3, true, 1, false));
        assert!(a(&["--fresh-pages"]).unwrap().fresh_pages);
        assert!(a(&["-r", "0"]).unwrap_err().contains("at least 1"));
        assert!(a(&["-p", "1,,2"]).unwrap_err().contains("-p"));
        assert!(a(&["--bogus"]).unwrap_err().contains("unknown argument"));
        assert!(a(&["-m"]).unwrap_err().contains("needs a value"));
    }
}
