//! Shared by the CLI tests: the built binary, the real models, Python, scratch folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The model cache the tests read: `$EMBER_HOME`, or `<repo>/.models` (filled
/// by `scripts/fetch-models.sh`).
pub fn ember_home() -> PathBuf {
    std::env::var_os("EMBER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.models")))
}

/// A cached model file; fails the test with a clear message if it is missing.
pub fn model(name: &str, file: &str) -> PathBuf {
    let p = ember_home().join("models").join(name).join(file);
    assert!(p.exists(), "model file {} is missing: run scripts/fetch-models.sh (or `ember pull {name}`)", p.display());
    p
}

/// SmolLM2-135M-Instruct Q4_1.
pub fn smollm2() -> PathBuf {
    model("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Gemma 3 270M Q4_K_M.
pub fn gemma3() -> PathBuf {
    model("gemma3-270m", "gemma-3-270m-q4_k_m.gguf")
}

/// `ember ARGS` with `EMBER_HOME` set to the test cache and pip disabled
/// (`EMBER_PYTHON` names no program), so a test never downloads by accident.
pub fn ember(args: &[&str]) -> Output {
    ember_in(&ember_home(), args, &[("EMBER_PYTHON", "/nonexistent/python3-disabled-in-tests")])
}

/// `ember ARGS` with a given `EMBER_HOME` and extra environment.
pub fn ember_in(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember"));
    cmd.args(args).env("EMBER_HOME", home).env_remove("EMBER_KERNELS").env_remove("EMBER_PIP_WHEELS_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the ember binary")
}

/// `ember ARGS` whose reader leaves after the first line of its stdout (as
/// `ember ... | head -1`): that line, and the output once ember has ended.
pub fn ember_first_line(args: &[&str]) -> (String, Output) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .env("EMBER_HOME", ember_home())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the ember binary");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    // The reader is dropped here, closing the pipe.
    (first, child.wait_with_output().unwrap())
}

/// stdout as text, after checking the command succeeded.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ember failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a Python 3 script (with the `gguf` and `numpy` packages, which
/// scripts/test.sh installs) and returns its stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed (scripts/test.sh installs it with gguf and numpy)");
    assert!(
        out.status.success(),
        "python3 failed (are `gguf` and `numpy` installed? `python3 -m pip install gguf numpy`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A scratch folder under the cargo target dir, emptied at creation and removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ember-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a tiny llama model (1 layer, 8-wide, 2 heads, a 16-token gpt2
/// vocabulary, f32 weights of small deterministic values) to `path`: enough
/// to run every command in a debug build in milliseconds.
pub fn write_tiny_llama(path: &Path) {
    use ember::gguf::Writer;
    use ember_quant::GgmlType;
    let (n_embd, n_ff, n_vocab) = (8u64, 16u64, 16u64);
    let mut w = Writer::new();
    w.add_str("general.architecture", "llama").unwrap();
    for (k, v) in [
        ("llama.block_count", 1),
        ("llama.embedding_length", n_embd as u32),
        ("llama.feed_forward_length", n_ff as u32),
        ("llama.attention.head_count", 2),
        ("llama.attention.head_count_kv", 2),
        ("llama.context_length", 64),
    ] {
        w.add_u32(k, v).unwrap();
    }
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5).unwrap();
    w.add_f32("llama.rope.freq_base", 10000.0).unwrap();
    let tokens: Vec<String> = ["<s>", "</s>"]
        .iter()
        .map(|s| s.to_string())
        .chain((b'a'..).take(14).map(|c| (c as char).to_string()))
        .collect();
    w.add_str("tokenizer.ggml.model", "gpt2").unwrap();
    w.add_str_array("tokenizer.ggml.tokens", &tokens).unwrap();
    let types: Vec<i32> = (0..n_vocab).map(|i| if i < 2 { 3 } else { 1 }).collect();
    w.add_i32_array("tokenizer.ggml.token_type", &types).unwrap();
    w.add_str_array("tokenizer.ggml.merges", ["a b"]).unwrap();
    w.add_u32("tokenizer.ggml.bos_token_id", 0).unwrap();
    w.add_u32("tokenizer.ggml.eos_token_id", 1).unwrap();
    let mut seed = 1u32;
    let mut f32s = |n: u64| -> Vec<u8> {
        (0..n)
            .flat_map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((seed >> 8) as f32 / (1u32 << 24) as f32 * 0.2 - 0.1).to_le_bytes()
            })
            .collect()
    };
    let shapes: [(&str, &[u64]); 11] = [
        ("token_embd.weight", &[n_embd, n_vocab]),
        ("output_norm.weight", &[n_embd]),
        ("blk.0.attn_norm.weight", &[n_embd]),
        ("blk.0.attn_q.weight", &[n_embd, n_embd]),
        ("blk.0.attn_k.weight", &[n_embd, n_embd]),
        ("blk.0.attn_v.weight", &[n_embd, n_embd]),
        ("blk.0.attn_output.weight", &[n_embd, n_embd]),
        ("blk.0.ffn_norm.weight", &[n_embd]),
        ("blk.0.ffn_gate.weight", &[n_embd, n_ff]),
        ("blk.0.ffn_up.weight", &[n_embd, n_ff]),
        ("blk.0.ffn_down.weight", &[n_ff, n_embd]),
    ];
    for (name, dims) in shapes {
        w.add_tensor(name, GgmlType::F32, dims, f32s(dims.iter().product())).unwrap();
    }
    std::fs::write(path, w.to_bytes()).unwrap();
}
