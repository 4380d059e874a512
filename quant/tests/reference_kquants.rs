//! k-quants (Q2_K..Q6_K, Q8_K) against fixtures made by the `gguf` Python
//! package's numpy reference (see `tests/data/gen_kquants.py` and
//! `tests/data/kquants/README.md`; regenerate with
//! `python3 quant/tests/data/gen_kquants.py`).
//!
//! - dequantize: bit-exact with `gguf.quants.dequantize` on random block bytes
//!   (Q8_K, unknown to gguf 0.19.0: with numpy's `d * q`);
//! - Q8_K `quantize_ref`: byte-identical with the script's numpy port of
//!   ggml's `quantize_row_q8_K_ref` (gguf 0.19.0 quantizes no k-quant, so the
//!   Q2_K..Q6_K quantizers are covered by `bounds_kquants.rs`);
//! - `vec_dot_*_generic`: on the same random weight blocks, equal (to float
//!   rounding) to the f64 dot of gguf's dequantized weights with the
//!   dequantized activations, which checks every bit of the layout the dot
//!   product reads, including the `dmin * bsums` term.

use ember_quant::{matmul, q2_k, q3_k, q4_k, q5_k, q6_k, q8_k, GgmlType, Kernels, QK_K};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kquants/", $name))
    };
}

/// Copies unaligned fixture bytes into a `Vec` of blocks.
fn blocks<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    let size = core::mem::size_of::<T>();
    assert_eq!(bytes.len() % size, 0, "fixture is not a whole number of blocks");
    bytes.chunks_exact(size).map(bytemuck::pod_read_unaligned).collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    assert_eq!(bytes.len() % 4, 0);
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Asserts bit equality (so `-0.0 != 0.0`), naming the first mismatch.
fn assert_bits_eq(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{what}: value {i} (block {}, index {}) is {g:e}, gguf says {w:e}",
            i / QK_K,
            i % QK_K
        );
    }
}

/// Checks the typed `dequantize` and the byte-level `matmul::dequantize`
/// (which also takes unaligned input) against the fixture.
fn check_dequantize<T: bytemuck::Pod>(ty: GgmlType, raw: &[u8], want: &[u8], f: fn(&[T], &mut [f32])) {
    let want = f32s(want);
    let b: Vec<T> = blocks(raw);
    assert_eq!(b.len() * QK_K, want.len());
    assert!(b.len() >= 16, "fixture should hold the special blocks and random ones");

    let mut out = vec![f32::NAN; want.len()];
    f(&b, &mut out);
    assert_bits_eq(ty.name(), &out, &want);

    // Byte-level entry point, from a deliberately misaligned copy.
    let mut shifted = vec![0u8; raw.len() + 1];
    shifted[1..].copy_from_slice(raw);
    let mut out2 = vec![f32::NAN; want.len()];
    matmul::dequantize(ty, &shifted[1..], &mut out2).unwrap();
    assert_bits_eq(ty.name(), &out2, &want);
}

#[test]
fn q2_k_dequantize_matches_gguf() {
    check_dequantize(GgmlType::Q2_K, fixture!("q2_k.blocks"), fixture!("q2_k.f32"), q2_k::dequantize);
}

#[test]
fn q3_k_dequantize_matches_gguf() {
    check_dequantize(GgmlType::Q3_K, fixture!("q3_k.blocks"), fixture!("q3_k.f32"), q3_k::dequantize);
}

#[test]
fn q4_k_dequantize_matches_gguf() {
    check_dequantize(GgmlType::Q4_K, fixture!("q4_k.blocks"), fixture!("q4_k.f32"), q4_k::dequantize);
}

#[test]
fn q5_k_dequantize_matches_gguf() {
    check_dequantize(GgmlType::Q5_K, fixture!("q5_k.blocks"), fixture!("q5_k.f32"), q5_k::dequantize);
}

#[test]
fn q6_k_dequantize_matches_gguf() {
    check_dequantize(GgmlType::Q6_K, fixture!("q6_k.blocks"), fixture!("q6_k.f32"), q6_k::dequantize);
}

#[test]
fn q8_k_dequantize_matches_numpy() {
    check_dequantize(GgmlType::Q8_K, fixture!("q8_k.blocks"), fixture!("q8_k.f32"), q8_k::dequantize);
}

