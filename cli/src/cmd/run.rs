//! `ember run [-m MODEL] -p PROMPT [-n N] [sampling flags] [-c CTX] [-t N] [--json] [-v]`:
//! continues a prompt, streaming the text as it is made, then prints prompt
//! and generation speed on stderr. `--json` prints one object instead.
//!
//! Defaults follow llama.cpp's `llama-cli`: generate until an
//! end-of-generation token or a full context (`-n -1`), temperature 0.8,
//! top-k 40, top-p 0.95, min-p 0.05, no repetition penalty (window 64), a
//! random seed, the model's training context capped at 4096, f16 KV cache,
//! one thread per physical core. `--temp 0` is greedy decoding.
//!
//! The sampling and session flags are shared with `ember chat`.

use crate::model_arg::ModelArg;
use anyhow::{bail, Context};
use ember::kv_cache::KvType;
use ember::sampler::{SamplerParams, SamplerScratch};
use ember::session::{Session, SessionOptions};
use ember::tokenizer::{StreamDecoder, Tokenizer};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Arguments of `ember run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// The prompt to continue.
    #[arg(short = 'p', long = "prompt", value_name = "PROMPT", conflicts_with = "file")]
    prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Tokens to generate; -1 (any negative): until an end-of-generation token or a full context.
    #[arg(short = 'n', long = "n-predict", value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    n_predict: i64,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    session: SessionArgs,
    /// Print one JSON object (prompt_ids, ids, text, timings) instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Print the kernel tier, the settings and the memory plan at start.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Sampling flags (llama.cpp's names and defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 (or less) is greedy decoding.
    #[arg(long = "temp", value_name = "T", default_value_t = 0.8, allow_negative_numbers = true)]
    temp: f32,
    /// Keep only the K most likely tokens (0 or less: all).
    #[arg(long = "top-k", value_name = "K", default_value_t = 40, allow_negative_numbers = true)]
    top_k: i64,
    /// Keep the most likely tokens up to probability P (1: all).
    #[arg(long = "top-p", value_name = "P", default_value_t = 0.95, allow_negative_numbers = true)]
    top_p: f32,
    /// Drop tokens less likely than M times the most likely one (0: none).
    #[arg(long = "min-p", value_name = "M", default_value_t = 0.05, allow_negative_numbers = true)]
    min_p: f32,
    /// Repetition penalty over the last `--repeat-last-n` tokens (1: none).
    #[arg(long = "repeat-penalty", value_name = "R", default_value_t = 1.0, allow_negative_numbers = true)]
    repeat_penalty: f32,
    /// Window of the penalties, in tokens.
    #[arg(long = "repeat-last-n", value_name = "N", default_value_t = 64)]
    repeat_last_n: usize,
    /// Subtracted per occurrence in the window (0: none).
    #[arg(long = "frequency-penalty", value_name = "F", default_value_t = 0.0, allow_negative_numbers = true)]
    frequency_penalty: f32,
    /// Subtracted once if the token is in the window (0: none).
    #[arg(long = "presence-penalty", value_name = "P", default_value_t = 0.0, allow_negative_numbers = true)]
    presence_penalty: f32,
    /// Random seed; -1 (any negative): random, as llama.cpp [default: random].
    #[arg(short = 's', long = "seed", value_name = "S", allow_negative_numbers = true)]
    seed: Option<i64>,
}

impl SamplingArgs {
    /// The sampler settings, with the seed chosen if none was given.
    pub fn params(&self) -> anyhow::Result<SamplerParams> {
        if !self.temp.is_finite() {
            bail!("--temp must be a finite number");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("--top-p must be in (0, 1], got {}", self.top_p);
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            bail!("--min-p must be in [0, 1], got {}", self.min_p);
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            bail!("--repeat-penalty must be a positive number, got {}", self.repeat_penalty);
        }
        if !self.frequency_penalty.is_finite() || !self.presence_penalty.is_finite() {
            bail!("--frequency-penalty and --presence-penalty must be finite numbers");
        }
        // As llama.cpp: a negative seed (its default, -1) is a random one.
        let seed = self.seed.and_then(|s| u64::try_from(s).ok()).unwrap_or_else(random_seed);
        Ok(SamplerParams {
            temperature: self.temp.max(0.0),
            top_k: usize::try_from(self.top_k).unwrap_or(0),
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            penalty_last_n: self.repeat_last_n,
            seed,
        })
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish() >> 32
}

/// Session flags: context, threads, batch, KV cache type.
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    /// Context length in tokens (0: the model's, capped at 4096).
    #[arg(short = 'c', long = "ctx-size", value_name = "N", default_value_t = 0)]
    ctx: usize,
    /// Threads for matrix work (0 or less: one per physical core).
    #[arg(short = 't', long = "threads", value_name = "N", default_value_t = 0, allow_negative_numbers = true)]
    threads: i64,
    /// Prompt tokens per forward pass.
    #[arg(short = 'b', long = "batch-size", value_name = "N", default_value_t = 256)]
    batch: usize,
    /// KV cache element type.
    #[arg(long = "kv-type", value_name = "TYPE", default_value = "f16", value_parser = ["f16", "f32"])]
    kv_type: String,
}

impl SessionArgs {
    /// The session options these flags ask for.
    pub fn options(&self) -> anyhow::Result<SessionOptions> {
        if self.batch == 0 {
            bail!("--batch-size must be at least 1");
        }
        let kv_type = match self.kv_type.as_str() {
            "f32" => KvType::F32,
            _ => KvType::F16,
        };
        Ok(SessionOptions {
            ctx_len: self.ctx,
            batch: self.batch,
            kv_type,
            threads: threads(self.threads),
            logits_all: false,
        })
    }
}

/// A `-t` value as `SessionOptions::threads`: as llama.cpp's `-t -1`, zero
/// or less is 0, the default (one per physical core).
pub fn threads(t: i64) -> usize {
    usize::try_from(t).unwrap_or(0)
}

/// A model file opened and its tokenizer built.
pub struct Loaded {
    /// Where it is.
    pub path: PathBuf,
    /// The mapped file.
    pub model: ember::Model,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
}

/// Resolves and opens a model and builds its tokenizer.
pub fn load(model: &ModelArg) -> anyhow::Result<Loaded> {
    let path = model.resolve()?;
    open(&path)
}

/// Opens the GGUF file at `path` and builds its tokenizer.
pub fn open(path: &Path) -> anyhow::Result<Loaded> {
    if path.is_dir() {
        bail!("{} is a folder, not a GGUF file: this command runs GGUF language models", path.display());
    }
    let model = ember::Model::open(path).with_context(|| format!("{}", path.display()))?;
    let tokenizer = Tokenizer::from_gguf(&model.gguf()).with_context(|| format!("tokenizer of {}", path.display()))?;
    Ok(Loaded { path: path.to_path_buf(), model, tokenizer })
}

/// A session for `model` with `opts`, for generating with `params`: warns
/// when its context is longer than the model was trained for
/// ([`warn_past_training`]), and caps the penalty window at the context (a
/// longer window sees no more tokens, and a huge `--repeat-last-n` would
/// size a huge buffer).
pub fn session<'m>(
    model: &'m ember::Model,
    opts: SessionOptions,
    params: &mut SamplerParams,
) -> anyhow::Result<Session<'m>> {
    let session = Session::new(model, opts).context("creating the session")?;
    warn_past_training(&session);
    params.penalty_last_n = params.penalty_last_n.min(session.ctx_len());
    Ok(session)
}

/// Warns on stderr, as llama.cpp does, when `-c` asks for a context longer
/// than the model's training context: positions past it are outside what
/// the model has seen, and what it writes there is often poor.
pub fn warn_past_training(session: &Session<'_>) {
    let train = session.config().ctx_train;
    // A model that gives no training context (0) has nothing to warn against.
    if train > 0 && session.ctx_len() > train {
        eprintln!(
            "ember: warning: the context ({} tokens) is longer than the model's training context ({train}); \
             text past {train} tokens may be poor",
            session.ctx_len()
        );
    }
}

/// The `-v` lines about a new session: kernels, sizes, threads.
pub fn describe_session(session: &Session<'_>) -> String {
    let plan = session.plan();
    format!(
        "ember: kernels: {}\nember: context {} tokens, batch {}, KV cache {:?}, {} thread(s), arena {:.1} MiB",
        session.kernels().describe(),
        session.ctx_len(),
        plan.opts.batch,
        plan.opts.kv_type,
        plan.opts.threads,
        plan.total as f64 / (1024.0 * 1024.0)
    )
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    EndOfGeneration,
    NPredict,
    ContextFull,
    /// stdout was closed (e.g. `| head`).
    OutputClosed,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::EndOfGeneration => "eog",
            Stop::NPredict => "n_predict",
            Stop::ContextFull => "context_full",
            Stop::OutputClosed => "output_closed",
        }
    }
}

fn per_second(n: usize, d: Duration) -> Option<f64> {
    let s = d.as_secs_f64();
    (n > 0 && s > 0.0).then(|| n as f64 / s)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `ember run`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let prompt = match (&args.prompt, &args.file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => super::read_text(f).context("reading the prompt (-f)")?,
        (None, None) => bail!("no prompt: give one with -p PROMPT or -f FILE"),
    };
    if prompt.is_empty() {
        bail!("the prompt is empty: give some text with -p PROMPT or -f FILE");
    }
    let mut params = args.sampling.params()?;
    let opts = args.session.options()?;

    let t_load = Instant::now();
    let loaded = load(&args.model)?;
    let tok = &loaded.tokenizer;
    // As llama.cpp: BOS/EOS as the model adds them, special-token text parsed.
    let prompt_ids = tok.encode(&prompt, true, true).context("tokenizing the prompt")?;
    if prompt_ids.is_empty() {
        bail!("the prompt is empty after tokenization");
    }
    let mut session = session(&loaded.model, opts, &mut params)?;
    let load_time = t_load.elapsed();
    let ctx = session.ctx_len();
    if prompt_ids.len() >= ctx {
        bail!(
            "the prompt is {} tokens but the context holds {ctx} (-c {ctx}), and generating needs at least one \
             free position: use a larger -c or a shorter prompt",
            prompt_ids.len()
        );
    }
    if args.verbose {
        eprintln!("{}", describe_session(&session));
        eprintln!("ember: model {} (loaded in {:.0} ms)", loaded.path.display(), ms(load_time));
        eprintln!(
            "ember: sampling: temp {} top-k {} top-p {} min-p {} repeat-penalty {} (last {}) seed {}",
            params.temperature,
            params.top_k,
            params.top_p,
            params.min_p,
            params.repeat_penalty,
            params.penalty_last_n,
            params.seed
        );
        eprintln!("ember: prompt: {} tokens", prompt_ids.len());
    }

    let mut scratch = SamplerScratch::new(session.config().n_vocab, params.penalty_last_n);
    let mut sampler = scratch.sampler(params).context("sampler settings")?;

    let t_prompt = Instant::now();
    session.prefill(&prompt_ids).context("processing the prompt")?;
    let prompt_time = t_prompt.elapsed();

    let n_predict = usize::try_from(args.n_predict).ok();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut decoder = StreamDecoder::new();
    let mut text = String::new();
    let mut ids: Vec<u32> = Vec::new();
    let mut first_sample: Option<Instant> = None;
    let mut last_sample = Instant::now();
    let stop = loop {
        if n_predict.is_some_and(|n| ids.len() >= n) {
            break Stop::NPredict;
        }
        let t = sampler.sample(session.logits()).context("sampling")?;
        last_sample = Instant::now();
        first_sample.get_or_insert(last_sample);
        ids.push(t);
        if tok.is_eog(t) {
            break Stop::EndOfGeneration;
        }
        let piece = decoder.push(tok, t).context("decoding")?;
        text.push_str(piece);
        if !args.json && !piece.is_empty() {
            if let Err(e) = write_flush(&mut out, piece) {
                super::closed_or_failed(e)?;
                break Stop::OutputClosed;
            }
        }
        if n_predict.is_some_and(|n| ids.len() >= n) {
            break Stop::NPredict;
        }
        if session.pos() >= ctx {
            break Stop::ContextFull;
        }
        session.prefill(&[t]).context("generating")?;
    };
    let rest = decoder.flush();
    text.push_str(&rest);
    // Tokens after the first, each one forward pass plus sampling.
    let gen_time = first_sample.map(|f| last_sample - f).unwrap_or_default();
    let gen_steps = ids.len().saturating_sub(1);

    if args.json {
        let obj = json!({
            "model": loaded.path.display().to_string(),
            "prompt": prompt,
            "prompt_ids": prompt_ids,
            "ids": ids,
            "text": text,
            "stop": stop.name(),
            "seed": params.seed,
            "kernel_tier": session.kernels().tier().name(),
            "timings": {
                "load_ms": ms(load_time),
                "prompt_tokens": prompt_ids.len(),
                "prompt_ms": ms(prompt_time),
                "prompt_tokens_per_s": per_second(prompt_ids.len(), prompt_time),
                "generated_tokens": ids.len(),
                "generation_ms": ms(gen_time),
                "generation_tokens_per_s": per_second(gen_steps, gen_time),
            },
        });
        if let Err(e) = writeln!(out, "{}", serde_json::to_string_pretty(&obj)?).and_then(|()| out.flush()) {
            super::closed_or_failed(e)?;
        }
        return Ok(());
    }
    if stop != Stop::OutputClosed {
        if let Err(e) = write_flush(&mut out, &format!("{rest}\n")) {
            super::closed_or_failed(e)?;
        }
    }
    drop(out);
    match stop {
        Stop::ContextFull => eprintln!("ember: stopped: the context ({ctx} tokens) is full"),
        Stop::EndOfGeneration if args.verbose => eprintln!("ember: stopped at an end-of-generation token"),
        _ => {}
    }
    eprintln!(
        "ember: prompt: {} tokens in {:.1} ms ({})",
        prompt_ids.len(),
        ms(prompt_time),
        rate(per_second(prompt_ids.len(), prompt_time))
    );
    eprintln!(
        "ember: generation: {} tokens in {:.1} ms ({})",
        ids.len(),
        ms(gen_time),
        rate(per_second(gen_steps, gen_time))
    );
    Ok(())
}

/// `N tokens/s`, or `n/a` when there was nothing to time.
pub fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a tokens/s".to_string(), |r| format!("{r:.1} tokens/s"))
}

/// Writes and flushes, so text appears as it is made.
pub fn write_flush(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(s.as_bytes())?;
    out.flush()
}
