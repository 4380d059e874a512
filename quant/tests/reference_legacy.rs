//! Bit-exact checks of the non-k-quant formats against references computed
//! outside this crate: the `gguf` Python package's numpy `quants.quantize` /
//! `quants.dequantize`, and ggml's own C quantizers (for Q8_1 and IQ4_NL,
//! which `gguf` cannot quantize). Fixtures and the command that made them:
//! `tests/data/legacy/README.md`, `tests/data/gen_legacy.py`.

use bytemuck::{Pod, Zeroable};
use ember_quant::{bf16, f16, floats, iq4_nl, matmul, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, GgmlType};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/legacy")
}

fn read(name: &str) -> Vec<u8> {
    let p = data_dir().join(name);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("fixture {} missing ({e}); see tests/data/legacy/README.md", p.display()))
}

fn read_f32(name: &str) -> Vec<f32> {
    let b = read(name);
    assert_eq!(b.len() % 4, 0, "{name}");
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Copies bytes into a properly aligned vector of blocks.
fn blocks<T: Pod>(bytes: &[u8]) -> Vec<T> {
    let size = std::mem::size_of::<T>();
    assert_eq!(bytes.len() % size, 0, "not whole blocks");
    let mut v = vec![T::zeroed(); bytes.len() / size];
    bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
    v
}

struct Manifest {
    cases: Vec<(String, usize)>,
    blocks: Vec<(String, usize)>,
    specials_n: usize,
}

fn manifest() -> Manifest {
    let j: serde_json::Value = serde_json::from_slice(&read("manifest.json")).expect("manifest.json");
    let pairs = |key: &str, name: &str| -> Vec<(String, usize)> {
        j[key]
            .as_array()
            .unwrap_or_else(|| panic!("manifest: {key}"))
            .iter()
            .map(|c| (c[name].as_str().unwrap().to_string(), c["n"].as_u64().unwrap() as usize))
            .collect()
    };
    let m = Manifest {
        cases: pairs("cases", "name"),
        blocks: pairs("blocks", "type"),
        specials_n: j["specials_n"].as_u64().expect("specials_n") as usize,
    };
    assert!(m.cases.len() >= 5 && m.blocks.len() >= 8, "manifest lists too few fixtures");
    m
}

/// Compares two f32 slices bit for bit and names the first difference.
fn assert_bits_eq(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{what}: value {i} is {g:e} ({:#010x}), reference {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

fn assert_bytes_eq(what: &str, got: &[u8], want: &[u8], block: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        let b = i / block;
        panic!(
            "{what}: byte {i} (block {b}) differs\n ours: {:02x?}\n  ref: {:02x?}",
            &got[b * block..(b + 1) * block],
            &want[b * block..(b + 1) * block]
        );
    }
}

/// Our typed quantizer and dequantizer for one block type, and the
/// byte-level `matmul::quantize`/`dequantize` for the same type.
fn check_type<T: Pod>(
    ty: GgmlType,
    quantize: fn(&[f32], &mut [T]),
    dequantize: fn(&[T], &mut [f32]),
    case: &str,
    x: &[f32],
) {
    let name = ty.name();
    let want_q = read(&format!("{case}.{name}.q"));
    let want_deq = read_f32(&format!("{case}.{name}.deq.f32"));
    let mut ours = vec![T::zeroed(); x.len() / ty.block_size()];
    quantize(x, &mut ours);
    let what = format!("{name} quantize_ref, case {case}");
    assert_bytes_eq(&what, bytemuck::cast_slice(&ours), &want_q, ty.type_size());
    let mut via_bytes = vec![0u8; want_q.len()];
    matmul::quantize(ty, x, &mut via_bytes).unwrap();
    assert_bytes_eq(&format!("{name} matmul::quantize, case {case}"), &via_bytes, &want_q, ty.type_size());

    let mut deq = vec![0.0f32; x.len()];
    dequantize(&blocks::<T>(&want_q), &mut deq);
    assert_bits_eq(&format!("{name} dequantize, case {case}"), &deq, &want_deq);
    let mut deq2 = vec![f32::NAN; x.len()];
    matmul::dequantize(ty, &want_q, &mut deq2).unwrap();
    assert_bits_eq(&format!("{name} matmul::dequantize, case {case}"), &deq2, &want_deq);
}

#[test]
fn legacy_quantize_and_dequantize_match_gguf() {
    let m = manifest();
    for (case, n) in &m.cases {
        let x = read_f32(&format!("{case}.in.f32"));
        assert_eq!(x.len(), *n, "{case}");
        check_type(GgmlType::Q8_0, q8_0::quantize_ref, q8_0::dequantize, case, &x);
        check_type(GgmlType::Q4_0, q4_0::quantize_ref, q4_0::dequantize, case, &x);
        check_type(GgmlType::Q4_1, q4_1::quantize_ref, q4_1::dequantize, case, &x);
        check_type(GgmlType::Q5_0, q5_0::quantize_ref, q5_0::dequantize, case, &x);
        check_type(GgmlType::Q5_1, q5_1::quantize_ref, q5_1::dequantize, case, &x);
    }
}

#[test]
fn floats_convert_like_gguf() {
    let m = manifest();
    let mut all: Vec<(String, Vec<f32>)> =
        m.cases.iter().map(|(c, _)| (c.clone(), read_f32(&format!("{c}.in.f32")))).collect();
    let specials = read_f32("specials.in.f32");
    assert_eq!(specials.len(), m.specials_n);
    assert!(specials.iter().any(|v| v.is_nan()) && specials.iter().any(|v| v.is_infinite()));
    all.push(("specials".into(), specials));
    for (case, x) in &all {
        // F16
        let want = read(&format!("{case}.F16.q"));
        let mut ours = vec![f16::ZERO; x.len()];
        floats::quantize_f16(x, &mut ours);
        assert_bytes_eq(&format!("F16 quantize, case {case}"), bytemuck::cast_slice(&ours), &want, 2);
        let want_deq = read_f32(&format!("{case}.F16.deq.f32"));
        let mut deq = vec![0.0f32; x.len()];
        floats::dequantize_f16(&blocks::<f16>(&want), &mut deq);
        assert_bits_eq(&format!("F16 dequantize, case {case}"), &deq, &want_deq);
        // BF16
        let want = read(&format!("{case}.BF16.q"));
        let mut ours = vec![bf16::ZERO; x.len()];
        floats::quantize_bf16(x, &mut ours);
        assert_bytes_eq(&format!("BF16 quantize, case {case}"), bytemuck::cast_slice(&ours), &want, 2);
        let mut via_bytes = vec![0u8; want.len()];
        matmul::quantize(GgmlType::BF16, x, &mut via_bytes).unwrap();
        assert_bytes_eq(&format!("BF16 matmul::quantize, case {case}"), &via_bytes, &want, 2);
        let want_deq = read_f32(&format!("{case}.BF16.deq.f32"));
        floats::dequantize_bf16(&blocks::<bf16>(&want), &mut deq);
        assert_bits_eq(&format!("BF16 dequantize, case {case}"), &deq, &want_deq);
    }
}

fn check_dequant_blocks<T: Pod>(ty: GgmlType, dequantize: fn(&[T], &mut [f32]), n: usize) {
    let name = ty.name();
    let q = read(&format!("blocks.{name}.q"));
    let want = read_f32(&format!("blocks.{name}.deq.f32"));
    assert_eq!(want.len(), n, "{name}");
    let mut out = vec![0.0f32; n];
    dequantize(&blocks::<T>(&q), &mut out);
    assert_bits_eq(&format!("{name} dequantize of random blocks"), &out, &want);
    let mut out2 = vec![f32::NAN; n];
    matmul::dequantize(ty, &q, &mut out2).unwrap();
    assert_bits_eq(&format!("{name} matmul::dequantize of random blocks"), &out2, &want);
}

#[test]
fn dequantize_random_blocks_like_gguf() {
    let m = manifest();
    let mut seen = Vec::new();
    for (name, n) in &m.blocks {
        let ty = GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
        match ty {
            GgmlType::Q4_0 => check_dequant_blocks(ty, q4_0::dequantize, *n),
            GgmlType::Q4_1 => check_dequant_blocks(ty, q4_1::dequantize, *n),
            GgmlType::Q5_0 => check_dequant_blocks(ty, q5_0::dequantize, *n),
            GgmlType::Q5_1 => check_dequant_blocks(ty, q5_1::dequantize, *n),
            GgmlType::Q8_0 => check_dequant_blocks(ty, q8_0::dequantize, *n),
            GgmlType::IQ4_NL => check_dequant_blocks(ty, iq4_nl::dequantize, *n),
            GgmlType::F16 => check_dequant_blocks(ty, floats::dequantize_f16, *n),
            GgmlType::BF16 => check_dequant_blocks(ty, floats::dequantize_bf16, *n),
            other => panic!("no dequantize check for {other:?}"),
        }
        seen.push(ty);
    }
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL] {
        assert!(seen.contains(&ty), "no random-block fixture for {ty:?}");
    }
}

#[test]
fn q8_1_and_iq4_nl_match_ggml_c() {
    let m = manifest();
    for (case, n) in &m.cases {
        let x = read_f32(&format!("{case}.in.f32"));
        assert_eq!(x.len(), *n);

        let want = read(&format!("{case}.Q8_1.ggml.q"));
        let mut ours = vec![q8_1::BlockQ8_1::zeroed(); n / 32];
        q8_1::quantize_ref(&x, &mut ours);
        assert_bytes_eq(&format!("Q8_1 quantize_ref, case {case}"), bytemuck::cast_slice(&ours), &want, 36);

        let want = read(&format!("{case}.IQ4_NL.ggml.q"));
        let mut ours = vec![iq4_nl::BlockIq4Nl::zeroed(); n / 32];
        iq4_nl::quantize_ref(&x, &mut ours);
        let mut via_bytes = vec![0u8; want.len()];
        matmul::quantize(GgmlType::IQ4_NL, &x, &mut via_bytes).unwrap();
        assert_bytes_eq(&format!("IQ4_NL matmul::quantize, case {case}"), &via_bytes, &want, 18);

        let want = read(&format!("{case}.IQ4_NL_search.ggml.q"));
        iq4_nl::quantize_with_search(&x, &mut ours);
        assert_bytes_eq(&format!("IQ4_NL quantize_with_search, case {case}"), bytemuck::cast_slice(&ours), &want, 18);
    }
}
