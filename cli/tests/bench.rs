//! `ember bench`: flag errors (bad lists, `-r 0`, a missing model) are clear
//! messages, never panics; `--json` on tiny random models (written here, with
//! a byte-level BPE tokenizer so the cold-start `ember run` works too) gives
//! one entry per (model, threads, test) with positive rates, and one
//! cold-start entry per (model, threads). Cheap in debug builds.

mod common;

use common::{ember, ok_stdout, stderr, Scratch};
use ember::gguf::{MetaValue, ValueType, Writer};
use ember::quant::GgmlType;
use std::path::{Path, PathBuf};
use std::process::Output;

/// GPT-2's byte → char mapping (printable Latin-1 bytes stay, the rest go to U+0100..).
fn byte_char(b: u8) -> char {
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b as u32) {
        return b as char;
    }
    let n = (0..b as u32).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(0x100 + n).unwrap()
}

/// A tiny llama model (F32 random weights, 2 layers, d 32) with a 259-token
/// byte-level BPE vocabulary (256 bytes, "Ġw", BOS, EOS), written to `path`.
fn write_tiny(path: &Path, seed: u64) {
    let (d, nh, nkv, hd, nff, nl) = (32u64, 4u64, 2u64, 8u64, 48u64, 2);
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    tokens.extend(["Ġw", "<s>", "</s>"].map(String::from));
    let vocab = tokens.len() as u64;
    let mut types = vec![MetaValue::I32(1); tokens.len()];
    types[257] = MetaValue::I32(3);
    types[258] = MetaValue::I32(3);
    let strs = |v: Vec<String>| MetaValue::Array(ValueType::Str, v.into_iter().map(MetaValue::Str).collect());

    let mut w = Writer::new();
    w.add_str("general.architecture", "llama").unwrap();
    w.add_str("general.name", "tiny").unwrap();
    w.add_u32("llama.embedding_length", d as u32).unwrap();
    w.add_u32("llama.block_count", nl).unwrap();
    w.add_u32("llama.feed_forward_length", nff as u32).unwrap();
    w.add_u32("llama.attention.head_count", nh as u32).unwrap();
    w.add_u32("llama.attention.head_count_kv", nkv as u32).unwrap();
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5).unwrap();
    w.add_f32("llama.rope.freq_base", 10000.0).unwrap();
    w.add_u32("llama.context_length", 128).unwrap();
    w.add_meta("tokenizer.ggml.model", &MetaValue::Str("gpt2".into())).unwrap();
    w.add_meta("tokenizer.ggml.pre", &MetaValue::Str("gpt-2".into())).unwrap();
    w.add_meta("tokenizer.ggml.tokens", &strs(tokens)).unwrap();
    w.add_meta("tokenizer.ggml.token_type", &MetaValue::Array(ValueType::I32, types)).unwrap();
    w.add_meta("tokenizer.ggml.merges", &strs(vec!["Ġ w".to_string()])).unwrap();
    w.add_meta("tokenizer.ggml.bos_token_id", &MetaValue::U32(257)).unwrap();
    w.add_meta("tokenizer.ggml.eos_token_id", &MetaValue::U32(258)).unwrap();
    w.add_meta("tokenizer.ggml.add_bos_token", &MetaValue::Bool(true)).unwrap();

    let mut state = seed;
    let mut rnd = |n: u64| -> Vec<u8> {
        (0..n)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (((state >> 40) as f32 / (1u64 << 24) as f32) * 0.5 - 0.25).to_le_bytes()
            })
            .collect()
    };
    let ones = |n: u64| -> Vec<u8> { (0..n).flat_map(|_| 1.0f32.to_le_bytes()).collect() };
    let mut add = |name: String, dims: Vec<u64>, bytes: Vec<u8>| {
        w.add_tensor(&name, GgmlType::F32, &dims, bytes).unwrap();
    };
    add("token_embd.weight".into(), vec![d, vocab], rnd(d * vocab));
    add("output_norm.weight".into(), vec![d], ones(d));
    add("output.weight".into(), vec![d, vocab], rnd(d * vocab));
    for il in 0..nl {
        let b = |s: &str| format!("blk.{il}.{s}");
        add(b("attn_norm.weight"), vec![d], ones(d));
        add(b("attn_q.weight"), vec![d, nh * hd], rnd(d * nh * hd));
        add(b("attn_k.weight"), vec![d, nkv * hd], rnd(d * nkv * hd));
        add(b("attn_v.weight"), vec![d, nkv * hd], rnd(d * nkv * hd));
        add(b("attn_output.weight"), vec![nh * hd, d], rnd(nh * hd * d));
        add(b("ffn_norm.weight"), vec![d], ones(d));
        add(b("ffn_gate.weight"), vec![d, nff], rnd(d * nff));
        add(b("ffn_up.weight"), vec![d, nff], rnd(d * nff));
        add(b("ffn_down.weight"), vec![nff, d], rnd(nff * d));
    }
    std::fs::write(path, w.to_bytes()).unwrap();
}

