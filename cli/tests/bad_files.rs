//! Every subcommand that opens a model refuses a path that is not a regular
//! file (a folder, a FIFO, a device) with a clear message and a non-zero
//! exit: no mmap error code, no hang. Cheap in debug builds: no real model.

mod common;

use common::{ember, stderr};
use std::process::{Command, Output, Stdio};

/// Asserts exit 1, no panic, and a message on stderr containing every `needles`.
fn fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "exit status {}; stderr:\n{err}", out.status);
    assert!(!err.contains("panicked"), "panic:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

/// A scratch folder named `name` holding a tiny llama model, and the model's path.
fn tiny(name: &str) -> (common::Scratch, std::path::PathBuf) {
    let dir = common::Scratch::new(name);
    let m = dir.path("tiny.gguf");
    common::write_tiny_llama(&m);
    (dir, m)
}

/// A text of `n` words "ab" in `dir` (for perplexity), and its path.
fn ab_text(dir: &common::Scratch, n: usize) -> String {
    let text = dir.path("text.txt");
    std::fs::write(&text, "ab ".repeat(n)).unwrap();
    text.to_str().unwrap().to_string()
}

/// `ember ARGS` with `input` on its stdin and its stdout sent to `stdout`.
fn ember_fed(args: &[&str], input: &[u8], stdout: Stdio) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .env("EMBER_HOME", common::ember_home())
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ember");
    // A command that does not read stdin may be gone already: what it did is in its output.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().expect("wait for ember")
}

/// `ember CMD PATH ...` for each subcommand that opens a model file.
fn each_command(path: &str, text: &str) -> Vec<(&'static str, Output)> {
    let out = |args: &[&str]| ember(args);
    vec![
        ("info", out(&["info", path])),
        ("run", out(&["run", path, "-p", "hi"])),
        ("tokenize", out(&["tokenize", "-m", path, "hi"])),
        ("dump", out(&["dump", path, "-t", "x"])),
        ("perplexity", out(&["perplexity", path, "-f", text])),
        ("bench", out(&["bench", "-m", path, "-p", "1", "-n", "0", "-r", "1", "--no-cold-start"])),
    ]
}

/// `dump`, `perplexity` and `quantize` used to report a folder as
/// "mmap failed: uncategorized error (os error 19)".
#[test]
fn a_folder_is_not_a_model() {
    let dir = common::Scratch::new("bad-files-folder");
    let folder = dir.path("m.gguf");
    std::fs::create_dir(&folder).unwrap();
    let text = dir.path("t.txt");
    std::fs::write(&text, "some text").unwrap();
    let (f, t) = (folder.to_str().unwrap(), text.to_str().unwrap());
    for (cmd, out) in each_command(f, t) {
        let err = stderr(&out);
        assert!(!err.contains("os error 19"), "{cmd}: {err}");
        fails_with(&out, &["folder"]);
    }
    let q = dir.path("q.gguf");
    fails_with(&ember(&["quantize", f, q.to_str().unwrap(), "Q8_0"]), &["is a folder, not a regular file"]);
    assert!(!q.exists());
}

/// Opening a FIFO blocked until a writer came: `ember info FIFO` hung.
#[cfg(unix)]
#[test]
fn a_fifo_is_not_a_model_and_does_not_hang() {
    let dir = common::Scratch::new("bad-files-fifo");
    let fifo = dir.path("m.gguf");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let text = dir.path("t.txt");
    std::fs::write(&text, "some text").unwrap();
    let (f, t) = (fifo.to_str().unwrap(), text.to_str().unwrap());
    for (_, out) in each_command(f, t) {
        fails_with(&out, &["is a FIFO, not a regular file"]);
    }
    let q = dir.path("q.gguf");
    fails_with(&ember(&["quantize", f, q.to_str().unwrap(), "Q8_0"]), &["is a FIFO, not a regular file"]);
}

/// `/dev/null` was "mmap failed: uncategorized error (os error 19)".
#[cfg(target_os = "linux")]
#[test]
fn a_device_is_not_a_model() {
    fails_with(&ember(&["info", "/dev/null"]), &["/dev/null: is a device, not a regular file"]);
    fails_with(&ember(&["dump", "/dev/null", "-t", "x"]), &["/dev/null: is a device, not a regular file"]);
}

/// `--repeat-last-n 99999999999` sized a 400 GB penalty window buffer and
/// aborted the process ("memory allocation of 399999999996 bytes failed").
/// The window is now capped at the context length.
#[test]
fn a_huge_penalty_window_is_capped_at_the_context() {
    let (_dir, m) = tiny("bad-files-last-n"); // the folder lives to the end of the test
    let m = m.to_str().unwrap();
    let out = ember(&["run", m, "-p", "ab", "-n", "2", "--temp", "0", "--repeat-last-n", "99999999999"]);
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    let out =
        ember_fed(&["chat", m, "-n", "2", "--temp", "0", "--repeat-last-n", "99999999999"], b"ab\n", Stdio::piped());
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
}

