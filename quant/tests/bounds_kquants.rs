//! k-quant error bounds (ggml's `tests/test-quantize-fns.cpp` thresholds),
//! safe-API behaviour on awkward lengths, and robustness of the quantizers.
//!
//! gguf 0.19.0 cannot quantize k-quants, so ember's Q2_K..Q6_K `quantize_ref`
//! are checked here by the bounds ggml's own reference quantizers must meet:
//!
//! - round trip: ggml measures `sqrt(Σ(x - deq(q(x)))²) / n` on 4096 values
//!   of `0.1 + 2 cos(i)` and requires it below 0.0075 (Q2_K), 0.0040 (Q3_K)
//!   or 0.002 (others). At other lengths the same per-value error is the
//!   bound scaled by `sqrt(4096 / n)`, which is what is checked here;
//! - dot product: `|vec_dot(q(x), q8_k(y)) - x·y| / n` below 0.04 (Q2_K) or
//!   0.02 (others), with `y = 0.1 + 2 cos(i + 1)`, at n = 4096; on shorter
//!   rows the bound is scaled by `sqrt(4096 / n)` as well.
//!
//! All through `Kernels::generic()` (the reference the SIMD tiers are tested
//! against) and the typed functions.

use ember_quant::{matmul, q2_k, q3_k, q4_k, q5_k, q6_k, q8_k, Error, GgmlType, Kernels, QK_K};
use rand::{rngs::SmallRng, Rng, SeedableRng};

const KQUANTS: [GgmlType; 5] = [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K];

/// Lengths checked: empty, one block, odd block counts, real row lengths.
const LENGTHS: [usize; 7] = [0, 256, 3 * 256, 7 * 256, 1536, 2048, 4096];

/// ggml's test size, at which its thresholds are defined.
const GGML_TEST_SIZE: usize = 4096;

fn total_error_bound(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::Q2_K => 0.0075,
        GgmlType::Q3_K => 0.0040,
        _ => 0.002,
    }
}

fn dot_error_bound(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::Q2_K => 0.04,
        _ => 0.02,
    }
}

/// ggml's `generate_data`: `0.1 + amplitude * cos(i + offset)`.
fn generate_data(offset: f32, n: usize) -> Vec<f32> {
    (0..n).map(|i| (0.1 + 2.0 * ((i as f32 + offset).cos() as f64)) as f32).collect()
}