fn tiny_models(dir: &Scratch) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.path("tiny-a.gguf"), dir.path("tiny-b.gguf"));
    write_tiny(&a, 0x1234_5678);
    write_tiny(&b, 0x9abc_def0);
    (a, b)
}

/// Asserts failure (exit 1 for our errors, 2 for clap's), no panic, nothing on
/// stdout, and a message on stderr containing every one of `needles`.
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
fn bad_flags_are_clear_errors() {
    let dir = Scratch::new("bench-flags");
    let (a, _) = tiny_models(&dir);
    let m = a.to_str().unwrap();
    fails_with(&ember(&["bench", "-m", m, "-r", "0"]), &["--repetitions must be at least 1"]);
    fails_with(&ember(&["bench", "-m", m, "-r", "99999999999999999"]), &["--repetitions must be at most 100000"]);
    fails_with(&ember(&["bench", "-m", m, "-p", "16,,32"]), &["-p/--n-prompt", "empty item"]);
    fails_with(&ember(&["bench", "-m", m, "-n", "sixty"]), &["-n/--n-gen", "\"sixty\" is not"]);
    fails_with(&ember(&["bench", "-m", m, "-t", "-2"]), &["-2"]);
    fails_with(&ember(&["bench", "-m", m, "-b", "0"]), &["--batch-size must be at least 1"]);
    fails_with(&ember(&["bench", "-m", m, "-p", "0", "-n", "0", "--no-cold-start"]), &["nothing to measure"]);
    // A missing second model fails before anything is measured.
    let missing = dir.path("missing.gguf");
    fails_with(&ember(&["bench", "-m", m, "-m", missing.to_str().unwrap()]), &["missing.gguf"]);
    fails_with(&ember(&["bench", "-m", "no-such-model"]), &["no-such-model", "known models"]);
    // A file that is not a GGUF.
    let junk = dir.path("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    fails_with(&ember(&["bench", "-m", junk.to_str().unwrap(), "--no-cold-start"]), &["junk.gguf"]);
}

#[test]
fn json_has_one_entry_per_model_threads_and_test() {
    let dir = Scratch::new("bench-json");
    let (a, b) = tiny_models(&dir);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let args = ["bench", "-m", a, "-m", b, "-p", "8,16", "-n", "4", "-t", "1,2", "-r", "2", "--json"];
    let v: serde_json::Value = serde_json::from_str(&ok_stdout(&ember(&args))).expect("valid JSON");
    let results = v["results"].as_array().expect("results array");
    assert_eq!(results.len(), 2 * 2 * 3, "{results:#?}");
    let mut seen = Vec::new();
    for r in results {
        let key = (
            r["model_filename"].as_str().unwrap().to_string(),
            r["n_threads"].as_u64().unwrap(),
            r["test"].as_str().unwrap().to_string(),
        );
        assert!(!seen.contains(&key), "duplicate entry {key:?}");
        seen.push(key.clone());
        let samples = r["samples_ts"].as_array().unwrap();
        assert_eq!(samples.len(), 2, "-r 2 gives two samples: {r}");
        assert!(samples.iter().all(|s| s.as_f64().unwrap() > 0.0), "{r}");
        assert!(r["avg_ts"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["stddev_ts"].as_f64().unwrap() >= 0.0, "{r}");
        let (np, ng) = (r["n_prompt"].as_u64().unwrap(), r["n_gen"].as_u64().unwrap());
        assert_eq!(key.2, if ng == 0 { format!("pp{np}") } else { format!("tg{ng}") });
        // 2 layers × 9 tensors + 3: d 32, ff 48, vocab 259, 4 q heads and 2 kv heads of 8.
        let params = 2 * 32 * 259 + 32 + 2 * (2 * 32 + 32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 48);
        assert_eq!(r["model_n_params"].as_u64().unwrap(), params);
        assert_eq!(r["model_size"].as_u64().unwrap(), params * 4, "F32 weights");
    }
    for m in [a, b] {
        for t in [1, 2] {
            for test in ["pp8", "pp16", "tg4"] {
                assert!(seen.contains(&(m.to_string(), t, test.to_string())), "no entry for {m} -t {t} {test}");
            }
        }
    }
    let cold = v["cold_start"].as_array().expect("cold_start array");
    assert_eq!(cold.len(), 2 * 2, "{cold:#?}");
    for c in cold {
        assert_eq!(c["samples_ms"].as_array().unwrap().len(), 2, "{c}");
        assert!(c["avg_ms"].as_f64().unwrap() > 0.0, "{c}");
        // Any process maps at least a few hundred KiB.
        assert!(c["peak_rss_bytes"].as_u64().unwrap() > 100 * 1024, "{c}");
    }
}

#[test]
fn markdown_table() {
    let dir = Scratch::new("bench-md");
    let (a, _) = tiny_models(&dir);
    let out = ok_stdout(&ember(&["bench", "-m", a.to_str().unwrap(), "-p", "8", "-n", "2", "-t", "1", "-r", "1"]));
    assert!(out.contains("| model | size | params | threads | test | t/s |"), "{out}");
    let row = |test: &str| out.lines().find(|l| l.starts_with("| tiny-a |") && l.contains(&format!("| {test} |")));
    for test in ["pp8", "tg2"] {
        let line = row(test).unwrap_or_else(|| panic!("no {test} row in:\n{out}"));
        assert!(line.contains("| 1 |") && line.contains(" ± "), "{line}");
    }
    assert!(out.contains("| model | threads | cold start to first token (ms) | peak RSS |"), "{out}");
    assert!(out.contains("kernels: "), "{out}");
}

/// `-t 0` was refused ("values must be at least 1"); it is one thread per
/// physical core, as in `ember run -t 0` and llama.cpp, and a list that
/// names that count twice measures it once.
#[test]
fn zero_threads_is_one_per_physical_core() {
    let dir = Scratch::new("bench-zero-threads");
    let (a, _) = tiny_models(&dir);
    let cores = ember::threads::physical_cores().to_string();
    let out = ember(
        &["bench", "-m", a.to_str().unwrap(), "-p", "4", "-n", "0", "-r", "1", "--no-cold-start", "--json", "-t"]
            .into_iter()
            .chain([format!("0,{cores}").as_str()])
            .collect::<Vec<_>>(),
    );
    let j: serde_json::Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    let threads: Vec<u64> = j["results"].as_array().unwrap().iter().map(|r| r["n_threads"].as_u64().unwrap()).collect();
    assert_eq!(threads, vec![ember::threads::physical_cores() as u64], "{j}");
}