/// A tiny model whose token embeddings (also its output head) are all NaN
/// ran and printed arbitrary tokens. Generation now stops at the first token
/// with an error naming the NaN logit; perplexity refuses to report NaN.
#[test]
fn nan_weights_are_an_error_not_arbitrary_text() {
    let (dir, m) = tiny("bad-files-nan");
    let mut bytes = std::fs::read(&m).unwrap();
    let embd = ember::gguf::File::parse(&bytes).unwrap().tensor("token_embd.weight").unwrap();
    let start = embd.data.as_ptr() as usize - bytes.as_ptr() as usize;
    let range = start..start + embd.data.len();
    for v in bytes[range].chunks_exact_mut(4) {
        v.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(&m, &bytes).unwrap();
    let m = m.to_str().unwrap();
    let nan = "is NaN or infinite: its weights or activations are not finite numbers";
    fails_with(&ember(&["run", m, "-p", "ab", "-n", "4", "--temp", "0"]), &[nan]);
    fails_with(&ember(&["run", m, "-p", "ab", "-n", "4"]), &[nan]);
    fails_with(&ember_fed(&["chat", m, "-n", "4"], b"ab\n", Stdio::piped()), &[nan]);
    fails_with(&ember(&["perplexity", m, "-f", &ab_text(&dir, 40), "-c", "16"]), &[nan]);
}

/// `-c` past the model's training context (64 tokens for the tiny model)
/// was taken silently. It still runs, as in llama.cpp, with a warning on
/// stderr from run, chat and perplexity; none at or below 64.
#[test]
fn a_context_past_the_training_one_is_warned_about() {
    let (dir, m) = tiny("bad-files-ctx");
    let m = m.to_str().unwrap();
    let text = &ab_text(&dir, 150);
    let warning = "warning: the context (128 tokens) is longer than the model's training context (64)";
    for (ctx, warned) in [("128", true), ("64", false)] {
        let outs = [
            ember(&["run", m, "-p", "ab", "-n", "2", "--temp", "0", "-c", ctx]),
            ember_fed(&["chat", m, "-n", "2", "--temp", "0", "-c", ctx], b"ab\n", Stdio::piped()),
            ember(&["perplexity", m, "-f", text, "-c", ctx]),
        ];
        for out in outs {
            let err = stderr(&out);
            assert!(out.status.success(), "-c {ctx}: {err}");
            assert_eq!(err.contains("warning: the context"), warned, "-c {ctx}: {err}");
            assert!(!warned || err.contains(warning), "-c {ctx}: {err}");
        }
    }
}

/// llama.cpp's negative defaults were refused with clap's "unexpected
/// argument '-1'": `--seed -1` (random), `--top-k -1` (all tokens), `-t -1`
/// (one thread per core); and `perplexity -t 0` was refused where `run -t
/// 0` means one per core. All run now.
#[test]
fn llama_cpp_negative_defaults_and_zero_threads_are_taken() {
    let (dir, m) = tiny("bad-files-negatives");
    let m = m.to_str().unwrap();
    let text = &ab_text(&dir, 40);
    for extra in [&["--seed", "-1"][..], &["--top-k", "-1"], &["-t", "-1"], &["-t", "0"]] {
        let args: Vec<&str> = ["run", m, "-p", "ab", "-n", "2"].iter().copied().chain(extra.iter().copied()).collect();
        let out = ember(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    for t in ["0", "-1"] {
        let out = ember(&["perplexity", m, "-f", text, "-c", "16", "-t", t]);
        assert!(out.status.success(), "perplexity -t {t}: {}", stderr(&out));
    }
}

/// `quantize` into a folder that does not exist said only "cannot quantize
/// IN to Q8_0: create failed: entity not found", as if the input were at
/// fault; the message now names the output and what failed on it.
#[test]
fn quantize_names_an_output_it_cannot_create() {
    let (dir, m) = tiny("bad-files-quantize-out");
    let out = dir.path("no-such-folder/q.gguf");
    fails_with(
        &ember(&["quantize", m.to_str().unwrap(), out.to_str().unwrap(), "Q8_0"]),
        &[&format!("into {}", out.display()), "creating the output file failed"],
    );
}

/// `--chat-template llama3` (no such built-in, no such file) said only
/// "reading the chat template llama3: No such file or directory"; it now
/// says it is neither, and lists the built-in names.
#[test]
fn an_unknown_chat_template_name_lists_the_built_in_ones() {
    let (_dir, m) = tiny("bad-files-template-name");
    let out = ember_fed(&["chat", m.to_str().unwrap(), "--chat-template", "llama3"], b"ab\n", Stdio::piped());
    fails_with(
        &out,
        &["--chat-template \"llama3\" is not a built-in template (chatml, gemma) and cannot be read as a file"],
    );
}

/// With EMBER_HOME naming a file, the cache error printed its I/O error
/// twice ("...: Not a directory (os error 20): Not a directory (os error
/// 20)"): once in the message and once as its source.
#[test]
fn a_cache_io_error_is_printed_once() {
    let (dir, _m) = tiny("bad-files-home-file");
    let home = dir.path("home-is-a-file");
    std::fs::write(&home, b"").unwrap();
    let out = common::ember_in(&home, &["pull", "smollm2-135m-instruct"], &[("EMBER_PYTHON", "/nonexistent")]);
    fails_with(&out, &["Not a directory"]);
    assert_eq!(stderr(&out).matches("Not a directory").count(), 1, "{}", stderr(&out));
}

/// `ember info` on a model ember cannot run (here an architecture it does
/// not know) printed the file with exit 0 and no word that it would not
/// run; it now says why, in the text and in the JSON.
#[test]
fn info_says_whether_ember_runs_the_model() {
    let (dir, m) = tiny("bad-files-info-runs");
    let out = ember(&["info", m.to_str().unwrap()]);
    assert!(common::ok_stdout(&out).contains("ember runs it: yes"));
    // `general.architecture` = "llama" becomes "bloom" (same length).
    let mut bytes = std::fs::read(&m).unwrap();
    let key = b"general.architecture";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 8;
    assert_eq!(&bytes[at..at + 5], b"llama");
    bytes[at..at + 5].copy_from_slice(b"bloom");
    let bloom = dir.path("bloom.gguf");
    std::fs::write(&bloom, &bytes).unwrap();
    let text = common::ok_stdout(&ember(&["info", bloom.to_str().unwrap()]));
    assert!(text.contains("ember runs it: no: unsupported architecture `bloom`"), "{text}");
    let j: serde_json::Value =
        serde_json::from_str(&common::ok_stdout(&ember(&["info", bloom.to_str().unwrap(), "--json"]))).unwrap();
    assert_eq!(j["runnable"], false);
    assert!(j["unrunnable_because"].as_str().unwrap().contains("unsupported architecture `bloom`"));
}

/// A chat turn that is not UTF-8 was sent with U+FFFD in place of the bad
/// bytes, silently. It is now a failed turn (exit 1 at the end); the turns
/// around it are answered.
#[test]
fn a_chat_turn_that_is_not_utf8_is_refused() {
    let (_dir, m) = tiny("bad-files-chat-utf8"); // the folder lives to the end of the test
    let args = ["chat", m.to_str().unwrap(), "-n", "2", "--temp", "0"];
    let out = ember_fed(&args, b"ab\nc\xff\xfed\nab\n", Stdio::piped());
    fails_with(
        &out,
        &["turn 2: the input is not UTF-8 text (invalid byte at offset 1 of the turn)", "1 turn(s) failed"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "turns 1 and 3 are answered");
}

/// `ember tokenize ... | head -1` exited 1 with "error: Broken pipe (os error
/// 32)"; `dump`, `run` and `info` end quietly when the reader leaves, and so
/// does `tokenize` now.
#[test]
fn tokenize_into_a_closed_pipe_is_not_an_error() {
    let (dir, m) = tiny("bad-files-tokenize-pipe");
    // One token per letter: some 3 MB of output, far more than a pipe holds.
    let text = dir.path("text.txt");
    std::fs::write(&text, "abcdefghijklmn".repeat(15_000)).unwrap();
    let (first, out) = common::ember_first_line(&["tokenize", "-m", m.to_str().unwrap(), "-f", text.to_str().unwrap()]);
    assert!(first.contains("-> 'a'"), "{first}");
    let err = stderr(&out);
    assert!(out.status.success(), "exit status {}; stderr:\n{err}", out.status);
    assert!(!err.contains("Broken pipe"), "{err}");
}

/// `info`, `bench` and `pull` printed with `print!`, which panics when stdout
/// fails: `ember info M > /dev/full` exited 101 with "failed printing to
/// stdout". Now an error (and a reader that left is still not one).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_on_stdout_is_an_error_not_a_panic() {
    let (dir, m) = tiny("bad-files-dev-full");
    let m = m.to_str().unwrap();
    let home = dir.path("home");
    for args in [
        &["info", m][..],
        &["info", m, "--json"],
        &["bench", "-m", m, "-p", "4", "-n", "1", "-r", "1", "--no-cold-start"],
        &["pull", "--list"],
        &["dump", m, "-t", "token_embd.weight"],
    ] {
        let full = std::fs::File::create("/dev/full").expect("open /dev/full");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(args)
            .env("EMBER_HOME", &home)
            .stdout(full)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run ember");
        fails_with(&out, &["writing to stdout", "No space left on device"]);
    }
}

/// `ember run M -p .. > /dev/full` and `ember chat` likewise exited 0: a
/// failed write counted as a reader that left, so lost output looked like
/// success. Now exit 1 with the cause.
#[cfg(target_os = "linux")]
#[test]
fn run_and_chat_into_a_full_disk_fail() {
    let (_dir, m) = tiny("bad-files-run-dev-full"); // the folder lives to the end of the test
    let m = m.to_str().unwrap();
    for args in [
        &["run", m, "-p", "ab", "-n", "3", "--temp", "0"][..],
        &["run", m, "-p", "ab", "-n", "3", "--temp", "0", "--json"],
        &["chat", m, "-n", "3", "--temp", "0"],
    ] {
        let full = std::fs::File::create("/dev/full").expect("open /dev/full");
        let out = ember_fed(args, b"ab\n", Stdio::from(full));
        fails_with(&out, &["writing to stdout", "No space left on device"]);
    }
}