fn random_normal(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    // Box-Muller: rand's distributions crate is not a dependency.
    (0..n)
        .map(|_| {
            let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.gen();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect()
}

/// Quantizes with the type's `quantize_ref` (through the byte-level API) and
/// dequantizes back.
fn round_trip(ty: GgmlType, x: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    matmul::quantize(ty, x, &mut q).unwrap();
    let mut y = vec![f32::NAN; x.len()];
    matmul::dequantize(ty, &q, &mut y).unwrap();
    (q, y)
}

/// `sqrt(Σ(a - b)²)`, in f64 like ggml's `array_rmse` (before its `/ n`).
fn l2_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>().sqrt()
}

/// A 4-byte-aligned byte buffer (Q8_K blocks hold an f32).
fn aligned_bytes(len: usize) -> Vec<u32> {
    vec![0u32; len.div_ceil(4)]
}

/// Weight row quantized to `ty` in a 4-aligned buffer (any k-quant row is
/// 2-aligned; 4 keeps the same buffer usable for Q8_K).
fn quantize_row(ty: GgmlType, x: &[f32]) -> Vec<u32> {
    let len = ty.row_bytes(x.len()).unwrap();
    let mut buf = aligned_bytes(len);
    matmul::quantize(ty, x, &mut bytemuck::cast_slice_mut(&mut buf)[..len]).unwrap();
    buf
}

fn as_bytes(buf: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice(buf)[..len]
}

/// `|vec_dot(q(x), q8_k(y)) - x·y| / n` through `Kernels::generic()`.
fn dot_error(ty: GgmlType, x: &[f32], y: &[f32]) -> f64 {
    let n = x.len();
    let k = Kernels::generic();
    let w = quantize_row(ty, x);
    let alen = GgmlType::Q8_K.row_bytes(n).unwrap();
    let mut a = aligned_bytes(alen);
    k.quantize_activations(GgmlType::Q8_K, y, &mut bytemuck::cast_slice_mut(&mut a)[..alen]).unwrap();
    let got = k.vec_dot(ty, n, as_bytes(&w, ty.row_bytes(n).unwrap()), as_bytes(&a, alen)).unwrap();
    let exact: f64 = x.iter().zip(y).map(|(&p, &q)| (p * q) as f64).sum();
    (got as f64 - exact).abs() / n as f64
}

#[test]
fn round_trip_error_within_ggml_bounds() {
    let mut rng = SmallRng::seed_from_u64(7);
    for ty in KQUANTS {
        for n in LENGTHS.into_iter().filter(|&n| n > 0) {
            // ggml's bound at n = 4096, as a per-value RMS bound for any n.
            let bound = total_error_bound(ty) * (GGML_TEST_SIZE as f64).sqrt();
            for (what, x) in [("ggml cos data", generate_data(0.0, n)), ("N(0,1)", random_normal(&mut rng, n))] {
                let (_, y) = round_trip(ty, &x);
                let rms = l2_diff(&x, &y) / (n as f64).sqrt();
                println!("{} n={n:5} {what:14}: rms error {rms:.5} (bound {bound:.5})", ty.name());
                assert!(rms < bound, "{} n={n} {what}: rms error {rms} >= {bound}", ty.name());
            }
        }
        // ggml's exact check at its own size.
        let x = generate_data(0.0, GGML_TEST_SIZE);
        let (_, y) = round_trip(ty, &x);
        let total = l2_diff(&x, &y) / GGML_TEST_SIZE as f64;
        assert!(total < total_error_bound(ty), "{}: ggml total error {total}", ty.name());
    }
}

#[test]
fn q8_k_round_trip_error_is_half_a_step() {
    let mut rng = SmallRng::seed_from_u64(8);
    for n in LENGTHS {
        let x = random_normal(&mut rng, n);
        let (q, y) = round_trip(GgmlType::Q8_K, &x);
        let blocks: Vec<q8_k::BlockQ8K> = q.chunks_exact(292).map(bytemuck::pod_read_unaligned).collect();
        for (b, (xb, yb)) in blocks.iter().zip(x.chunks_exact(QK_K).zip(y.chunks_exact(QK_K))) {
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!((b.d.abs() - amax / 127.0).abs() <= 1e-6 * amax, "d = max/127");
            for (i, (&u, &v)) in xb.iter().zip(yb).enumerate() {
                assert!((u - v).abs() <= 0.5001 * b.d.abs(), "value {i}: {u} -> {v}, d {}", b.d);
            }
            for (g, s) in b.qs.chunks_exact(16).zip(b.bsums) {
                assert_eq!(g.iter().map(|&q| q as i32).sum::<i32>(), s as i32, "bsums");
            }
        }
    }
}

#[test]
fn vec_dot_error_within_ggml_bounds() {
    let mut rng = SmallRng::seed_from_u64(9);
    let mut failures = Vec::new();
    for ty in KQUANTS {
        for n in LENGTHS.into_iter().filter(|&n| n > 0) {
            // ggml's bound holds at n = 4096; the random part of `error / n`
            // grows as sqrt(4096 / n) on shorter rows (at n = 256 Q3_K's
            // error on ggml's cos data is 0.041 with ggml's own quantizer).
            let bound = dot_error_bound(ty) * (GGML_TEST_SIZE as f64 / n as f64).sqrt().max(1.0);
            let cases = [
                ("ggml cos data", generate_data(0.0, n), generate_data(1.0, n)),
                ("N(0,1)", random_normal(&mut rng, n), random_normal(&mut rng, n)),
            ];
            for (what, x, y) in cases {
                let err = dot_error(ty, &x, &y);
                println!("{} n={n:5} {what:14}: dot error / n {err:.6} (bound {bound})", ty.name());
                if err >= bound {
                    failures.push(format!("{} n={n} {what}: dot error / n = {err} >= {bound}", ty.name()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The generic `vec_dot` equals the dot of the dequantized rows up to float
/// rounding (the integer sums are exact), which pins the quantized dot to
/// the dequantizer that `reference_kquants.rs` checks bit-exactly.
#[test]
fn vec_dot_equals_dequantized_dot() {
    let mut rng = SmallRng::seed_from_u64(10);
    let k = Kernels::generic();
    for ty in KQUANTS {
        for n in LENGTHS.into_iter().filter(|&n| n > 0) {
            let (x, y) = (random_normal(&mut rng, n), random_normal(&mut rng, n));
            let (wq, wd) = round_trip(ty, &x);
            let (aq, ad) = round_trip(GgmlType::Q8_K, &y);
            let mut w = aligned_bytes(wq.len());
            bytemuck::cast_slice_mut(&mut w)[..wq.len()].copy_from_slice(&wq);
            let mut a = aligned_bytes(aq.len());
            bytemuck::cast_slice_mut(&mut a)[..aq.len()].copy_from_slice(&aq);
            let got = k.vec_dot(ty, n, as_bytes(&w, wq.len()), as_bytes(&a, aq.len())).unwrap() as f64;
            let exact: f64 = wd.iter().zip(&ad).map(|(&p, &q)| p as f64 * q as f64).sum();
            let mag: f64 = wd.iter().zip(&ad).map(|(&p, &q)| (p as f64 * q as f64).abs()).sum();
            assert!((got - exact).abs() <= 1e-5 * mag, "{} n={n}: {got} vs dequantized {exact}", ty.name());
        }
    }
}

/// `gemv` of the generic table equals row-by-row `vec_dot`, over odd row
/// counts and the real row lengths.
#[test]
fn gemv_matches_vec_dot_rows() {
    let mut rng = SmallRng::seed_from_u64(11);
    let k = Kernels::generic();
    for ty in KQUANTS {
        for (rows, cols) in [(1, 256), (3, 768), (5, 1536), (2, 2048), (7, 1792)] {
            let x = random_normal(&mut rng, rows * cols);
            let w = quantize_row(ty, &x);
            let row_bytes = ty.row_bytes(cols).unwrap();
            let w = as_bytes(&w, rows * row_bytes);
            let y = random_normal(&mut rng, cols);
            let alen = GgmlType::Q8_K.row_bytes(cols).unwrap();
            let mut a = aligned_bytes(alen);
            let a = &mut bytemuck::cast_slice_mut(&mut a)[..alen];
            k.quantize_activations(GgmlType::Q8_K, &y, a).unwrap();
            let mut out = vec![f32::NAN; rows];
            k.gemv(ty, cols, w, a, &mut out).unwrap();
            for (r, &o) in out.iter().enumerate() {
                let d = k.vec_dot(ty, cols, &w[r * row_bytes..(r + 1) * row_bytes], a).unwrap();
                assert_eq!(o.to_bits(), d.to_bits(), "{} gemv row {r} of {rows}x{cols}", ty.name());
            }
        }
    }
}

/// 576 and 640 (SmolLM2's and Gemma 3's hidden sizes) are not multiples of
/// 256: every safe entry point returns `Err`, none panics.
#[test]
fn non_block_multiple_lengths_are_errors() {
    for k in [Kernels::generic(), Kernels::best()] {
        for n in [576usize, 640, 1, 255, 257] {
            let x = vec![0.5f32; n];
            let mut buf = aligned_bytes(4 * 292);
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            let err = k.quantize_activations(GgmlType::Q8_K, &x, &mut bytes[..292]).unwrap_err();
            assert_eq!(err, Error::NotBlockMultiple { ty: GgmlType::Q8_K, n });
            for ty in KQUANTS {
                let (w, a) = (vec![0u8; 2 * ty.type_size()], &bytes[..2 * 292]);
                assert_eq!(k.vec_dot(ty, n, &w, a).unwrap_err(), Error::NotBlockMultiple { ty, n });
                let mut out = [0.0f32; 2];
                assert!(matches!(k.gemv(ty, n, &w, a, &mut out), Err(Error::NotBlockMultiple { .. })));
                let mut o = vec![0.0f32; n];
                assert!(matches!(matmul::dequantize(ty, &w, &mut o), Err(Error::NotBlockMultiple { .. })));
                assert!(matches!(matmul::quantize(ty, &x, &mut [0u8; 64]), Err(Error::NotBlockMultiple { .. })));
            }
        }
    }
}

/// Wrong buffer sizes and misaligned activations are `Err`, never a panic.
#[test]
fn bad_buffers_are_errors() {
    let k = Kernels::generic();
    let mut abuf = aligned_bytes(3 * 292);
    let a: &mut [u8] = bytemuck::cast_slice_mut(&mut abuf);
    for ty in KQUANTS {
        let w = vec![0u8; 2 * ty.type_size()];
        // Weight row one block short / activation row one block long.
        assert!(matches!(k.vec_dot(ty, 512, &w[..ty.type_size()], &a[..584]), Err(Error::Length { .. })));
        assert!(matches!(k.vec_dot(ty, 512, &w, &a[..876]), Err(Error::Length { .. })));
        // Activation bytes misaligned for Q8_K's f32 scale.
        assert!(matches!(k.vec_dot(ty, 256, &w[..ty.type_size()], &a[1..293]), Err(Error::Misaligned { .. })));
        // Dequantize / quantize with mismatched sizes.
        let mut o = vec![0.0f32; 512];
        assert!(matches!(matmul::dequantize(ty, &w[..ty.type_size()], &mut o), Err(Error::Length { .. })));
        assert!(matches!(matmul::quantize(ty, &o, &mut vec![0u8; ty.type_size()]), Err(Error::Length { .. })));
    }
    let x = vec![1.0f32; 256];
    assert!(matches!(k.quantize_activations(GgmlType::Q8_K, &x, &mut a[..291]), Err(Error::Length { .. })));
    assert!(matches!(k.quantize_activations(GgmlType::Q8_K, &x, &mut a[1..293]), Err(Error::Misaligned { .. })));
}

#[test]
fn zero_length_rows() {
    let k = Kernels::generic();
    // Empty slices taken from an aligned buffer (a literal `&[]` of u8 sits
    // at address 1, which the alignment check rejects).
    let mut buf = aligned_bytes(4);
    let empty: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut buf)[..0];
    for ty in KQUANTS {
        assert_eq!(k.vec_dot(ty, 0, empty, empty).unwrap(), 0.0);
        let mut out = [f32::NAN; 3];
        k.gemv(ty, 0, empty, empty, &mut out).unwrap();
        assert_eq!(out, [0.0; 3]);
        matmul::dequantize(ty, empty, &mut []).unwrap();
        matmul::quantize(ty, &[], empty).unwrap();
    }
    k.quantize_activations(GgmlType::Q8_K, &[], empty).unwrap();
    assert_eq!(q4_k::vec_dot_q4_k_q8_k_generic(&[], &[]), 0.0);
    assert_eq!(q6_k::vec_dot_q6_k_q8_k_generic(&[], &[]), 0.0);
}

/// Blocks of zeros, constants and tiny values quantize to what ggml's
/// reference does for them (zero scales, exact constants up to f16 rounding).
#[test]
fn degenerate_blocks() {
    let zero = vec![0.0f32; 512];
    for ty in KQUANTS.into_iter().chain([GgmlType::Q8_K]) {
        let (q, y) = round_trip(ty, &zero);
        assert!(q.iter().all(|&b| b == 0), "{}: all-zero input gives all-zero bytes", ty.name());
        assert!(y.iter().all(|&v| v == 0.0));
    }
    // Values below ggml's GROUP_MAX_EPS (1e-15) count as zero for the
    // symmetric types.
    let tiny = vec![1e-20f32; 256];
    for ty in [GgmlType::Q3_K, GgmlType::Q6_K] {
        let (_, y) = round_trip(ty, &tiny);
        assert!(y.iter().all(|&v| v == 0.0), "{}", ty.name());
    }
    // A constant block is reproduced within the f16 precision of the scales.
    for c in [0.75f32, -3.25, 1000.0] {
        let x = vec![c; 256];
        for ty in KQUANTS.into_iter().chain([GgmlType::Q8_K]) {
            let (_, y) = round_trip(ty, &x);
            for &v in &y {
                assert!((v - c).abs() <= 2e-3 * c.abs(), "{} constant {c}: got {v}", ty.name());
            }
        }
    }
}

/// Non-finite and extreme inputs must not panic (no overflow or bounds
/// check fires in the quantizers), and the result is deterministic.
#[test]
fn extreme_inputs_do_not_panic() {
    let mut rng = SmallRng::seed_from_u64(12);
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, 1e-45, -0.0, 3e38, 65504.0];
    for round in 0..20 {
        let mut x = random_normal(&mut rng, 1024);
        for _ in 0..(1 + round % 5) {
            let i = rng.gen_range(0..x.len());
            x[i] = specials[rng.gen_range(0..specials.len())];
        }
        if round % 4 == 0 {
            x[..256].fill(specials[round % specials.len()]);
        }
        for ty in KQUANTS.into_iter().chain([GgmlType::Q8_K]) {
            let (q1, _) = round_trip(ty, &x);
            let (q2, _) = round_trip(ty, &x);
            assert_eq!(q1, q2, "{} quantize_ref is deterministic", ty.name());
        }
    }
}

/// Random bytes are valid blocks of every k-quant (any bit pattern), so the
/// generic dot products must accept them without overflow.
#[test]
fn random_block_bytes_do_not_overflow() {
    let mut rng = SmallRng::seed_from_u64(13);
    let k = Kernels::generic();
    for _ in 0..50 {
        let nb = rng.gen_range(1..5);
        let mut a = aligned_bytes(nb * 292);
        rng.fill(bytemuck::cast_slice_mut::<u32, u8>(&mut a));
        for ty in KQUANTS {
            let mut w = vec![0u8; nb * ty.type_size()];
            rng.fill(&mut w[..]);
            let _ = k.vec_dot(ty, nb * QK_K, &w, as_bytes(&a, nb * 292)).unwrap();
        }
    }
}

#[test]
#[should_panic(expected = "block counts differ")]
fn typed_vec_dot_panics_on_mismatched_counts() {
    let w = [<q2_k::BlockQ2K as bytemuck::Zeroable>::zeroed(); 2];
    let a = [<q8_k::BlockQ8K as bytemuck::Zeroable>::zeroed(); 1];
    q2_k::vec_dot_q2_k_q8_k_generic(&w, &a);
}

#[test]
#[should_panic(expected = "input length")]
fn typed_quantize_panics_on_mismatched_lengths() {
    let mut out = [<q3_k::BlockQ3K as bytemuck::Zeroable>::zeroed(); 1];
    q3_k::quantize_ref(&[0.0; 255], &mut out);
}

#[test]
#[should_panic(expected = "output length")]
fn typed_dequantize_panics_on_mismatched_lengths() {
    let b = [<q5_k::BlockQ5K as bytemuck::Zeroable>::zeroed(); 1];
    q5_k::dequantize(&b, &mut [0.0; 512]);
}
