//! `ember tokenize --json` against llama.cpp: every string of
//! `../shared/reference/tokenizer-strings.json` gives exactly llama.cpp's ids,
//! without and with `--add-special` (special-token text parsed as special
//! tokens in both, as the reference was made), for SmolLM2 (byte-level BPE)
//! and Gemma 3 (SentencePiece, 262k pieces). Also the text output (ids with
//! pieces) and `--no-parse-special`.
//!
//! Release mode: `cargo test --release -p ember-cli --features e2e --test tokenize_reference`.
#![cfg(feature = "e2e")]

mod common;

use common::{ember, ok_stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn read_json(p: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// `../shared/reference/NAME`, or `tests/data/NAME` (more strings, same method: see its README).
fn reference(name: &str) -> Value {
    let shared = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference")).join(name);
    if shared.exists() {
        read_json(shared)
    } else {
        read_json(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).join(name))
    }
}

fn tokenize(model: &Path, extra: &[&str], text: &str) -> Vec<u64> {
    let mut args = vec!["tokenize", "-m", model.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", text]);
    let out = ok_stdout(&ember(&args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not a JSON array of ids: {out:?}: {e}"))
}

fn check(model: &Path, reference_name: &str) {
    let r = reference(reference_name);
    let strings = r["tokenize"].as_array().unwrap();
    assert!(strings.len() >= 10, "{reference_name}: every string");
    let mut failures = Vec::new();
    for s in strings {
        let text = s["text"].as_str().unwrap();
        let want: Vec<u64> = serde_json::from_value(s["ids"].clone()).unwrap();
        let want_special: Vec<u64> = serde_json::from_value(s["ids_add_special"].clone()).unwrap();
        let got = tokenize(model, &[], text);
        if got != want {
            failures.push(format!("{text:?}: {got:?}, llama.cpp {want:?}"));
        }
        let got = tokenize(model, &["--add-special"], text);
        if got != want_special {
            failures.push(format!("{text:?} --add-special: {got:?}, llama.cpp {want_special:?}"));
        }
    }
    assert!(failures.is_empty(), "{reference_name}:\n{}", failures.join("\n"));
}

#[test]
fn smollm2_ids_match_llama_cpp() {
    check(&common::smollm2(), "smollm2-135m-instruct.q4_1.json");
}

#[test]
fn gemma3_ids_match_llama_cpp() {
    check(&common::gemma3(), "gemma-3-270m.q4_k_m.json");
}

#[test]
fn smollm2_extra_strings_match_llama_cpp() {
    check(&common::smollm2(), "smollm2-135m-instruct.q4_1.extra.json");
}

#[test]
fn gemma3_extra_strings_match_llama_cpp() {
    check(&common::gemma3(), "gemma-3-270m.q4_k_m.extra.json");
}

#[test]
fn text_output_shows_ids_and_pieces() {
    let m = common::smollm2();
    let out = ok_stdout(&ember(&["tokenize", "-m", m.to_str().unwrap(), "Hello, world!\n"]));
    // ids from the reference ("Hello, world!" = 19556 28 905 17), then "\n" = 198
    assert_eq!(out, "  19556 -> 'Hello'\n     28 -> ','\n    905 -> ' world'\n     17 -> '!'\n    198 -> '\\n'\n");
}

#[test]
fn no_parse_special_tokenizes_marker_text_as_text() {
    let m = common::smollm2();
    let parsed = tokenize(&m, &[], "<|im_start|>user");
    assert_eq!(parsed[0], 1, "<|im_start|> is token 1 in SmolLM2");
    let plain = tokenize(&m, &["--no-parse-special"], "<|im_start|>user");
    assert!(plain.len() > parsed.len() && !plain.contains(&1), "{plain:?}");
}
