//! Error bounds of the non-k-quant formats: round trips f32 → blocks → f32,
//! and quantized dot products against f32/f64 dots, over ggml's synthetic
//! data (with ggml's `test-quantize-fns` thresholds) and random rows of the
//! lengths models use (0, 1 block, odd block counts, 576, 640, 1536, 2048).
//! Both the typed functions and the byte-level `Kernels::generic()` methods are
//! exercised, and must agree bit for bit.

use bytemuck::Pod;
use ember_quant::{bf16, f16, floats, iq4_nl, matmul, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, GgmlType, Kernels};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

// ggml tests/test-quantize-fns.cpp.
const MAX_QUANTIZATION_TOTAL_ERROR: f32 = 0.002;
const MAX_DOT_PRODUCT_ERROR: f32 = 0.02;
const MAX_QUANTIZATION_REFERENCE_ERROR: f32 = 0.0001; // used there for f32 vec_dot

const LENGTHS: [usize; 8] = [0, 32, 64, 7 * 32, 576, 640, 1536, 2048];

/// ggml's `generate_data`: `0.1 + amplitude * cosf(i + offset)`.
fn generate_data(offset: f32, n: usize, amplitude: f32) -> Vec<f32> {
    (0..n).map(|i| (0.1f64 + (amplitude * (i as f32 + offset).cos()) as f64) as f32).collect()
}

/// ggml's `array_rmse` (which is sqrt(sum of squares) / n, not a true RMSE).
fn ggml_array_rmse(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    (sum.sqrt() as f32) / a.len() as f32
}

fn rmse(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    (sum / a.len().max(1) as f64).sqrt()
}

fn rms(a: &[f32]) -> f64 {
    (a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / a.len().max(1) as f64).sqrt()
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn abs_dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum()
}

/// Normal(0, 1) samples (Box-Muller), with a few outliers per row as real
/// weights have.
fn gaussian(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n)
        .map(|_| {
            let u1: f64 = rng.gen_range(1e-12..1.0);
            let u2: f64 = rng.gen();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect();
    for _ in 0..n / 200 {
        let i = rng.gen_range(0..n);
        v[i] *= 6.0;
    }
    v
}

/// A byte buffer aligned for any block type (8-byte backing store).
struct Buf(Vec<u64>, usize);
impl Buf {
    fn new(len: usize) -> Buf {
        Buf(vec![0u64; len.div_ceil(8)], len)
    }
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.0)[..self.1]
    }
}

/// Weight type `W` and its typed functions, paired with activation type `A`.
struct Format<W: Pod, A: Pod> {
    ty: GgmlType,
    quantize: fn(&[f32], &mut [W]),
    dequantize: fn(&[W], &mut [f32]),
    act_quantize: fn(&[f32], &mut [A]),
    dot: fn(&[W], &[A]) -> f32,
    /// Bound on `rmse(x, round trip) / rms(x)` for Normal(0,1) rows with outliers.
    max_rel_rmse: f64,
}

struct DotRun {
    typed: f32,
    /// The dot of the dequantized weights and dequantized activations, in f64.
    exact_of_quantized: f64,
    /// Tolerance of `typed` against `exact_of_quantized`.
    tol: f64,
    /// Standard deviation the quantization error of the dot would have if the
    /// per-value errors were independent: sqrt(sum (e_w a)^2 + (w' e_a)^2).
    sigma: f64,
}

impl<W: Pod, A: Pod> Format<W, A> {
    fn act_ty(&self) -> GgmlType {
        self.ty.vec_dot_type().unwrap()
    }

    /// Round trip through the typed functions, checked against the byte-level ones.
    fn round_trip(&self, x: &[f32]) -> Vec<f32> {
        let nb = x.len() / self.ty.block_size();
        let mut q = vec![W::zeroed(); nb];
        (self.quantize)(x, &mut q);
        let mut y = vec![0.0f32; x.len()];
        (self.dequantize)(&q, &mut y);

        let mut bytes = Buf::new(self.ty.row_bytes(x.len()).unwrap());
        matmul::quantize(self.ty, x, bytes.bytes_mut()).unwrap();
        assert_eq!(bytes.bytes(), bytemuck::cast_slice::<W, u8>(&q), "{}: matmul::quantize", self.ty.name());
        let mut y2 = vec![f32::NAN; x.len()];
        matmul::dequantize(self.ty, bytes.bytes(), &mut y2).unwrap();
        assert!(y.iter().zip(&y2).all(|(a, b)| a.to_bits() == b.to_bits()), "{}: matmul::dequantize", self.ty.name());
        y
    }

