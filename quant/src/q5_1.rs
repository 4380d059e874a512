//! Q5_1: 32 weights as 5-bit values with an f16 scale and minimum: `w = d * q + m`. Paired with Q8_1.
//!
//! Layout: ggml's `block_q5_1` (ggml-common.h). The quantizer is ggml's
//! `quantize_row_q5_1_ref` (ggml-quants.c) evaluated without fused
//! multiply-adds, byte-identical with the `gguf` Python package's
//! `quants.quantize`; the dot product is ggml's `ggml_vec_dot_q5_1_q8_1_generic`.

use crate::q4_1::min_max;
use crate::q5_0::{pack5, unpack5};
use crate::q8_1::BlockQ8_1;
use half::f16;

/// Values per block (`QK5_1`).
pub const QK5_1: usize = 32;

/// One Q5_1 block of 32 values; mirrors ggml's `block_q5_1`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Fifth bit of each value, value j at bit j (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles, laid out as in Q4_0.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ5_1>() == 24);
const _: () = assert!(core::mem::size_of::<BlockQ5_1>() == crate::GgmlType::Q5_1.type_size());

/// Dequantizes `blocks` into `out`: `q * d + m` (ggml's `dequantize_row_q5_1`).
///
/// # Panics
/// If `out.len() != blocks.len() * 32` (a programming error; the byte-level
/// entry points in [`crate::matmul`] check lengths and return `Err`).
pub fn dequantize(blocks: &[BlockQ5_1], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK5_1, "q5_1::dequantize: output length");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK5_1)) {
        let d = b.d.to_f32();
        let m = b.m.to_f32();
        let qh = u32::from_le_bytes(b.qh);
        let (lo, hi) = o.split_at_mut(QK5_1 / 2);
        for j in 0..QK5_1 / 2 {
            let (q0, q1) = unpack5(qh, b.qs[j], j);
            lo[j] = q0 as f32 * d + m;
            hi[j] = q1 as f32 * d + m;
        }
    }
}

/// ggml's reference quantizer (`quantize_row_q5_1_ref`): `d = (max - min) / 31`,
/// `m = min`, `q = trunc((x - min) / d + 0.5)` (at most 31 for finite input).
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ5_1]) {
    assert_eq!(x.len(), out.len() * QK5_1, "q5_1::quantize_ref: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK5_1)) {
        let (min, max) = min_max(xb);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut q = [0u8; 32];
        for (q, &v) in q.iter_mut().zip(xb) {
            // ggml does not clamp here; (x - min) / d + 0.5 < 32 for finite
            // input, and the clamp (which `gguf` applies) keeps NaN/inf input
            // well defined.
            *q = (((v - min) * id + 0.5) as i32).clamp(0, 31) as u8;
        }
        b.d = f16::from_f32(d);
        b.m = f16::from_f32(min);
        (b.qh, b.qs) = pack5(&q);
    }
}

/// Portable dot product of weight blocks with Q8_1 activation blocks (same
/// count): per block `(d_w * d_a) * sum(q_w * q_a) + m_w * s_a`, summed in f32
/// in block order (ggml's `ggml_vec_dot_q5_1_q8_1_generic`).
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_q5_1_q8_1_generic(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q5_1_q8_1: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let qh = u32::from_le_bytes(x.qh);
        let mut sumi = 0i32;
        for j in 0..QK5_1 / 2 {
            let (q0, q1) = unpack5(qh, x.qs[j], j);
            sumi += q0 as i32 * y.qs[j] as i32 + q1 as i32 * y.qs[j + QK5_1 / 2] as i32;
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
        let mut x = [2.0f32; 32];
        x[0] = -1.0; // min
        x[20] = 14.5; // max: d = 0.5
        x[3] = 0.26; // (1.26) / 0.5 + 0.5 = 3.02 -> 3
        let mut b = [BlockQ5_1 { d: f16::ZERO, m: f16::ZERO, qh: [0; 4], qs: [0; 16] }];
        quantize_ref(&x, &mut b);
        assert_eq!((b[0].d, b[0].m), (f16::from_f32(0.5), f16::from_f32(-1.0)));
        let mut y = [0.0f32; 32];
        dequantize(&b, &mut y);
        assert_eq!((y[0], y[20], y[3], y[1]), (-1.0, 14.5, 0.5, 2.0));
        assert_eq!(u32::from_le_bytes(b[0].qh), 1 << 20); // only 31 needs the fifth bit
    }

    #[test]
    fn dot_uses_min_times_activation_sum() {
        let w = [BlockQ5_1 { d: f16::from_f32(0.5), m: f16::from_f32(-4.0), qh: [0xff; 4], qs: [0x00; 16] }];
        let a = [BlockQ8_1 { d: f16::from_f32(0.25), s: f16::from_f32(0.25 * 32.0), qs: [1; 32] }];
        // every weight 16 * 0.5 - 4 = 4, every activation 0.25: 32 * 1.0.
        assert_eq!(vec_dot_q5_1_q8_1_generic(&w, &a), 32.0);
    }
}
