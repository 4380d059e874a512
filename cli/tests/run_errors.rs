//! `ember run`, `ember tokenize` and `ember chat` refuse bad input with a
//! clear message and a non-zero exit, never a panic: a prompt longer than
//! the context, an empty prompt, an unknown model, bad flags, a file that is
//! not a GGUF. None of these runs the model, so they are cheap in debug builds.

mod common;

use common::{ember, stderr};
use std::process::Output;

/// Asserts failure (exit 1 for our errors, 2 for clap's usage errors), no
/// panic, and a message on stderr containing every `needles`.
fn fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "should have failed; stderr:\n{err}");
    assert!(matches!(out.status.code(), Some(1 | 2)), "exit code {:?}; stderr:\n{err}", out.status.code());
    assert!(!err.contains("panicked"), "panic:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn prompt_longer_than_the_context() {
    let m = common::smollm2();
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(8);
    let out = ember(&["run", "-m", m.to_str().unwrap(), "-c", "16", "-p", &prompt]);
    fails_with(&out, &["the prompt is 81 tokens but the context holds 16", "-c"]);
}

#[test]
fn prompt_filling_the_context_exactly_leaves_no_room() {
    let m = common::smollm2();
    // "Hello, world!" is 4 tokens (reference ids 19556 28 905 17).
    let out = ember(&["run", "-m", m.to_str().unwrap(), "-c", "4", "-p", "Hello, world!"]);
    fails_with(&out, &["the prompt is 4 tokens but the context holds 4", "at least one free position"]);
}

#[test]
fn empty_prompt() {
    let m = common::smollm2();
    fails_with(&ember(&["run", "-m", m.to_str().unwrap(), "-p", ""]), &["the prompt is empty"]);
    fails_with(&ember(&["run", "-m", m.to_str().unwrap()]), &["no prompt", "-p"]);
}

#[test]
fn unknown_model_name() {
    let out = ember(&["run", "-m", "no-such-model", "-p", "hi"]);
    fails_with(&out, &["no-such-model", "known models", "smollm2-135m-instruct"]);
    let out = ember(&["tokenize", "-m", "no-such-model", "hi"]);
    fails_with(&out, &["no-such-model", "known models"]);
    let out = ember(&["chat", "-m", "no-such-model"]);
    fails_with(&out, &["no-such-model", "known models"]);
}

#[test]
fn not_a_gguf_file() {
    let dir = common::Scratch::new("run-not-gguf");
    let p = dir.path("x.gguf");
    std::fs::write(&p, b"this is not a model").unwrap();
    fails_with(&ember(&["run", "-m", p.to_str().unwrap(), "-p", "hi"]), &["not a GGUF file"]);
    fails_with(&ember(&["tokenize", "-m", p.to_str().unwrap(), "hi"]), &["not a GGUF file"]);
}

/// A prompt file (or chat template) that is not UTF-8 said only "stream
/// did not contain valid UTF-8"; it names the first bad byte and how to
/// convert the file.
#[test]
fn a_text_file_that_is_not_utf8() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let dir = common::Scratch::new("run-latin1");
    let p = dir.path("latin1.txt");
    std::fs::write(&p, b"caf\xe9 au lait").unwrap();
    let f = p.to_str().unwrap();
    let needles = ["latin1.txt is not UTF-8 text (invalid byte at offset 3)", "iconv"];
    fails_with(&ember(&["run", "-m", m, "-f", f]), &[&["reading the prompt (-f)"], &needles[..]].concat());
    fails_with(&ember(&["tokenize", "-m", m, "-f", f]), &needles);
    fails_with(&ember(&["chat", "-m", m, "--chat-template", f]), &needles);
}

#[test]
fn bad_flags() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "--top-p", "2"]), &["--top-p must be in (0, 1]"]);
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "--min-p", "-1"]), &["--min-p"]);
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "--repeat-penalty", "0"]), &["--repeat-penalty"]);
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "--temp", "nan"]), &["--temp"]);
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "-b", "0"]), &["--batch-size"]);
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "-n", "lots"]), &["invalid value 'lots'"]);
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "--kv-type", "q2"]), &["invalid value 'q2'"]);
    fails_with(&ember(&["run", "-m", m, "-p", "hi", "--no-such-flag"]), &["unexpected argument '--no-such-flag'"]);
    fails_with(&ember(&["tokenize", "-m", m]), &["required", "<TEXT>"]);
    fails_with(
        &ember(&["chat", "-m", m, "--chat-template", "/nonexistent/template.jinja"]),
        &["--chat-template \"/nonexistent/template.jinja\"", "cannot be read as a file", "No such file"],
    );
}

#[test]
fn broken_chat_template_is_reported_before_reading_input() {
    let dir = common::Scratch::new("chat-bad-template");
    let p = dir.path("t.jinja");
    std::fs::write(&p, "{% for m in messages %}{{ m.content }").unwrap();
    let m = common::smollm2();
    let out = ember(&["chat", "-m", m.to_str().unwrap(), "--chat-template", p.to_str().unwrap()]);
    fails_with(&out, &["chat template:"]);
}
