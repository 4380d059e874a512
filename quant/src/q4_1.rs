//! Q4_1: 32 weights as 4-bit values with an f16 scale and minimum: `w = d * q + m`. Paired with Q8_1 activations.
//!
//! Layout: ggml's `block_q4_1` (ggml-common.h). The quantizer is ggml's
//! `quantize_row_q4_1_ref` (ggml-quants.c) evaluated without fused
//! multiply-adds, byte-identical with the `gguf` Python package's
//! `quants.quantize`; the dot product is ggml's `ggml_vec_dot_q4_1_q8_1_generic`.

use crate::q8_1::BlockQ8_1;
use half::f16;

/// Values per block (`QK4_1`).
pub const QK4_1: usize = 32;

/// One Q4_1 block of 32 values; mirrors ggml's `block_q4_1`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// 32 nibbles, laid out as in Q4_0.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);
const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == crate::GgmlType::Q4_1.type_size());

/// Dequantizes `blocks` into `out`: `q * d + m` (ggml's `dequantize_row_q4_1`).
///
/// # Panics
/// If `out.len() != blocks.len() * 32` (a programming error; the byte-level
/// entry points in [`crate::matmul`] check lengths and return `Err`).
pub fn dequantize(blocks: &[BlockQ4_1], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK4_1, "q4_1::dequantize: output length");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK4_1)) {
        let d = b.d.to_f32();
        let m = b.m.to_f32();
        let (lo, hi) = o.split_at_mut(QK4_1 / 2);
        for j in 0..QK4_1 / 2 {
            lo[j] = (b.qs[j] & 0x0f) as f32 * d + m;
            hi[j] = (b.qs[j] >> 4) as f32 * d + m;
        }
    }
}

/// Minimum and maximum of `x` as ggml's loop finds them (`FLT_MAX` and
/// `-FLT_MAX` for an empty slice).
#[inline(always)]
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// ggml's reference quantizer (`quantize_row_q4_1_ref`): `d = (max - min) / 15`,
/// `m = min`, `q = min(15, trunc((x - min) / d + 0.5))`.
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ4_1]) {
    assert_eq!(x.len(), out.len() * QK4_1, "q4_1::quantize_ref: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK4_1)) {
        let (min, max) = min_max(xb);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f16::from_f32(d);
        b.m = f16::from_f32(min);
        let q = |v: f32| (((v - min) * id + 0.5) as i32).clamp(0, 15) as u8;
        for j in 0..QK4_1 / 2 {
            b.qs[j] = q(xb[j]) | (q(xb[j + QK4_1 / 2]) << 4);
        }
    }
}

/// Portable dot product of weight blocks with Q8_1 activation blocks (same
/// count): per block `(d_w * d_a) * sum(q_w * q_a) + m_w * s_a`, summed in f32
/// in block order (ggml's `ggml_vec_dot_q4_1_q8_1_generic`).
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_q4_1_q8_1_generic(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q4_1_q8_1: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let mut sumi = 0i32;
        for j in 0..QK4_1 / 2 {
            let v0 = (x.qs[j] & 0x0f) as i32;
            let v1 = (x.qs[j] >> 4) as i32;
            sumi += v0 * y.qs[j] as i32 + v1 * y.qs[j + QK4_1 / 2] as i32;
        }
        sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
    }
    sumf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_block_by_hand() {
        let mut x = [1.0f32; 32];
        x[0] = -0.5; // min
        x[17] = 7.0; // max: d = 0.5
        x[5] = 0.74; // (0.74 + 0.5) / 0.5 + 0.5 = 2.98 -> 2
        let mut b = [BlockQ4_1 { d: f16::ZERO, m: f16::ZERO, qs: [0; 16] }];
        quantize_ref(&x, &mut b);
        assert_eq!((b[0].d, b[0].m), (f16::from_f32(0.5), f16::from_f32(-0.5)));
        assert_eq!(b[0].qs[0] & 0x0f, 0);
        assert_eq!(b[0].qs[1] >> 4, 15);
        assert_eq!(b[0].qs[5] & 0x0f, 2);
        assert_eq!(b[0].qs[2], 0x33); // 1.0 -> 3
        let mut y = [0.0f32; 32];
        dequantize(&b, &mut y);
        assert_eq!((y[0], y[17], y[5], y[2]), (-0.5, 7.0, 0.5, 1.0));
    }

    #[test]
    fn dot_uses_min_times_activation_sum() {
        let w = [BlockQ4_1 { d: f16::from_f32(0.5), m: f16::from_f32(-1.0), qs: [0x21; 16] }];
        let mut a = [BlockQ8_1 { d: f16::from_f32(0.25), s: f16::ZERO, qs: [2; 32] }];
        a[0].s = f16::from_f32(0.25 * 64.0);
        // weights: 1*0.5-1 = -0.5 (low half), 2*0.5-1 = 0 (high half); activations 0.5.
        let want = 16.0 * -0.5 * 0.5;
        assert_eq!(vec_dot_q4_1_q8_1_generic(&w, &a), want);
    }
}