fn inputs() -> [(usize, Vec<f32>, &'static [u8]); 3] {
    [
        (256, f32s(fixture!("inputs_256.f32")), fixture!("q8_k_quant_256.blocks")),
        (512, f32s(fixture!("inputs_512.f32")), fixture!("q8_k_quant_512.blocks")),
        (2048, f32s(fixture!("inputs_2048.f32")), fixture!("q8_k_quant_2048.blocks")),
    ]
}

#[test]
fn q8_k_quantize_ref_matches_ggml_algorithm() {
    for (n, x, want) in inputs() {
        assert_eq!(x.len(), n);
        // Typed quantizer.
        let mut b = vec![<q8_k::BlockQ8K as bytemuck::Zeroable>::zeroed(); n / QK_K];
        q8_k::quantize_ref(&x, &mut b);
        let got: &[u8] = bytemuck::cast_slice(&b);
        for (i, (g, w)) in got.chunks(292).zip(want.chunks(292)).enumerate() {
            assert_eq!(g, w, "n={n}: Q8_K block {i} differs from ggml's quantize_row_q8_K_ref");
        }
        assert_eq!(got.len(), want.len());

        // Byte-level quantizer and the generic kernel table's activation
        // quantizer give the same bytes.
        let mut bytes = vec![0u8; want.len()];
        matmul::quantize(GgmlType::Q8_K, &x, &mut bytes).unwrap();
        assert_eq!(bytes, want, "n={n}: matmul::quantize");
        let mut act = vec![0u32; want.len() / 4]; // 4-aligned buffer
        let act: &mut [u8] = bytemuck::cast_slice_mut(&mut act);
        Kernels::generic().quantize_activations(GgmlType::Q8_K, &x, act).unwrap();
        assert_eq!(&act[..], want, "n={n}: Kernels::generic().quantize_activations");
    }
}

/// The activation used for the dot-product checks: the 2048-value fixture
/// input, minus its "huge range" block (whose 1e4 outliers would make the
/// f32 accumulation error dominate), quantized to Q8_K.
fn activations(nb: usize) -> (Vec<q8_k::BlockQ8K>, Vec<f32>) {
    let x: Vec<f32> = f32s(fixture!("inputs_2048.f32"))[QK_K..]
        .iter()
        .chain(f32s(fixture!("inputs_256.f32")).iter())
        .chain(f32s(fixture!("inputs_512.f32")).iter())
        .copied()
        .cycle()
        .take(nb * QK_K)
        .collect();
    let mut a = vec![<q8_k::BlockQ8K as bytemuck::Zeroable>::zeroed(); nb];
    q8_k::quantize_ref(&x, &mut a);
    let mut av = vec![0.0; nb * QK_K];
    q8_k::dequantize(&a, &mut av);
    (a, av)
}

/// `vec_dot(w, a)` against `Σ gguf_dequant(w)·dequant(a)` in f64, over every
/// prefix of the fixture's random blocks (1..=16 blocks), and through the
/// generic kernel table's safe `vec_dot`.
fn check_vec_dot<W: bytemuck::Pod>(ty: GgmlType, raw: &[u8], deq: &[u8], f: fn(&[W], &[q8_k::BlockQ8K]) -> f32) {
    let w: Vec<W> = blocks(raw);
    let wv = f32s(deq);
    let (a, av) = activations(w.len());
    let k = Kernels::generic();
    for nb in 1..=w.len() {
        let n = nb * QK_K;
        let exact: f64 = wv[..n].iter().zip(&av[..n]).map(|(&x, &y)| x as f64 * y as f64).sum();
        let mag: f64 = wv[..n].iter().zip(&av[..n]).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum();
        let got = f(&w[..nb], &a[..nb]);
        // Only float rounding separates the two: f16->f32 products, the
        // i32->f32 conversion of block sums and the f32 accumulation.
        let tol = 2e-6 * mag + 1e-30;
        assert!(
            (got as f64 - exact).abs() <= tol,
            "{} vec_dot over {nb} blocks: got {got:e}, gguf-dequantized dot {exact:e} (tolerance {tol:e})",
            ty.name()
        );
        let via_table = k
            .vec_dot(ty, n, bytemuck::cast_slice(&w[..nb]), bytemuck::cast_slice(&a[..nb]))
            .expect("whole blocks, aligned buffers");
        assert_eq!(via_table.to_bits(), got.to_bits(), "{}: Kernels::generic().vec_dot", ty.name());
    }
}

#[test]
fn q2_k_vec_dot_matches_gguf_dequantized_dot() {
    check_vec_dot(GgmlType::Q2_K, fixture!("q2_k.blocks"), fixture!("q2_k.f32"), q2_k::vec_dot_q2_k_q8_k_generic);
}

#[test]
fn q3_k_vec_dot_matches_gguf_dequantized_dot() {
    check_vec_dot(GgmlType::Q3_K, fixture!("q3_k.blocks"), fixture!("q3_k.f32"), q3_k::vec_dot_q3_k_q8_k_generic);
}

#[test]
fn q4_k_vec_dot_matches_gguf_dequantized_dot() {
    check_vec_dot(GgmlType::Q4_K, fixture!("q4_k.blocks"), fixture!("q4_k.f32"), q4_k::vec_dot_q4_k_q8_k_generic);
}

#[test]
fn q5_k_vec_dot_matches_gguf_dequantized_dot() {
    check_vec_dot(GgmlType::Q5_K, fixture!("q5_k.blocks"), fixture!("q5_k.f32"), q5_k::vec_dot_q5_k_q8_k_generic);
}

#[test]
fn q6_k_vec_dot_matches_gguf_dequantized_dot() {
    check_vec_dot(GgmlType::Q6_K, fixture!("q6_k.blocks"), fixture!("q6_k.f32"), q6_k::vec_dot_q6_k_q8_k_generic);
}
