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

/// Reads a text file (a prompt, a chat template, a corpus). A file that is
/// not UTF-8 (a Latin-1 export, a binary) is an error naming the offset of
/// its first bad byte and how to convert it, where `read_to_string` said
/// only "stream did not contain valid UTF-8".
pub fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(raw).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {}): ember reads text as UTF-8; convert the file first, \
             e.g. with `iconv -f latin1 -t utf-8`",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Writes `s` to stdout and flushes. A reader that left (`ember info | head`)
/// is not an error: the rest is dropped. Any other failure (a full disk) is an
/// error, where `print!` would panic.
pub fn print_stdout(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes()).and_then(|()| out.flush()).or_else(closed_or_failed)
}

/// `Ok` if stdout failed because its reader left (`ember run ... | head`):
/// the command stops writing, quietly. Any other failure (a full disk) is an
/// error, so lost output never exits 0.
pub fn closed_or_failed(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return Ok(());
    }
    Err(anyhow::Error::new(e).context("writing to stdout"))
}
