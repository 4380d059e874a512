//! `ember info` on the real models, checked against the `gguf` Python
//! package's reader, and on malformed files.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the `gguf` Python package reads from a file: the `<arch>.*` keys and
/// every tensor's name, type, shape, byte size and absolute data offset.
const PY_DESCRIBE: &str = r#"
import json, sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
keys = [k for k in r.fields if k.startswith(arch + ".")]
tensors = [[t.name, t.tensor_type.name, [int(d) for d in t.shape], int(t.n_bytes), int(t.data_offset)]
           for t in r.tensors]
print(json.dumps({"arch": arch, "keys": keys, "tensors": tensors}))
"#;

fn python_view(path: &std::path::Path) -> Value {
    serde_json::from_str(&python(PY_DESCRIBE, &[path.to_str().unwrap()])).unwrap()
}

fn info_json(model: &str) -> Value {
    let out = ember(&["info", model, "--json"]);
    serde_json::from_str(&ok_stdout(&out)).expect("--json prints valid JSON")
}

fn type_counts(j: &Value) -> BTreeMap<String, u64> {
    j["types"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v["count"].as_u64().unwrap())).collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Every tensor (name, type, shape, bytes, where its data is) and every
/// `<arch>.*` key agrees with the Python reader.
fn agrees_with_python(j: &Value, path: &std::path::Path) {
    let py = python_view(path);
    assert_eq!(j["architecture"], py["arch"]);
    let data_offset = j["data_offset"].as_u64().unwrap();
    let ours: Vec<Value> = j["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let at = data_offset + t["offset"].as_u64().unwrap();
            serde_json::json!([t["name"], t["type"], t["shape"], t["bytes"], at])
        })
        .collect();
    assert_eq!(&Value::Array(ours), &py["tensors"]);
    let mut our_keys: Vec<&str> = j["hyperparameters"].as_object().unwrap().keys().map(String::as_str).collect();
    let mut py_keys: Vec<&str> = py["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    our_keys.sort_unstable();
    py_keys.sort_unstable();
    assert_eq!(our_keys, py_keys, "every hyperparameter is listed");
    let total: u64 = j["tensors"].as_array().unwrap().iter().map(|t| t["bytes"].as_u64().unwrap()).sum();
    assert_eq!(j["tensor_bytes"].as_u64(), Some(total));
    let by_type: u64 = j["types"].as_object().unwrap().values().map(|v| v["bytes"].as_u64().unwrap()).sum();
    assert_eq!(by_type, total);
    assert_eq!(j["file_size"].as_u64(), Some(std::fs::metadata(path).unwrap().len()));
}

#[test]
fn smollm2_text() {
    let path = smollm2();
    let text = ok_stdout(&ember(&["info", path.to_str().unwrap()]));
    for line in [
        "architecture:  llama",
        "tensors:       272",
        "tokenizer:     gpt2 (pre: smollm), 49152 tokens",
        "chat template: present",
        "file size:     98362432 bytes",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "missing `{line}` in:\n{text}");
    }
    let has = |prefix: &str| text.lines().any(|l| l.trim_start().starts_with(prefix));
    assert!(has("Q4_1      210 tensors"), "{text}");
    assert!(has("F32        61 tensors"), "{text}");
    assert!(has("Q8_0        1 tensors"), "{text}");
    assert!(has("all       272 tensors"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("llama.block_count") && l.ends_with("= 30")), "{text}");
    assert!(has("token_embd.weight          Q8_0    [576, 49152]      30081024"), "{text}");
    // The kernel tier this CPU gets, as ember-quant chooses it.
    let tier = ember_quant::Kernels::detect().unwrap().tier().name();
    assert!(text.lines().any(|l| l.starts_with(&format!("kernels:       {tier} ("))), "{text}");
}

#[test]
fn smollm2_json() {
    let path = smollm2();
    let j = info_json(path.to_str().unwrap());
    assert_eq!(j["architecture"], "llama");
    assert_eq!(j["tensor_count"], 272);
    assert_eq!(j["tensors"].as_array().unwrap().len(), 272);
    assert_eq!(type_counts(&j), counts(&[("Q4_1", 210), ("F32", 61), ("Q8_0", 1)]));
    assert_eq!(j["tokenizer"]["model"], "gpt2");
    assert_eq!(j["tokenizer"]["pre"], "smollm");
    assert_eq!(j["tokenizer"]["vocab_size"], 49152);
    assert_eq!(j["chat_template"], true);
    assert_eq!(j["hyperparameters"]["llama.block_count"], 30);
    assert_eq!(j["hyperparameters"]["llama.embedding_length"], 576);
    assert_eq!(j["hyperparameters"]["llama.attention.layer_norm_rms_epsilon"].as_f64(), Some(1e-5));
    assert_eq!(j["gguf_version"], 3);
    agrees_with_python(&j, &path);
}

