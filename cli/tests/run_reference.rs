//! `ember run --json --temp 0 -n 32` against llama.cpp: for every prompt in
//! `../shared/reference/prompts.json`, the prompt ids and the 32 greedy ids
//! must be exactly the ones llama.cpp produced for the same GGUF file
//! (`../shared/reference/*.json`, made by `../shared/tools/make-reference.py`).
//!
//! Files: SmolLM2-135M-Instruct Q4_1 (as pulled), its Q4_0 and Q8_0
//! requantizations (made here with ember's quantizer and checked to be
//! byte-identical with llama.cpp's, by the sha256 in the reference README),
//! and Gemma 3 270M Q4_K_M.
//!
//! Release mode: `cargo test --release -p ember-cli --features e2e --test run_reference`.
//! All four files match exactly (Q4_0 through ember-quant's kernels in the
//! order of llama.cpp's repacked 8x8 Q4_0 kernels; Gemma 3 with llama.cpp's
//! repacked Q4_K, tiled Q6_K and AVX512-FP16 attention orders).
#![cfg(feature = "e2e")]

mod common;

use common::{ember, ok_stdout, stderr};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn reference_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference"))
}

fn reference(name: &str) -> Value {
    let p = reference_dir().join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().expect("an array of ids").iter().map(|x| x.as_u64().expect("an id")).collect()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum (coreutils)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// The sha256 the reference README gives for `llama-quantize ... Q4_1.gguf OUT TYPE`.
fn reference_sha256(ty: &str) -> String {
    let readme = std::fs::read_to_string(reference_dir().join("README.md")).expect("reference README");
    let needle = format!("SmolLM2-135M-Instruct.Q4_1.gguf OUT {ty}`");
    let line = readme.lines().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("no `{needle}` row"));
    line.trim_end_matches('|').trim().rsplit('|').next().unwrap().trim().to_string()
}

/// SmolLM2 requantized to `ty` (Q4_0, Q8_0), kept between runs under the
/// cargo target dir; it must be llama.cpp's very file.
fn requantized(ty: &str) -> PathBuf {
    use ember::quantize::{quantize_file, FileType, Options};
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ember-requantized");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("SmolLM2-135M-Instruct.{ty}.gguf"));
    let want = reference_sha256(ty);
    if !out.exists() || sha256(&out) != want {
        let ft = FileType::from_name(ty).unwrap();
        quantize_file(&common::smollm2(), &out, Options { allow_requantize: true, ..Options::new(ft) }, |_| {})
            .unwrap_or_else(|e| panic!("quantizing to {ty}: {e}"));
        assert_eq!(
            sha256(&out),
            want,
            "ember's {ty} file is not llama.cpp's (see runtime/tests/quantize_reference.rs)"
        );
    }
    out
}

