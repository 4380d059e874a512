//! Q8_1: 32 activations as int8 with an f16 scale `d` and `s = d * sum(qs)`, the activation format paired with Q4_1 and Q5_1 (the sum folds the weights' minimum into one multiply).
//!
//! Layout: ggml's `block_q8_1` (ggml-common.h). The quantizer is ggml's
//! `quantize_row_q8_1_ref` (ggml-quants.c).

use crate::q8_0;
use half::f16;

/// Values per block (`QK8_1`).
pub const QK8_1: usize = 32;

/// One Q8_1 block of 32 values; mirrors ggml's `block_q8_1`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// `d * sum(qs)`.
    pub s: f16,
    /// Quantized values.
    pub qs: [i8; 32],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_1>() == 36);
const _: () = assert!(core::mem::size_of::<BlockQ8_1>() == crate::GgmlType::Q8_1.type_size());

/// Dequantizes `blocks` into `out`: `qs[j] * d` (`s` is redundant).
///
/// # Panics
/// If `out.len() != blocks.len() * 32` (a programming error; the byte-level
/// entry points in [`crate::matmul`] check lengths and return `Err`).
pub fn dequantize(blocks: &[BlockQ8_1], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK8_1, "q8_1::dequantize: output length");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK8_1)) {
        let d = b.d.to_f32();
        for (y, &q) in o.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q8_1_ref`): the values and `d`
/// exactly as Q8_0's, plus `s = f16(sum(qs) * d)` with `d` in f32.
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ8_1]) {
    assert_eq!(x.len(), out.len() * QK8_1, "q8_1::quantize_ref: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK8_1)) {
        let (d, qs) = q8_0::quantize_block(xb);
        let sum: i32 = qs.iter().map(|&q| q as i32).sum();
        b.d = f16::from_f32(d);
        b.s = f16::from_f32(sum as f32 * d);
        b.qs = qs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_uses_the_f32_scale() {
        let mut x = [0.0f32; 32];
        for (j, v) in x.iter_mut().enumerate() {
            *v = j as f32 * 0.1 - 1.0;
        }
        let mut b = [BlockQ8_1 { d: f16::ZERO, s: f16::ZERO, qs: [0; 32] }];
        quantize_ref(&x, &mut b);
        let mut q0 = [q8_0::BlockQ8_0 { d: f16::ZERO, qs: [0; 32] }];
        q8_0::quantize_ref(&x, &mut q0);
        assert_eq!((b[0].d, b[0].qs), (q0[0].d, q0[0].qs));
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let sum: i32 = b[0].qs.iter().map(|&q| q as i32).sum();
        assert_eq!(b[0].s, f16::from_f32(sum as f32 * d));
    }
}
