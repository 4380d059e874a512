//! `ember`: the command line of the ember edge inference runtime.
//!
//! Each command lives in its own module under `cmd/` with an `Args` struct
//! (clap derive) and a `run` function; this file only lists them. Logic that
//! is not about the command line belongs in the library crates.

mod cmd;
mod model_arg;
mod progress;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// ember: run transformer language models (GGUF) on the CPUs of edge devices.
#[derive(Parser, Debug)]
#[command(name = "ember", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Continue a prompt: stream generated text, then prompt and generation speed.
    Run(cmd::run::Args),
    /// Chat with a model using its chat template; user turns are read from stdin.
    Chat(cmd::chat::Args),
    /// Show the token ids (and pieces) of a text.
    Tokenize(cmd::tokenize::Args),
    /// Download known models into the cache ($EMBER_HOME, default ~/.cache/ember).
    Pull(cmd::pull::Args),
    /// Describe a model: architecture, hyperparameters, tokenizer, tensors, kernel tier.
    Info(cmd::info::Args),
    /// Write one tensor's values, dequantized to f32, to stdout.
    Dump(cmd::dump::Args),
    /// Quantize a GGUF model to another type, as llama.cpp's llama-quantize does.
    Quantize(cmd::quantize::Args),
    /// Perplexity of a model on a text file, as llama.cpp's llama-perplexity computes it.
    Perplexity(cmd::perplexity::Args),
    /// Prompt and generation speed (tokens/s) like llama-bench, cold-start time to first token, peak RSS.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Chat(args) => cmd::chat::run(args),
        Command::Tokenize(args) => cmd::tokenize::run(args),
        Command::Pull(args) => cmd::pull::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Dump(args) => cmd::dump::run(args),
        Command::Quantize(args) => cmd::quantize::run(args),
        Command::Perplexity(args) => cmd::perplexity::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
