//! IQ4_NL: 32 weights as 4-bit indices into a fixed non-linear table (`KVALUES_IQ4NL`) with one f16 scale. Paired with Q8_0.
//!
//! Layout: ggml's `block_iq4_nl` (ggml-common.h). The quantizers are ggml's
//! `quantize_row_iq4_nl_impl` (ggml-quants.c) for a single 32-value block
//! without an importance matrix: [`quantize_ref`] is `quantize_row_iq4_nl_ref`
//! (no scale search) and [`quantize_with_search`] is `quantize_iq4_nl` (the
//! search over 15 candidate scales that `llama-quantize` uses). Both evaluate
//! every float operation in ggml's order without fused multiply-adds. The dot
//! product is ggml's `ggml_vec_dot_iq4_nl_q8_0_generic`.

use crate::q8_0::{abs, BlockQ8_0};
use half::f16;

/// Values per block (`QK4_NL`).
pub const QK4_NL: usize = 32;

/// The 16 levels an IQ4_NL index selects (ggml's `kvalues_iq4nl`).
pub const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// ggml's `GROUP_MAX_EPS`: blocks whose largest magnitude is below it are all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// One IQ4_NL block of 32 values; mirrors ggml's `block_iq4_nl`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockIq4Nl {
    /// Scale.
    pub d: f16,
    /// 32 nibble indices, laid out as in Q4_0.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockIq4Nl>() == 18);
const _: () = assert!(core::mem::size_of::<BlockIq4Nl>() == crate::GgmlType::IQ4_NL.type_size());

/// Dequantizes `blocks` into `out`: `d * KVALUES_IQ4NL[index]` (ggml's `dequantize_row_iq4_nl`).
///
/// # Panics
/// If `out.len() != blocks.len() * 32` (a programming error; the byte-level
/// entry points in [`crate::matmul`] check lengths and return `Err`).
pub fn dequantize(blocks: &[BlockIq4Nl], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK4_NL, "iq4_nl::dequantize: output length");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK4_NL)) {
        let d = b.d.to_f32();
        let (lo, hi) = o.split_at_mut(QK4_NL / 2);
        for j in 0..QK4_NL / 2 {
            lo[j] = d * KVALUES_IQ4NL[(b.qs[j] & 0x0f) as usize] as f32;
            hi[j] = d * KVALUES_IQ4NL[(b.qs[j] >> 4) as usize] as f32;
        }
    }
}

