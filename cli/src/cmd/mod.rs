//! One module per command. Each has `Args` (clap derive) and `run(Args) -> anyhow::Result<()>`.

pub mod bench;
pub mod chat;
pub mod dump;
pub mod info;
pub mod perplexity;
pub mod pull;
pub mod quantize;
pub mod run;
pub mod tokenize;
