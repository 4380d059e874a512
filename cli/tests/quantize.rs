//! `ember quantize` as a user runs it, on small GGUF files built with the
//! writer: progress on stderr, the file written, unknown types and
//! requantization without `--allow-requantize` refused with a clear message
//! and no file left behind, a warning where ember cannot run the result.
//! (The rules and bytes are tested in the `ember` crate:
//! `runtime/tests/quantize*.rs`.)

mod common;

use ember::gguf::{File, Writer};
use ember::quant::GgmlType;
use std::path::Path;

/// A tiny llama-like GGUF: a norm (F32), a weight of type `ty`, a tied embedding.
fn write_model(path: &Path, ty: GgmlType) {
    let mut w = Writer::new();
    w.add_str("general.architecture", "llama").unwrap();
    w.add_u32("llama.block_count", 1).unwrap();
    w.add_str("general.name", "tiny").unwrap();
    let f32s = |n: usize| -> Vec<u8> { (0..n).flat_map(|i| ((i as f32 * 0.37).sin()).to_le_bytes()).collect() };
    w.add_tensor("blk.0.attn_norm.weight", GgmlType::F32, &[64], f32s(64)).unwrap();
    let q = {
        let x: Vec<f32> = (0..256).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut out = vec![0u8; ty.row_bytes(256).unwrap()];
        ember::quant::matmul::quantize(ty, &x, &mut out).unwrap();
        out
    };
    w.add_tensor("blk.0.attn_q.weight", ty, &[64, 4], q).unwrap();
    w.add_tensor("token_embd.weight", GgmlType::F32, &[256, 2], f32s(512)).unwrap();
    std::fs::write(path, w.to_bytes()).unwrap();
}

#[test]
fn quantizes_with_progress_on_stderr() {
    let d = common::Scratch::new("quantize-ok");
    let (inp, out) = (d.path("in.gguf"), d.path("out.gguf"));
    write_model(&inp, GgmlType::F32);
    let o = common::ember(&["quantize", inp.to_str().unwrap(), out.to_str().unwrap(), "q4_0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("[   1/   3]") && err.contains("[   3/   3]"), "a progress line per tensor:\n{err}");
    let bytes = std::fs::read(&out).unwrap();
    let f = File::parse(&bytes).unwrap();
    assert_eq!(f.get_str("general.name"), Some("tiny"));
    assert_eq!(f.get_u64("general.file_type"), Some(2));
    assert_eq!(f.tensor("blk.0.attn_norm.weight").unwrap().ty, GgmlType::F32);
    assert_eq!(f.tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::Q4_0);
    assert_eq!(f.tensor("token_embd.weight").unwrap().ty, GgmlType::Q6_K, "tied embedding");
    // A few tensors, no hyperparameters: written, with a warning.
    assert!(err.contains("warning: ember cannot run") && err.contains("out.gguf"), "{err}");
}

/// A model ember runs quantizes without the warning, and the result runs.
#[test]
fn a_runnable_model_quantizes_without_a_warning() {
    let d = common::Scratch::new("quantize-runnable");
    let (inp, out) = (d.path("in.gguf"), d.path("out.gguf"));
    common::write_tiny_llama(&inp);
    let o = common::ember(&["quantize", inp.to_str().unwrap(), out.to_str().unwrap(), "q8_0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let o = common::ember(&["run", "-m", out.to_str().unwrap(), "-p", "ab", "-n", "2", "--temp", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn unknown_type_is_an_error_listing_the_types() {
    let d = common::Scratch::new("quantize-unknown");
    let (inp, out) = (d.path("in.gguf"), d.path("out.gguf"));
    write_model(&inp, GgmlType::F32);
    let o = common::ember(&["quantize", inp.to_str().unwrap(), out.to_str().unwrap(), "Q3_K_XL"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("`Q3_K_XL` is not a type ember quantizes to") && err.contains("Q4_K (= Q4_K_M)"), "{err}");
    assert!(!out.exists());
}

#[test]
fn requantizing_needs_the_flag() {
    let d = common::Scratch::new("quantize-requant");
    let (inp, out) = (d.path("in.gguf"), d.path("out.gguf"));
    write_model(&inp, GgmlType::Q4_1);
    let o = common::ember(&["quantize", inp.to_str().unwrap(), out.to_str().unwrap(), "Q8_0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("blk.0.attn_q.weight") && err.contains("--allow-requantize"), "{err}");
    assert!(!out.exists() && !d.path("out.gguf.partial").exists(), "no file left behind");

    let o = common::ember(&["quantize", "--allow-requantize", inp.to_str().unwrap(), out.to_str().unwrap(), "Q8_0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(File::parse(&bytes).unwrap().tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::Q8_0);
}

/// `ember quantize in.gguf in.gguf Q8_0` succeeded and replaced the model
/// with its quantized copy; an output folder failed only at the final rename,
/// after all the work. Both are refused before anything is written.
#[test]
fn output_onto_the_input_or_a_folder_is_refused() {
    let d = common::Scratch::new("quantize-onto-input");
    let inp = d.path("in.gguf");
    write_model(&inp, GgmlType::F32);
    let before = std::fs::read(&inp).unwrap();
    let same = d.path(".").join("in.gguf");
    for out in [inp.to_str().unwrap(), same.to_str().unwrap()] {
        let o = common::ember(&["quantize", inp.to_str().unwrap(), out, "q8_0"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("the output path is the input file"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(std::fs::read(&inp).unwrap(), before, "the input is unchanged");
    let folder = d.path("sub");
    std::fs::create_dir(&folder).unwrap();
    let o = common::ember(&["quantize", inp.to_str().unwrap(), folder.to_str().unwrap(), "q8_0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the output path is a folder") && !err.contains("[   1/"), "{err}");
    // A hard link to the input is another name: replacing it keeps the input.
    let link = d.path("link.gguf");
    std::fs::hard_link(&inp, &link).unwrap();
    let o = common::ember(&["quantize", inp.to_str().unwrap(), link.to_str().unwrap(), "q8_0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&inp).unwrap(), before, "the input is unchanged");
}
