//! Shared by the integration tests: where the real models are.
#![allow(dead_code)]

use std::path::PathBuf;

/// The model cache used by tests: `$EMBER_HOME`, or `<repo>/.models` (where
/// `scripts/fetch-models.sh` puts them).
pub fn ember_home() -> PathBuf {
    std::env::var_os("EMBER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.models")))
}

/// Path of a cached model file; panics (fails the test) with a clear message if it is missing.
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

/// The shared reference data directory (`../shared/reference`).
pub fn reference_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference"))
}

/// A xorshift generator of f32s in [-1, 1): the random weights of the tiny
/// test models (`model_tiny.rs`, `model_malformed.rs`).
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

pub use ember::model::Arch;

/// Every architecture the tiny test models are written in.
pub const ARCHS: [Arch; 4] = [Arch::Llama, Arch::Mistral, Arch::Qwen2, Arch::Gemma3];

/// Sizes of a tiny test model.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Embedding width.
    pub d: u64,
    /// Query heads.
    pub nh: u64,
    /// Key/value heads.
    pub nkv: u64,
    /// Head size.
    pub hd: u64,
    /// Feed-forward width.
    pub nff: u64,
    /// Blocks.
    pub nl: u64,
}

/// One tensor of a tiny test model: its name, its dims (ggml order), and
/// the scale and offset of its random values (`Rng::f() * scale + offset`;
/// norms sit near 1, matrices near 0).
pub struct TinyTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub scale: f32,
    pub offset: f32,
}

/// The tensors of a tiny `arch` model of shape `s` and `vocab` tokens, in
/// the order both tiny-model tests write them: the embeddings (also the
/// output head for Gemma 3), the output norm and head, then each block's.
pub fn tiny_tensors(arch: Arch, s: Shape, vocab: u64) -> Vec<TinyTensor> {
    let mut out = Vec::new();
    let mut add = |name: String, dims: Vec<u64>, scale: f32, offset: f32| {
        out.push(TinyTensor { name, dims, scale, offset });
    };
    let (qd, kd) = (s.nh * s.hd, s.nkv * s.hd);
    add("token_embd.weight".into(), vec![s.d, vocab], 1.0, 0.0);
    add("output_norm.weight".into(), vec![s.d], 0.2, 1.0);
    if arch != Arch::Gemma3 {
        add("output.weight".into(), vec![s.d, vocab], 0.3, 0.0);
    }
    for il in 0..s.nl {
        let b = |t: &str| format!("blk.{il}.{t}");
        add(b("attn_norm.weight"), vec![s.d], 0.2, 1.0);
        add(b("attn_q.weight"), vec![s.d, qd], 0.25, 0.0);
        add(b("attn_k.weight"), vec![s.d, kd], 0.25, 0.0);
        add(b("attn_v.weight"), vec![s.d, kd], 0.25, 0.0);
        add(b("attn_output.weight"), vec![qd, s.d], 0.25, 0.0);
        add(b("ffn_norm.weight"), vec![s.d], 0.2, 1.0);
        add(b("ffn_gate.weight"), vec![s.d, s.nff], 0.25, 0.0);
        add(b("ffn_up.weight"), vec![s.d, s.nff], 0.25, 0.0);
        add(b("ffn_down.weight"), vec![s.nff, s.d], 0.25, 0.0);
        if arch == Arch::Qwen2 {
            add(b("attn_q.bias"), vec![qd], 0.5, 0.0);
            add(b("attn_k.bias"), vec![kd], 0.5, 0.0);
            add(b("attn_v.bias"), vec![kd], 0.5, 0.0);
        }
        if arch == Arch::Gemma3 {
            add(b("attn_q_norm.weight"), vec![s.hd], 0.2, 1.0);
            add(b("attn_k_norm.weight"), vec![s.hd], 0.2, 1.0);
            add(b("post_attention_norm.weight"), vec![s.d], 0.2, 1.0);
            add(b("post_ffw_norm.weight"), vec![s.d], 0.2, 1.0);
        }
    }
    out
}
