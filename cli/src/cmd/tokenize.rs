//! `ember tokenize [-m MODEL] [--add-special] [--no-parse-special] [--json] TEXT`:
//! the token ids of a text, with their pieces (llama.cpp's `llama-tokenize`),
//! or as a JSON array with `--json`.

use super::run;
use crate::model_arg;
use anyhow::{bail, Context};
use ember::cache;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Arguments of `ember tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A cached model name (see `ember pull --list`) or a path to a GGUF file
    /// [default: smollm2-135m-instruct].
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    model: Option<String>,
    /// Add the BOS/EOS tokens the model asks for.
    #[arg(long)]
    add_special: bool,
    /// Treat special-token text such as `<|im_start|>` as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// Print the ids as a JSON array.
    #[arg(long)]
    json: bool,
    /// Read the text from a file instead.
    #[arg(short = 'f', long = "file", value_name = "FILE", conflicts_with = "text")]
    file: Option<PathBuf>,
    /// The text to tokenize.
    #[arg(value_name = "TEXT", required_unless_present = "file")]
    text: Option<String>,
}

/// A piece as readable text: valid UTF-8 with escapes for control
/// characters, other bytes (part of a character split across tokens) as `\xNN`.
fn show_piece(bytes: &[u8]) -> String {
    let mut s = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(v) => {
                s.extend(v.chars().flat_map(char::escape_debug));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                s.extend(std::str::from_utf8(good).unwrap_or_default().chars().flat_map(char::escape_debug));
                let n = e.error_len().unwrap_or(bad.len());
                for b in &bad[..n] {
                    let _ = write!(s, "\\x{b:02x}");
                }
                rest = &bad[n..];
            }
        }
    }
    s
}

/// Runs `ember tokenize`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => super::read_text(f)?,
        (None, None) => bail!("no text: give TEXT or -f FILE"),
    };
    let path = model_arg::resolve(args.model.as_deref().unwrap_or(cache::DEFAULT_MODEL))?;
    let loaded = run::open(&path)?;
    let tok = &loaded.tokenizer;
    let ids = tok.encode(&text, args.add_special, !args.no_parse_special).context("tokenizing")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if args.json {
        writeln!(out, "{}", serde_json::to_string(&ids)?)
    } else {
        ids.iter().try_for_each(|&id| {
            let piece = tok.token_to_piece(id).unwrap_or_default();
            writeln!(out, "{id:>7} -> '{}'", show_piece(piece))
        })
    };
    // `ember tokenize ... | head`: the reader left, which is not an error.
    written.or_else(super::closed_or_failed)
}

#[cfg(test)]
mod tests {
    use super::show_piece;

    #[test]
    fn pieces_are_escaped() {
        assert_eq!(show_piece(b"Hello"), "Hello");
        assert_eq!(show_piece(b" a\nb\t"), " a\\nb\\t");
        assert_eq!(show_piece("é".as_bytes()), "é");
        // the first two bytes of a four-byte emoji, then a stray continuation byte
        assert_eq!(show_piece(&[0xF0, 0x9F, b'x', 0x80]), "\\xf0\\x9fx\\x80");
    }
}
