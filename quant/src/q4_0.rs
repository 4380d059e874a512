//! Q4_0: 32 weights as 4-bit unsigned values with one f16 scale: `w = d * (q - 8)`. Paired with Q8_0 activations.
//!
//! Layout: ggml's `block_q4_0` (ggml-common.h). The quantizer is ggml's
//! `quantize_row_q4_0_ref` (ggml-quants.c) evaluated without fused
//! multiply-adds, byte-identical with the `gguf` Python package's
//! `quants.quantize`; the dot product is ggml's `ggml_vec_dot_q4_0_q8_0_generic`.

use crate::q8_0::{abs, BlockQ8_0};
use half::f16;

/// Values per block (`QK4_0`).
pub const QK4_0: usize = 32;

/// One Q4_0 block of 32 values; mirrors ggml's `block_q4_0`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// 32 nibbles: value j in the low nibble of byte j, value j+16 in the high nibble.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == crate::GgmlType::Q4_0.type_size());

/// Dequantizes `blocks` into `out` (ggml's `dequantize_row_q4_0`).
///
/// # Panics
/// If `out.len() != blocks.len() * 32` (a programming error; the byte-level
/// entry points in [`crate::matmul`] check lengths and return `Err`).
pub fn dequantize(blocks: &[BlockQ4_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK4_0, "q4_0::dequantize: output length");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK4_0)) {
        let d = b.d.to_f32();
        let (lo, hi) = o.split_at_mut(QK4_0 / 2);
        for j in 0..QK4_0 / 2 {
            lo[j] = ((b.qs[j] & 0x0f) as i32 - 8) as f32 * d;
            hi[j] = ((b.qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// The value of largest magnitude in `x`, the first one on ties (ggml's
/// `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`).
#[inline(always)]
pub(crate) fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < abs(v) {
            amax = abs(v);
            max = v;
        }
    }
    max
}

/// ggml's reference quantizer (`quantize_row_q4_0_ref`): `d = max / -8` where
/// `max` is the value of largest magnitude, `q = min(15, trunc(x / d + 8.5))`.
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ4_0]) {
    assert_eq!(x.len(), out.len() * QK4_0, "q4_0::quantize_ref: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK4_0)) {
        let max = signed_absmax(xb);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f16::from_f32(d);
        let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
        for j in 0..QK4_0 / 2 {
            b.qs[j] = q(xb[j]) | (q(xb[j + QK4_0 / 2]) << 4);
        }
    }
}

/// Portable dot product of weight blocks with activation blocks (same count):
/// per block the integer sum of `(q_w - 8) * q_a`, times `d_w`, times `d_a`,
/// summed in f32 in block order (ggml's `ggml_vec_dot_q4_0_q8_0_generic`).
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_q4_0_q8_0_generic(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q4_0_q8_0: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let mut sumi = 0i32;
        for j in 0..QK4_0 / 2 {
            let v0 = (x.qs[j] & 0x0f) as i32 - 8;
            let v1 = (x.qs[j] >> 4) as i32 - 8;
            sumi += v0 * y.qs[j] as i32 + v1 * y.qs[j + QK4_0 / 2] as i32;
        }
        sumf += sumi as f32 * x.d.to_f32() * y.d.to_f32();
    }
    sumf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_block_by_hand() {
        let mut x = [0.0f32; 32];
        x[3] = -4.0; // largest magnitude, negative: d = 0.5, maps to q = 0
        x[4] = 4.0; // maps to 16, clamped to 15
        x[20] = 1.0; // 1 / 0.5 + 8.5 = 10.5 -> 10
        let mut b = [BlockQ4_0 { d: f16::ZERO, qs: [0; 16] }];
        quantize_ref(&x, &mut b);
        assert_eq!(b[0].d, f16::from_f32(0.5));
        assert_eq!(b[0].qs[3] & 0x0f, 0);
        assert_eq!(b[0].qs[4] & 0x0f, 15);
        assert_eq!(b[0].qs[4] >> 4, 10);
        assert_eq!(b[0].qs[0], 0x88);
        let mut y = [0.0f32; 32];
        dequantize(&b, &mut y);
        assert_eq!((y[3], y[4], y[20], y[0]), (-4.0, 3.5, 1.0, 0.0));
    }

    #[test]
    fn dot_matches_dequantized_products() {
        let mut w = [BlockQ4_0 { d: f16::from_f32(0.25), qs: [0; 16] }; 3];
        let mut a = [BlockQ8_0 { d: f16::from_f32(0.5), qs: [0; 32] }; 3];
        for (i, (wb, ab)) in w.iter_mut().zip(a.iter_mut()).enumerate() {
            for j in 0..16 {
                wb.qs[j] = ((j + i) % 16) as u8 | ((15 - j) as u8) << 4;
            }
            for j in 0..32 {
                ab.qs[j] = (j as i8 - 10) * (i as i8 + 1);
            }
        }
        let mut wf = [0.0f32; 96];
        dequantize(&w, &mut wf);
        let mut af = [0.0f32; 96];
        crate::q8_0::dequantize(&a, &mut af);
        // Every product is exact in f32 here (small integers times powers of two).
        let want: f32 = wf.iter().zip(&af).map(|(x, y)| x * y).sum();
        assert_eq!(vec_dot_q4_0_q8_0_generic(&w, &a), want);
    }
}
