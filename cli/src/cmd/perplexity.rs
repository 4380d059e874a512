//! `ember perplexity [-m MODEL] -f FILE [-c CTX] [-b BATCH] [-t N] [--chunks N]`:
//! the perplexity of a model on a text file, by llama.cpp's `llama-perplexity`
//! method (see `ember::perplexity`): chunks of CTX tokens, each chunk's first
//! token replaced by BOS when the model adds it, the second half of each chunk
//! scored. Prints the running value after each chunk (`[1]17.1234,[2]...`)
//! and `Final estimate: PPL = X +/- Y`.
//!
//! Defaults follow llama-perplexity: `-c 512`, `-b 2048` (capped at the
//! context: ember evaluates one chunk at a time), one thread per physical core.

use crate::model_arg::ModelArg;
use anyhow::{bail, Context};
use ember::perplexity::{self, Options};
use ember::session::{Session, SessionOptions};
use ember::tokenizer::Tokenizer;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `ember perplexity`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// The text to score (read whole; one final newline dropped, as llama.cpp's `-f`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", value_name = "CTX", default_value_t = 512)]
    ctx: usize,
    /// Tokens per forward call (capped at CTX).
    #[arg(short = 'b', long = "batch-size", value_name = "BATCH", default_value_t = 2048)]
    batch: usize,
    /// Threads for matrix work (0 or less: one per physical core).
    #[arg(short = 't', long = "threads", value_name = "N", default_value_t = 0, allow_negative_numbers = true)]
    threads: i64,
    /// Score at most N chunks [default: all].
    #[arg(long = "chunks", value_name = "N")]
    chunks: Option<usize>,
}

/// Runs `ember perplexity`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.batch == 0 {
        bail!("--batch-size must be at least 1");
    }
    if perplexity::scored_per_chunk(args.ctx) == 0 {
        bail!("--ctx-size must be at least 3 (the second half of each chunk is scored), got {}", args.ctx);
    }
    let raw = super::read_text(&args.file)?;
    let text = perplexity::strip_final_newline(&raw);

    let path = args.model.resolve()?;
    let model = ember::Model::open(&path).with_context(|| format!("{}", path.display()))?;
    let tokenizer = Tokenizer::from_gguf(&model.gguf()).context("reading the tokenizer")?;
    let bos = perplexity::bos_for(&tokenizer)?;

    eprintln!("perplexity: tokenizing the input ..");
    let t = Instant::now();
    let tokens = perplexity::tokenize(&tokenizer, text).context("tokenizing the text")?;
    eprintln!("perplexity: tokenization took {:.3} ms", t.elapsed().as_secs_f64() * 1e3);
    if tokens.len() < 2 * args.ctx {
        bail!(
            "you need at least {} tokens to evaluate perplexity with a context of {}; {} tokenizes to only {} tokens",
            2 * args.ctx,
            args.ctx,
            args.file.display(),
            tokens.len()
        );
    }
    let all_chunks = perplexity::chunk_count(tokens.len(), args.ctx)?;
    let n_chunks = args.chunks.map_or(all_chunks, |n| n.min(all_chunks));
    if n_chunks == 0 {
        bail!("--chunks 0 scores nothing");
    }
    let used = &tokens[..n_chunks * args.ctx];

    let batch = args.batch.min(args.ctx);
    let session_opts = SessionOptions {
        ctx_len: args.ctx,
        batch,
        threads: super::run::threads(args.threads),
        logits_all: true,
        ..Default::default()
    };
    let mut session = Session::new(&model, session_opts).context("creating the session")?;
    super::run::warn_past_training(&session);
    eprintln!(
        "perplexity: calculating perplexity over {n_chunks} chunks, n_ctx={}, batch_size={batch}, threads={}, kernels {}",
        args.ctx,
        session.plan().opts.threads,
        session.kernels().describe()
    );

    let opts = Options { ctx: args.ctx, batch, bos };
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let mut write_err = None;
    let sum = perplexity::evaluate(&mut session, used, &opts, &mut |d| {
        if d.chunk == 1 {
            let pass = start.elapsed().as_secs_f64();
            eprintln!(
                "perplexity: {pass:.2} seconds per pass - ETA {:.2} minutes",
                (pass * d.n_chunks as f64) as u64 as f64 / 60.0
            );
        }
        if let Err(e) = write!(out, "[{}]{:.4},", d.chunk, d.running.ppl()).and_then(|_| out.flush()) {
            write_err.get_or_insert(e);
        }
    })?;
    if let Some(e) = write_err {
        return Err(e).context("writing to stdout");
    }
    writeln!(out)?;
    let est = sum.estimate();
    match est.uncertainty {
        Some(u) => writeln!(out, "Final estimate: PPL = {:.4} +/- {:.5}", est.ppl, u)?,
        None => {
            writeln!(out, "Final estimate: PPL = {:.4}", est.ppl)?;
            eprintln!("perplexity: unexpected non-positive variance of log(prob): no uncertainty");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "perplexity: {} tokens scored, {} evaluated in {secs:.2} s ({:.1} tokens/s)",
        sum.count,
        used.len(),
        used.len() as f64 / secs
    );
    Ok(())
}
