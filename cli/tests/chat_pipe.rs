//! `ember chat` driven through stdin (a pipe, not a terminal): a three-turn
//! conversation whose later turns reuse the KV cache, the template markers
//! never printed, the oldest turns dropped (system prompt kept) when the
//! context fills, Gemma's template used for a Gemma file without one, and the
//! `\` continuation and `/reset`, `/exit` lines.
//!
//! Release mode: `cargo test --release -p ember-cli --features e2e --test chat_pipe`.
#![cfg(feature = "e2e")]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `ember ARGS` with `input` on stdin.
fn chat(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .env("EMBER_HOME", common::ember_home())
        .env("EMBER_PYTHON", "/nonexistent/python3-disabled-in-tests")
        .env_remove("EMBER_KERNELS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the ember binary");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ember chat failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One `-v` line per turn: `turn N: prompt P tokens, R reused from the KV cache, F prefilled ...`.
#[derive(Debug)]
struct Prompt {
    tokens: usize,
    reused: usize,
    prefilled: usize,
}

/// The numbers after `key` in `line`, in order.
fn numbers(line: &str) -> Vec<usize> {
    line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
}

fn prompts(err: &str) -> Vec<Prompt> {
    err.lines()
        .filter(|l| l.starts_with("ember: turn ") && l.contains(": prompt "))
        .map(|l| {
            let n = numbers(l.split(": prompt ").nth(1).unwrap());
            Prompt { tokens: n[0], reused: n[1], prefilled: n[2] }
        })
        .collect()
}

/// Tokens of each reply, from the `-v` lines `turn N: reply R tokens ...`.
fn replies(err: &str) -> Vec<usize> {
    err.lines()
        .filter(|l| l.starts_with("ember: turn ") && l.contains(": reply "))
        .map(|l| numbers(l.split(": reply ").nth(1).unwrap())[0])
        .collect()
}

fn assert_no_markers(stdout: &str) {
    for m in ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<|endoftext|>", "<bos>", "<eos>"] {
        assert!(!stdout.contains(m), "template marker {m} printed:\n{stdout}");
    }
}

const SMOLLM_SYSTEM: &str =
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";

#[test]
fn three_turns_reuse_the_kv_cache() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let turns = ["What is the capital of France?", "And of Germany?", "Thank you!"];
    let out = chat(&["chat", "-m", m, "--temp", "0", "-n", "16", "-v"], &format!("{}\n", turns.join("\n")));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_no_markers(&stdout);
    assert!(err.contains("chat template: the model's own template"), "{err}");

    let p = prompts(&err);
    let r = replies(&err);
    assert_eq!(p.len(), 3, "three turns:\n{err}");
    assert_eq!(r.len(), 3, "three replies:\n{err}");
    assert!(r.iter().all(|&n| n > 0), "every reply has text: {r:?}\n{err}");
    assert_eq!((p[0].reused, p[0].prefilled), (0, p[0].tokens), "turn 1 starts from an empty cache: {p:?}");
    for t in 1..3 {
        // The whole previous prompt stays in the cache, and only the new part is run.
        assert!(p[t].reused >= p[t - 1].tokens, "turn {}: {p:?}", t + 1);
        assert_eq!(p[t].reused + p[t].prefilled, p[t].tokens, "{p:?}");
        assert!(p[t].prefilled < p[t].tokens / 2, "turn {} prefilled most of its prompt again: {p:?}", t + 1);
    }

    // The first reply is what `ember run` gives for the rendered first turn
    // (SmolLM2's template adds its default system prompt).
    let first = format!("{SMOLLM_SYSTEM}<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n", turns[0]);
    let run = common::ok_stdout(&common::ember(&["run", "-m", m, "--temp", "0", "-n", "16", "-p", &first]));
    assert!(stdout.starts_with(&run), "chat's first reply is not `ember run`'s:\nchat:\n{stdout}\nrun:\n{run}");
    assert!(stdout.len() > run.len() + 2, "the second and third replies are printed:\n{stdout}");
}

#[test]
fn full_context_drops_oldest_turns_and_keeps_the_system_prompt() {
    let m = common::smollm2();
    let input = "Hi there, who are you?\nTell me about cats.\nAnd dogs?\nAnd birds?\nAnd fish?\n";
    let system = "You are a terse assistant.";
    let out = chat(
        &["chat", "-m", m.to_str().unwrap(), "--temp", "0", "-n", "16", "-c", "128", "-v", "--system", system],
        input,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_no_markers(&stdout);
    let p = prompts(&err);
    assert_eq!(p.len(), 5, "five turns:\n{err}");
    assert_eq!(replies(&err).len(), 5, "five replies:\n{err}");
    let dropped: Vec<_> = err.lines().filter(|l| l.contains("dropped the")).collect();
    assert!(!dropped.is_empty(), "the context (128) must fill over five turns:\n{err}");
    assert!(dropped[0].contains("kept the system prompt"), "{err}");
    // "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n" is more than 8 tokens: when
    // turns are dropped the text changes after it, so the cache keeps at least that much.
    assert!(p.iter().all(|q| q.tokens < 128), "{p:?}");
    let shrunk: Vec<_> = p.windows(2).filter(|w| w[1].reused < w[0].tokens).map(|w| w[1].reused).collect();
    assert!(!shrunk.is_empty(), "some turn could not keep the whole previous prompt: {p:?}");
    assert!(shrunk.iter().all(|&r| r >= 8), "the system prompt stays in the cache: {p:?}\n{err}");
}

#[test]
fn gemma_without_a_template_gets_the_builtin_one_and_says_so() {
    let g = common::gemma3();
    let out = chat(&["chat", "-m", g.to_str().unwrap(), "--temp", "0", "-n", "8", "-v"], "Hello!\nHow are you?\n");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("built-in `gemma` template: the model file has no tokenizer.chat_template"), "{err}");
    assert_no_markers(&stdout);
    let p = prompts(&err);
    assert_eq!(p.len(), 2, "{err}");
    // <bos> <start_of_turn> user \n Hello ! <end_of_turn> \n <start_of_turn> model \n: the template
    // writes <bos> and the tokenizer adds one; the prompt must have it once.
    assert_eq!(p[0].tokens, 11, "one BOS, not two: {p:?}");
    assert!(p[1].reused >= p[0].tokens, "{p:?}");
}

#[test]
fn continuation_lines_and_commands() {
    let m = common::smollm2();
    let input = "Write a haiku\\\nabout the sea.\n\n/reset\nHi!\n/exit\nThis line is never read.\n";
    let out = chat(&["chat", "-m", m.to_str().unwrap(), "--temp", "0", "-n", "8", "-v"], input);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let p = prompts(&err);
    assert_eq!(p.len(), 2, "two turns (empty line skipped, /exit ends):\n{err}");
    assert!(err.contains("conversation forgotten"), "{err}");
    assert_eq!(p[1].reused, 0, "/reset empties the cache: {p:?}");
    // "Write a haiku\nabout the sea." is one message: more tokens than "Hi!".
    assert!(p[0].tokens > p[1].tokens, "{p:?}");
}