/// Index of the level nearest to `x` (ggml's `best_index_int8`: a binary
/// search, ties to the upper level).
#[inline(always)]
fn best_index(x: f32) -> u8 {
    let v = |i: usize| KVALUES_IQ4NL[i] as f32;
    if x <= v(0) {
        return 0;
    }
    if x >= v(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < v(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - v(mu - 1) < v(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// Weighted sums `(sum w*q*x, sum w*q*q)` over a block for the levels chosen
/// at inverse scale `id`, in ggml's order of operations; optionally records
/// the chosen indices.
#[inline(always)]
fn sums(xb: &[f32], weight: &[f32; QK4_NL], id: f32, mut l_out: Option<&mut [u8; QK4_NL]>) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for j in 0..QK4_NL {
        let l = best_index(id * xb[j]);
        if let Some(out) = l_out.as_deref_mut() {
            out[j] = l;
        }
        let q = KVALUES_IQ4NL[l as usize] as f32;
        let w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// ggml's `quantize_row_iq4_nl_impl(QK4_NL, 32, ...)` without importance
/// weights, for one block: `ntry <= 0` is `quantize_row_iq4_nl_ref`, `ntry = 7`
/// is `quantize_iq4_nl`.
fn quantize_block(xb: &[f32], ntry: i32) -> BlockIq4Nl {
    let mut weight = [0.0f32; QK4_NL];
    for (w, &v) in weight.iter_mut().zip(xb) {
        *w = v * v;
    }
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in xb {
        let ax = abs(v);
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    let mut l = [0u8; QK4_NL];
    let scale = if amax < GROUP_MAX_EPS {
        0.0
    } else {
        let v0 = KVALUES_IQ4NL[0] as f32;
        let d = if ntry > 0 { -max / v0 } else { max / v0 };
        let (sumqx, sumq2) = sums(xb, &weight, 1.0 / d, Some(&mut l));
        let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -ntry..=ntry {
            let id = (itry + KVALUES_IQ4NL[0] as i32) as f32 / max;
            let (sumqx, sumq2) = sums(xb, &weight, id, None);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        d
    };
    if ntry > 0 {
        // The indices are chosen again for the final (f32) scale.
        let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        for (l, &v) in l.iter_mut().zip(xb) {
            *l = best_index(id * v);
        }
    }
    let mut qs = [0u8; 16];
    for j in 0..16 {
        qs[j] = l[j] | (l[j + 16] << 4);
    }
    BlockIq4Nl { d: f16::from_f32(scale), qs }
}

/// ggml's reference quantizer (`quantize_row_iq4_nl_ref`): per block, the
/// scale `max / -127` (the value of largest magnitude on the table's -127
/// end) picks the nearest levels, then the scale is refit by least squares
/// weighted by `x²`.
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_ref(x: &[f32], out: &mut [BlockIq4Nl]) {
    assert_eq!(x.len(), out.len() * QK4_NL, "iq4_nl::quantize_ref: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK4_NL)) {
        *b = quantize_block(xb, -1);
    }
}

/// ggml's `quantize_iq4_nl` without an importance matrix (what `llama-quantize`
/// writes for IQ4_NL without `--imatrix`): like [`quantize_ref`] but starting
/// from `max / 127` and keeping the best of 15 candidate scales
/// `(k - 127) / max`, `k = -7..=7`, by weighted squared error.
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_with_search(x: &[f32], out: &mut [BlockIq4Nl]) {
    assert_eq!(x.len(), out.len() * QK4_NL, "iq4_nl::quantize_with_search: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK4_NL)) {
        *b = quantize_block(xb, 7);
    }
}

/// Portable dot product of weight blocks with activation blocks (same count):
/// per block `(d_a * d_w) * sum(KVALUES_IQ4NL[i_w] * q_a)`, summed in f32 in
/// block order (ggml's `ggml_vec_dot_iq4_nl_q8_0_generic`).
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_iq4_nl_q8_0_generic(w: &[BlockIq4Nl], a: &[BlockQ8_0]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_iq4_nl_q8_0: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let d = y.d.to_f32() * x.d.to_f32();
        let mut sumi = 0i32;
        for j in 0..QK4_NL / 2 {
            sumi += y.qs[j] as i32 * KVALUES_IQ4NL[(x.qs[j] & 0x0f) as usize] as i32;
            sumi += y.qs[j + QK4_NL / 2] as i32 * KVALUES_IQ4NL[(x.qs[j] >> 4) as usize] as i32;
        }
        sumf += d * sumi as f32;
    }
    sumf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_index_picks_nearest_level_ties_up() {
        assert_eq!(best_index(-1000.0), 0);
        assert_eq!(best_index(1000.0), 15);
        assert_eq!(best_index(0.0), 8); // |0 - 1| < |0 + 10|
        assert_eq!(best_index(-4.5), 8); // midpoint of -10 and 1: the upper one
        assert_eq!(best_index(-4.6), 7);
        for (i, &v) in KVALUES_IQ4NL.iter().enumerate() {
            assert_eq!(best_index(v as f32) as usize, i);
        }
    }

    #[test]
    fn table_values_are_reproduced_exactly() {
        // x = d * kvalues with a power-of-two d: both quantizers recover every index.
        let mut x = [0.0f32; 32];
        for (j, v) in x.iter_mut().enumerate() {
            *v = KVALUES_IQ4NL[j % 16] as f32 * 0.125;
        }
        for quantize in [quantize_ref, quantize_with_search] {
            let mut b = [BlockIq4Nl { d: f16::ZERO, qs: [0; 16] }];
            quantize(&x, &mut b);
            let mut y = [0.0f32; 32];
            dequantize(&b, &mut y);
            assert_eq!(b[0].d, f16::from_f32(0.125));
            assert_eq!(y, x);
        }
    }

    #[test]
    fn tiny_blocks_are_zero() {
        let x = [1e-16f32; 32];
        let mut b = [BlockIq4Nl { d: f16::ONE, qs: [1; 16] }];
        quantize_ref(&x, &mut b);
        assert_eq!(b[0], BlockIq4Nl { d: f16::ZERO, qs: [0; 16] });
        quantize_with_search(&x, &mut b);
        assert_eq!(b[0], BlockIq4Nl { d: f16::ZERO, qs: [0x88; 16] });
    }

    #[test]
    fn dot_matches_dequantized_products() {
        let mut w = [BlockIq4Nl { d: f16::from_f32(0.5), qs: [0; 16] }; 2];
        let mut a = [BlockQ8_0 { d: f16::from_f32(0.25), qs: [0; 32] }; 2];
        for i in 0..2 {
            for j in 0..16 {
                w[i].qs[j] = (j * 31 + i * 7) as u8;
            }
            for j in 0..32 {
                a[i].qs[j] = (j as i8 - 16) * 4;
            }
        }
        let (mut wf, mut af) = ([0.0f32; 64], [0.0f32; 64]);
        dequantize(&w, &mut wf);
        crate::q8_0::dequantize(&a, &mut af);
        let want: f32 = wf.iter().zip(&af).map(|(x, y)| x * y).sum();
        assert_eq!(vec_dot_iq4_nl_q8_0_generic(&w, &a), want);
    }
}