    /// Quantized dot product through the typed functions and through
    /// `Kernels::generic()` (which must agree bit for bit), with the exact
    /// dot of what was quantized and the tolerance the kernel must meet.
    fn dot_run(&self, w: &[f32], a: &[f32]) -> DotRun {
        let n = w.len();
        let nb = n / 32;
        let mut wq = vec![W::zeroed(); nb];
        (self.quantize)(w, &mut wq);
        let mut aq = vec![A::zeroed(); nb];
        (self.act_quantize)(a, &mut aq);
        let typed = (self.dot)(&wq, &aq);

        let k = Kernels::generic();
        let act = self.act_ty();
        let mut wb = Buf::new(self.ty.row_bytes(n).unwrap());
        matmul::quantize(self.ty, w, wb.bytes_mut()).unwrap();
        let mut ab = Buf::new(act.row_bytes(n).unwrap());
        k.quantize_activations(act, a, ab.bytes_mut()).unwrap();
        assert_eq!(ab.bytes(), bytemuck::cast_slice::<A, u8>(&aq), "{}: quantize_activations", act.name());
        let via_table = k.vec_dot(self.ty, n, wb.bytes(), ab.bytes()).unwrap();
        assert_eq!(via_table.to_bits(), typed.to_bits(), "{}: Kernels::vec_dot vs typed", self.ty.name());

        let mut wd = vec![0.0f32; n];
        matmul::dequantize(self.ty, wb.bytes(), &mut wd).unwrap();
        let mut ad = vec![0.0f32; n];
        matmul::dequantize(act, ab.bytes(), &mut ad).unwrap();
        let exact_of_quantized = dot64(&wd, &ad);
        // f32 rounding of per-block products and of the running sum.
        let mut tol = 4e-7 * (nb as f64 + 4.0) * abs_dot64(&wd, &ad) + 1e-30;
        if act == GgmlType::Q8_1 {
            // The min term uses Q8_1's `s`, which is f16(sum(q) * d) rather than
            // f16(d) * sum(q): allow exactly that difference times |m| per block.
            let (wbs, abs) = (self.ty.type_size(), act.type_size());
            for b in 0..nb {
                let wblk = &wb.bytes()[b * wbs..];
                let ablk = &ab.bytes()[b * abs..(b + 1) * abs];
                let m = f16::from_le_bytes([wblk[2], wblk[3]]).to_f32() as f64;
                let d = f16::from_le_bytes([ablk[0], ablk[1]]).to_f32() as f64;
                let s = f16::from_le_bytes([ablk[2], ablk[3]]).to_f32() as f64;
                let sum: i32 = ablk[4..].iter().map(|&q| q as i8 as i32).sum();
                tol += m.abs() * (s - d * sum as f64).abs() * (1.0 + 1e-6);
            }
        }
        let sigma = w
            .iter()
            .zip(a)
            .zip(wd.iter().zip(&ad))
            .map(|((&w, &a), (&wd, &ad))| {
                let (ew, ea) = ((w - wd) as f64, (a - ad) as f64);
                (ew * a as f64).powi(2) + (wd as f64 * ea).powi(2)
            })
            .sum::<f64>()
            .sqrt();
        DotRun { typed, exact_of_quantized, tol, sigma }
    }