#[test]
fn gemma3() {
    let path = common::gemma3();
    let j = info_json(path.to_str().unwrap());
    assert_eq!(j["architecture"], "gemma3");
    assert_eq!(j["tensor_count"], 236);
    assert_eq!(type_counts(&j), counts(&[("F32", 109), ("Q5_0", 81), ("Q4_K", 27), ("Q8_0", 10), ("Q6_K", 9)]));
    assert_eq!(j["hyperparameters"]["gemma3.block_count"], 18);
    agrees_with_python(&j, &path);
    let text = ok_stdout(&ember(&["info", path.to_str().unwrap()]));
    assert!(text.contains("\narchitecture:  gemma3\n") && text.contains("\ntensors:       236\n"), "{text}");
    let order: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "totals by type:")
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["F32", "Q5_0", "Q4_K", "Q8_0", "Q6_K", "all"], "totals sorted by count");
}

#[test]
fn cached_names_and_m_flag_resolve_like_paths() {
    let path = smollm2();
    let by_path = info_json(path.to_str().unwrap());
    let by_name = info_json("smollm2-135m-instruct");
    let by_flag: Value =
        serde_json::from_str(&ok_stdout(&ember(&["info", "-m", "smollm2-135m-instruct", "--json"]))).unwrap();
    // The default model when none is given.
    let by_default: Value = serde_json::from_str(&ok_stdout(&ember(&["info", "--json"]))).unwrap();
    for j in [&by_name, &by_flag, &by_default] {
        assert_eq!(j["tensors"], by_path["tensors"]);
        assert_eq!(std::fs::canonicalize(j["path"].as_str().unwrap()).unwrap(), std::fs::canonicalize(&path).unwrap());
    }
    let out = ember(&["info", "gemma3-270m", "-m", "smollm2-135m-instruct"]);
    assert!(!out.status.success(), "MODEL and -m together are refused");
}

#[test]
fn kernel_tier_follows_ember_kernels() {
    let path = smollm2();
    let out = ember_in(&ember_home(), &["info", path.to_str().unwrap(), "--json"], &[("EMBER_KERNELS", "generic")]);
    let j: Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    assert_eq!(j["kernels"]["tier"], "generic");
    assert!(j["kernels"]["describe"].as_str().unwrap().starts_with("generic (f32=generic"), "{}", j["kernels"]);
    let out = ember_in(&ember_home(), &["info", path.to_str().unwrap()], &[("EMBER_KERNELS", "sse9")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("EMBER_KERNELS must be one of"), "{}", stderr(&out));
}

#[test]
fn unknown_names_and_folders_are_clear_errors() {
    let out = ember(&["info", "llama-70b"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: `llama-70b` is neither a file nor a known model name; known models: \
         smollm2-135m-instruct, gemma3-270m, all-minilm-l6-v2"
    );
    let s = Scratch::new("info-folder");
    let out = ember(&["info", s.0.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is a folder, not a GGUF file"), "{}", stderr(&out));
}

/// Malformed files (cut from the real SmolLM2 header, or edited) exit with
/// status 1 and the reader's own message.
#[test]
fn malformed_files_exit_non_zero_with_the_readers_message() {
    let s = Scratch::new("info-bad");
    let real = std::fs::read(smollm2()).unwrap();
    let data_offset = ember::gguf::File::parse(&real).unwrap().data_offset();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("magic", [b"GGML".as_slice(), &real[4..4096]].concat()),
        ("cut-in-header", real[..10].to_vec()),
        ("cut-in-metadata", real[..5000].to_vec()),
        ("cut-in-tensor-infos", real[..data_offset - 100].to_vec()),
        ("cut-in-tensor-data", real[..data_offset + 1000].to_vec()),
    ];
    let mut v1 = real[..4096].to_vec();
    v1[4..8].copy_from_slice(&1u32.to_le_bytes());
    cases.push(("version-1", v1));
    let mut v4 = real[..4096].to_vec();
    v4[4..8].copy_from_slice(&4u32.to_le_bytes());
    cases.push(("version-4", v4));
    let mut huge = real[..4096].to_vec();
    huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("tensor-count", huge));
    for (name, bytes) in cases {
        let path = s.path(&format!("{name}.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        let expected = ember::gguf::File::parse(&bytes).expect_err(name).to_string();
        assert!(!expected.is_empty());
        let out = ember(&["info", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        assert!(err.starts_with("error: ") && err.contains(&expected), "{name}: expected `{expected}` in:\n{err}");
        assert!(err.contains(path.to_str().unwrap()), "{name}: the message names the file:\n{err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}
