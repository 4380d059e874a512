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