    fn check(&self) {
        let name = self.ty.name();
        // 1. ggml test-quantize-fns on its synthetic data (32 * 128 values).
        let test_size = 32 * 128;
        let data = generate_data(0.0, test_size, 2.0);
        let data2 = generate_data(1.0, test_size, 2.0);
        let total = ggml_array_rmse(&data, &self.round_trip(&data));
        assert!(total < MAX_QUANTIZATION_TOTAL_ERROR, "{name}: ggml total quantization error {total}");
        let run = self.dot_run(&data, &data2);
        let ggml_err = (run.typed - dot64(&data, &data2) as f32).abs() / test_size as f32;
        assert!(ggml_err < MAX_DOT_PRODUCT_ERROR, "{name}: ggml dot product error {ggml_err}");
        println!("{name}: ggml total quantization error {total:.6}, dot product error {ggml_err:.6}");

        // 2. Random rows of every length.
        let mut rng = SmallRng::seed_from_u64(0x1e6a_c0de ^ self.ty.id() as u64);
        let mut worst_rel = 0.0f64;
        for &n in &LENGTHS {
            let x = gaussian(&mut rng, n);
            let y = self.round_trip(&x);
            if n == 0 {
                assert!(y.is_empty());
            } else {
                let rel = rmse(&x, &y) / rms(&x);
                worst_rel = worst_rel.max(rel);
                assert!(rel <= self.max_rel_rmse, "{name} n={n}: round-trip rmse/rms {rel:.5} > {}", self.max_rel_rmse);
            }
            let a = gaussian(&mut rng, n);
            let run = self.dot_run(&x, &a);
            let diff = (run.typed as f64 - run.exact_of_quantized).abs();
            assert!(
                diff <= run.tol,
                "{name} n={n}: vec_dot {} vs exact dot of the quantized rows {} (diff {diff:e} > {:e})",
                run.typed,
                run.exact_of_quantized,
                run.tol
            );
            // Against the f32 data: the quantization errors must not add up
            // systematically (a bias would show as many sigmas).
            let err = (run.typed as f64 - dot64(&x, &a)).abs();
            assert!(
                err <= 6.0 * run.sigma + run.tol,
                "{name} n={n}: dot error {err:e} vs f32 data exceeds 6 sigma ({:e})",
                run.sigma
            );
            if n == 0 {
                assert_eq!(run.typed, 0.0);
            }
        }
        println!("{name}: worst round-trip rmse/rms on random rows {worst_rel:.5} (bound {})", self.max_rel_rmse);
    }
}

#[test]
fn q8_0_bounds() {
    Format {
        ty: GgmlType::Q8_0,
        quantize: q8_0::quantize_ref,
        dequantize: q8_0::dequantize,
        act_quantize: q8_0::quantize_ref,
        dot: q8_0::vec_dot_q8_0_q8_0_generic,
        max_rel_rmse: 0.010,
    }
    .check();
}

#[test]
fn q4_0_bounds() {
    Format {
        ty: GgmlType::Q4_0,
        quantize: q4_0::quantize_ref,
        dequantize: q4_0::dequantize,
        act_quantize: q8_0::quantize_ref,
        dot: q4_0::vec_dot_q4_0_q8_0_generic,
        max_rel_rmse: 0.15,
    }
    .check();
}

#[test]
fn q4_1_bounds() {
    Format {
        ty: GgmlType::Q4_1,
        quantize: q4_1::quantize_ref,
        dequantize: q4_1::dequantize,
        act_quantize: q8_1::quantize_ref,
        dot: q4_1::vec_dot_q4_1_q8_1_generic,
        max_rel_rmse: 0.12,
    }
    .check();
}

#[test]
fn q5_0_bounds() {
    Format {
        ty: GgmlType::Q5_0,
        quantize: q5_0::quantize_ref,
        dequantize: q5_0::dequantize,
        act_quantize: q8_0::quantize_ref,
        dot: q5_0::vec_dot_q5_0_q8_0_generic,
        max_rel_rmse: 0.075,
    }
    .check();
}

#[test]
fn q5_1_bounds() {
    Format {
        ty: GgmlType::Q5_1,
        quantize: q5_1::quantize_ref,
        dequantize: q5_1::dequantize,
        act_quantize: q8_1::quantize_ref,
        dot: q5_1::vec_dot_q5_1_q8_1_generic,
        max_rel_rmse: 0.06,
    }
    .check();
}

#[test]
fn iq4_nl_bounds() {
    Format {
        ty: GgmlType::IQ4_NL,
        quantize: iq4_nl::quantize_ref,
        dequantize: iq4_nl::dequantize,
        act_quantize: q8_0::quantize_ref,
        dot: iq4_nl::vec_dot_iq4_nl_q8_0_generic,
        max_rel_rmse: 0.12,
    }
    .check();
}