/// Runs every reference prompt through `ember run --json --temp 0 -n 32` and
/// compares; reports every mismatch, with the first differing position.
fn check(model: &Path, reference_name: &str) {
    let r = reference(reference_name);
    let model_s = model.to_str().unwrap();
    let mut failures = Vec::new();
    let prompts = r["generate"].as_array().unwrap();
    assert!(prompts.len() >= 6, "the reference has every prompt");
    for g in prompts {
        let prompt = g["prompt"].as_str().unwrap();
        let out = ember(&["run", "-m", model_s, "--json", "--temp", "0", "-n", "32", "-p", prompt]);
        let got: Value = serde_json::from_str(&ok_stdout(&out)).expect("one JSON object on stdout");
        let (want_p, got_p) = (ids(&g["prompt_ids"]), ids(&got["prompt_ids"]));
        let (want, got_ids) = (ids(&g["ids"]), ids(&got["ids"]));
        if want_p != got_p {
            failures.push(format!("{prompt:?}: prompt ids {got_p:?}, llama.cpp {want_p:?}"));
        } else if want != got_ids {
            let at = want.iter().zip(&got_ids).take_while(|(a, b)| a == b).count();
            failures.push(format!(
                "{prompt:?}: ids differ from position {at}\n  ember     {got_ids:?}\n  llama.cpp {want:?}\n  ember text {:?}",
                got["text"]
            ));
        } else {
            // The text is the decoding of the ids (end-of-generation token rendered as nothing).
            assert_eq!(got["text"], g["text"], "{prompt:?}: same ids, different text");
            let stop = if want.len() < 32 { "eog" } else { "n_predict" };
            assert_eq!(got["stop"], stop, "{prompt:?}");
        }
    }
    assert!(
        failures.is_empty(),
        "{reference_name}: {} of {} prompts differ:\n{}",
        failures.len(),
        prompts.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_q4_1_greedy_ids_match_llama_cpp() {
    check(&common::smollm2(), "smollm2-135m-instruct.q4_1.json");
}

#[test]
fn smollm2_q4_0_greedy_ids_match_llama_cpp() {
    check(&requantized("Q4_0"), "smollm2-135m-instruct.q4_0.json");
}

#[test]
fn smollm2_q8_0_greedy_ids_match_llama_cpp() {
    check(&requantized("Q8_0"), "smollm2-135m-instruct.q8_0.json");
}

/// Gemma 3 270M Q4_K_M: every op in llama.cpp's float order, attention's f16
/// value accumulator as the reference build's AVX512-FP16 code computes it
/// (`ember_quant::attn::F16_STEP`).
#[test]
fn gemma3_q4_k_m_greedy_ids_match_llama_cpp() {
    check(&common::gemma3(), "gemma-3-270m.q4_k_m.json");
}

/// `ember run` tokenizes prompts as llama.cpp does (BOS/EOS as the model
/// adds them, special-token text parsed), checked on more prompts
/// (`tests/data/`: one longer than a prefill batch, one with ChatML markers).
/// `-n 0`: the prompt is processed, nothing generated.
#[test]
fn extra_prompts_tokenize_like_llama_cpp() {
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"));
    for (model, name) in [
        (common::smollm2(), "smollm2-135m-instruct.q4_1.extra.json"),
        (common::gemma3(), "gemma-3-270m.q4_k_m.extra.json"),
    ] {
        let r: Value = serde_json::from_str(&std::fs::read_to_string(data.join(name)).unwrap()).unwrap();
        for g in r["generate"].as_array().unwrap() {
            let prompt = g["prompt"].as_str().unwrap();
            let out = ember(&["run", "-m", model.to_str().unwrap(), "--json", "-n", "0", "-p", prompt]);
            let got: Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
            assert_eq!(ids(&got["prompt_ids"]), ids(&g["prompt_ids"]), "{name}: {prompt:?}");
            assert_eq!(ids(&got["ids"]), Vec::<u64>::new());
        }
    }
}

/// Without `--json` the text is streamed to stdout (the same text `--json`
/// reports for the same greedy run) and the speeds go to stderr.
#[test]
fn streams_text_then_speeds_on_stderr() {
    let model = common::smollm2();
    let m = model.to_str().unwrap();
    let prompt = "The three primary colors are";
    let json: Value =
        serde_json::from_str(&ok_stdout(&ember(&["run", "-m", m, "--json", "--temp", "0", "-n", "32", "-p", prompt])))
            .unwrap();
    assert_eq!(ids(&json["prompt_ids"]).len(), 5);
    let n = ids(&json["ids"]).len();
    let out = ember(&["run", "-m", m, "--temp", "0", "-n", "32", "-p", prompt, "-v"]);
    let text = ok_stdout(&out);
    assert_eq!(text, format!("{}\n", json["text"].as_str().unwrap()));
    assert!(text.len() > 40, "32 tokens of text: {text:?}");
    let err = stderr(&out);
    assert!(err.contains("ember: kernels: "), "-v names the kernel tier:\n{err}");
    let prompt_line = err.lines().find(|l| l.starts_with("ember: prompt: 5 tokens in")).expect(&err);
    let gen_line = err.lines().find(|l| l.starts_with(&format!("ember: generation: {n} tokens in"))).expect(&err);
    assert!(prompt_line.ends_with("tokens/s)") && gen_line.ends_with("tokens/s)"), "{err}");
}

/// Sampling with a fixed seed gives the same tokens whatever the thread count.
#[test]
fn fixed_seed_same_tokens_on_one_and_two_threads() {
    let model = common::smollm2();
    let m = model.to_str().unwrap();
    let run = |threads: &str, seed: &str| {
        let out = ember(&[
            "run",
            "-m",
            m,
            "--json",
            "--temp",
            "0.9",
            "--seed",
            seed,
            "-n",
            "24",
            "-t",
            threads,
            "-p",
            "My favourite animal is",
        ]);
        let v: Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
        ids(&v["ids"])
    };
    let one = run("1", "1234");
    assert!(!one.is_empty());
    assert_eq!(one, run("2", "1234"), "same seed, 1 vs 2 threads");
    // and the seed matters (24 tokens at temperature 0.9 from two seeds being equal is very unlikely)
    assert_ne!(one, run("2", "99"), "different seeds, same tokens");
}
