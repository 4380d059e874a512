//! `ember quantize IN OUT TYPE [--allow-requantize]`: llama.cpp's
//! `llama-quantize` (same tensor types, same metadata, same bytes); the logic
//! is `ember::quantize`. Progress, one line per tensor, goes to stderr.

use anyhow::{anyhow, Context};
use ember::quantize::{FileType, Options, Progress};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `ember quantize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model to quantize: a GGUF path or a cached model name.
    input: String,
    /// The GGUF file to write (written next to it as OUT.partial, then renamed).
    output: PathBuf,
    /// Target type: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K (= Q4_K_M), Q5_K (= Q5_K_M), Q6_K.
    #[arg(value_name = "TYPE")]
    file_type: String,
    /// Convert tensors that are already quantized (loses precision: each
    /// rounding adds error). Without it such a model is refused.
    #[arg(long)]
    allow_requantize: bool,
    /// Worker threads (default: one per core). The output does not depend on it.
    #[arg(long, short = 't')]
    threads: Option<usize>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Runs `ember quantize`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let file_type = FileType::from_name(&args.file_type).ok_or_else(|| {
        anyhow!("`{}` is not a type ember quantizes to; choose one of {}", args.file_type, FileType::NAMES)
    })?;
    let input = crate::model_arg::resolve(&args.input)?;
    let options = Options { file_type, allow_requantize: args.allow_requantize, threads: args.threads.unwrap_or(0) };

    // The whole conversion is planned (and a refused one reported) before a file is created.
    eprintln!("quantizing {} to {file_type} -> {}", input.display(), args.output.display());
    let start = Instant::now();
    let show = |p: &Progress<'_>| {
        let t = p.tensor;
        let shape: Vec<String> = t.shape().iter().map(u64::to_string).collect();
        // A fallback: the target type's blocks do not fit the rows (llama.cpp warns too).
        let fallback = if t.fallback { ", fallback" } else { "" };
        let what = if t.converts() {
            format!("{} -> {}{fallback}", t.input.ty, t.to)
        } else {
            format!("{} (copied{fallback})", t.to)
        };
        eprintln!(
            "[{:>4}/{:>4}] {:<36} [{:>14}] {:<22} {:>8.2} MiB -> {:>8.2} MiB",
            p.index + 1,
            p.count,
            t.name(),
            shape.join(", "),
            what,
            p.bytes_in as f64 / MIB,
            p.bytes_out as f64 / MIB,
        );
    };
    let sum = ember::quantize::quantize_file(&input, &args.output, options, show).with_context(|| {
        format!("cannot quantize {} to {file_type} into {}", input.display(), args.output.display())
    })?;
    eprintln!(
        "{} tensors ({} converted, {} fallbacks): {:.2} MiB -> {:.2} MiB of tensor data, file {} bytes, {:.1} s",
        sum.tensors,
        sum.converted,
        sum.fallbacks,
        sum.bytes_in as f64 / MIB,
        sum.bytes_out as f64 / MIB,
        sum.file_size,
        start.elapsed().as_secs_f64(),
    );
    // A file ember cannot run (an architecture it lacks, a tensor missing)
    // is written all the same, as llama-quantize writes it: llama.cpp may
    // run it. Said now, not first at `ember run`.
    if let Some(why) = ember::Model::open(&args.output).ok().and_then(|m| super::info::unrunnable(&m.gguf())) {
        eprintln!("warning: ember cannot run {}: {why}", args.output.display());
    }
    Ok(())
}