/// A float weight format: its typed dot and converters.
fn float_dot_check<T: Pod>(
    ty: GgmlType,
    to: fn(&[f32], &mut [T]),
    from: fn(&[T], &mut [f32]),
    dot: fn(&[T], &[T]) -> f32,
    rel: f32,
) {
    let name = ty.name();
    let k = Kernels::generic();
    let mut rng = SmallRng::seed_from_u64(0xf1_0a7 ^ ty.id() as u64);
    let ns: Vec<usize> =
        [1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 67, 127, 129, 193, 255, 1023].into_iter().chain(LENGTHS).collect();
    for n in ns {
        // ggml's test_vec_dot_f32 data, then random data.
        for (w, a) in
            [(generate_data(0.0, n, 2.0), generate_data(1.0, n, 2.0)), (gaussian(&mut rng, n), gaussian(&mut rng, n))]
        {
            let mut wt = vec![T::zeroed(); n];
            let mut at = vec![T::zeroed(); n];
            to(&w, &mut wt);
            to(&a, &mut at);
            // Round trip: each value within half an ulp of the format (relative `rel`).
            let mut back = vec![0.0f32; n];
            from(&wt, &mut back);
            for (x, y) in w.iter().zip(&back) {
                assert!((x - y).abs() <= x.abs() * rel, "{name}: {x} came back as {y}");
            }
            let typed = dot(&wt, &at);
            let mut ab = Buf::new(ty.row_bytes(n).unwrap());
            k.quantize_activations(ty, &a, ab.bytes_mut()).unwrap();
            assert_eq!(ab.bytes(), bytemuck::cast_slice::<T, u8>(&at), "{name}: quantize_activations");
            let via = k.vec_dot(ty, n, bytemuck::cast_slice(&wt), ab.bytes()).unwrap();
            assert_eq!(via.to_bits(), typed.to_bits(), "{name}: Kernels::vec_dot vs typed");
            // Against the exact dot of the converted values: f32 products summed in f64.
            let mut ad = vec![0.0f32; n];
            from(&at, &mut ad);
            let exact = dot64(&back, &ad);
            let tol = 1.2e-7 * abs_dot64(&back, &ad) + 1e-30;
            assert!((typed as f64 - exact).abs() <= tol, "{name} n={n}: {typed} vs {exact}");
            if n == 0 {
                continue;
            }
            // ggml's f32 vec_dot threshold, against the f32 data.
            let err = (typed as f64 - dot64(&w, &a)).abs() / n as f64;
            let max = if ty == GgmlType::F32 {
                MAX_QUANTIZATION_REFERENCE_ERROR as f64
            } else {
                MAX_DOT_PRODUCT_ERROR as f64
            };
            assert!(err < max, "{name} n={n}: dot error per value {err}");
        }
    }
    assert_eq!(dot(&[], &[]), 0.0);
}

#[test]
fn float_bounds() {
    fn copy(x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x)
    }
    float_dot_check::<f32>(GgmlType::F32, copy, copy, floats::vec_dot_f32_generic, 0.0);
    float_dot_check::<f16>(
        GgmlType::F16,
        floats::quantize_f16,
        floats::dequantize_f16,
        floats::vec_dot_f16_generic,
        1.0 / 2048.0,
    );
    float_dot_check::<bf16>(
        GgmlType::BF16,
        floats::quantize_bf16,
        floats::dequantize_bf16,
        floats::vec_dot_bf16_generic,
        1.0 / 256.0,
    );
}

#[test]
fn byte_level_entry_points_reject_bad_lengths() {
    let k = Kernels::generic();
    let mut out = Buf::new(34 * 2);
    // 48 values: not whole Q8_0 blocks.
    assert!(k.quantize_activations(GgmlType::Q8_0, &[0.0; 48], out.bytes_mut()).is_err());
    // 64 values need 68 bytes; give 34.
    let mut short = Buf::new(34);
    assert!(k.quantize_activations(GgmlType::Q8_0, &[0.0; 64], short.bytes_mut()).is_err());
    let w = Buf::new(18 * 2);
    assert!(k.vec_dot(GgmlType::Q4_0, 64, w.bytes(), short.bytes()).is_err());
    assert!(k.vec_dot(GgmlType::Q4_0, 64, &w.bytes()[..18], out.bytes()).is_err());
    assert_eq!(k.vec_dot(GgmlType::Q4_0, 64, w.bytes(), out.bytes()).unwrap(), 0.0);
    assert_eq!(k.vec_dot(GgmlType::Q4_0, 0, &w.bytes()[..0], &out.bytes()[..0]).unwrap(), 0.0);
}
