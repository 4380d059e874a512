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

/// Writes `s` to stdout and flushes. A reader that left (`ember info | head`)
/// is not an error: the rest is dropped. Any other failure (a full disk) is an
/// error, where `print!` would panic.
pub fn print_stdout(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r.map_err(|e| anyhow::Error::new(e).context("writing to stdout"))?),
    }
}
