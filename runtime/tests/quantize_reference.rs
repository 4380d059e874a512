//! `ember quantize` against llama.cpp's `llama-quantize`: requantizing
//! SmolLM2-135M-Instruct Q4_1 to Q4_0 and to Q8_0 must give the very file
//! llama.cpp wrote (`llama-quantize --allow-requantize IN OUT TYPE`, llama.cpp
//! build 0c1e570 vendored by llama-cpp-python 0.3.36), whose sha256 are in
//! `../shared/reference/README.md`; and Gemma 3 Q4_K_M, itself made by
//! `llama-quantize`, must come back unchanged from Q4_K_M.
//! Release mode: `cargo test --release -p ember --features e2e`.
#![cfg(feature = "e2e")]

mod common;

use ember::quantize::{FileType, Options, Plan};
use ember::Model;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::time::Instant;

/// A `Write` that only hashes: the ~100 MB outputs never touch the disk.
struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Write for Hasher {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.sha.update(b);
        self.len += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The sha256 the reference README gives for `llama-quantize ... TYPE`.
fn reference_sha256(ty: &str) -> String {
    let readme = std::fs::read_to_string(common::reference_dir().join("README.md")).expect("reference README");
    let needle = format!("SmolLM2-135M-Instruct.Q4_1.gguf OUT {ty}`");
    let line =
        readme.lines().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("no `{needle}` row in the README"));
    let sha = line.trim_end_matches('|').trim().rsplit('|').next().unwrap().trim().to_string();
    assert_eq!(sha.len(), 64, "sha256 in {line:?}");
    sha
}

fn check(file_type: FileType) {
    let model = Model::open(common::smollm2()).unwrap();
    let file = model.gguf();
    let options = Options { allow_requantize: true, ..Options::new(file_type) };
    let plan = Plan::new(&file, options).unwrap();
    let mut out = Hasher { sha: Sha256::new(), len: 0 };
    let start = Instant::now();
    let sum = plan.write(&mut out, |_| {}).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let got: String = out.sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    eprintln!("{file_type}: {} bytes in {secs:.2} s, sha256 {got}", out.len);
    assert_eq!(sum.file_size, out.len);
    assert_eq!(got, reference_sha256(file_type.name()), "{file_type}: not llama.cpp's file");
}

#[test]
fn smollm2_q4_1_to_q4_0_is_llama_cpps_file() {
    check(FileType::Q4_0);
}

#[test]
fn smollm2_q4_1_to_q8_0_is_llama_cpps_file() {
    check(FileType::Q8_0);
}

/// The Gemma 3 file was itself made by `llama-quantize ... Q4_K_M`: planning
/// Q4_K_M for it must pick every tensor's type as it is (so nothing is
/// converted, no `--allow-requantize` needed) and rewrite the very same file,
/// metadata order and tensor order included.
#[test]
fn gemma3_q4_k_m_to_q4_k_m_is_the_same_file() {
    let model = Model::open(common::gemma3()).unwrap();
    let plan = Plan::new(&model.gguf(), Options::new(FileType::Q4_K_M)).unwrap();
    assert!(plan.tensors().iter().all(|t| !t.converts()), "every tensor keeps its type");
    let mut out = Hasher { sha: Sha256::new(), len: 0 };
    plan.write(&mut out, |_| {}).unwrap();
    let got: String = out.sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let readme = std::fs::read_to_string(common::reference_dir().join("README.md")).unwrap();
    let line = readme.lines().find(|l| l.contains("gemma-3-270m-q4_k_m.gguf (")).expect("gemma row in the README");
    assert!(line.contains(&got), "sha256 {got} is not the one in {line:?}");
}

#[test]
fn smollm2_requantizing_is_refused_without_the_flag() {
    let model = Model::open(common::smollm2()).unwrap();
    let err = Plan::new(&model.gguf(), Options::new(FileType::Q4_0)).unwrap_err().to_string();
    assert!(err.contains("--allow-requantize"), "{err}");
}
