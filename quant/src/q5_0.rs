//! Q5_0: 32 weights as 5-bit values (4 low bits in `qs`, the fifth in `qh`): `w = d * (q - 16)`. Paired with Q8_0.
//!
//! Layout: ggml's `block_q5_0` (ggml-common.h). The quantizer is ggml's
//! `quantize_row_q5_0_ref` (ggml-quants.c) evaluated without fused
//! multiply-adds, byte-identical with the `gguf` Python package's
//! `quants.quantize`; the dot product is ggml's `ggml_vec_dot_q5_0_q8_0_generic`.

use crate::q4_0::signed_absmax;
use crate::q8_0::BlockQ8_0;
use half::f16;

/// Values per block (`QK5_0`).
pub const QK5_0: usize = 32;

/// One Q5_0 block of 32 values; mirrors ggml's `block_q5_0`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bit of each value, value j at bit j (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles, laid out as in Q4_0.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ5_0>() == 22);
const _: () = assert!(core::mem::size_of::<BlockQ5_0>() == crate::GgmlType::Q5_0.type_size());

/// The 5-bit values `0..=31` of value `j` and `j + 16` of a block with high
/// bits `qh` (as a little-endian u32) and low nibbles byte `qs_j`.
#[inline(always)]
pub(crate) fn unpack5(qh: u32, qs_j: u8, j: usize) -> (u8, u8) {
    let h0 = ((qh >> j) & 1) as u8;
    let h1 = ((qh >> (j + 16)) & 1) as u8;
    ((qs_j & 0x0f) | (h0 << 4), (qs_j >> 4) | (h1 << 4))
}

/// Dequantizes `blocks` into `out`: `(q - 16) * d` (ggml's `dequantize_row_q5_0`).
///
/// # Panics
/// If `out.len() != blocks.len() * 32` (a programming error; the byte-level
/// entry points in [`crate::matmul`] check lengths and return `Err`).
pub fn dequantize(blocks: &[BlockQ5_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK5_0, "q5_0::dequantize: output length");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK5_0)) {
        let d = b.d.to_f32();
        let qh = u32::from_le_bytes(b.qh);
        let (lo, hi) = o.split_at_mut(QK5_0 / 2);
        for j in 0..QK5_0 / 2 {
            let (q0, q1) = unpack5(qh, b.qs[j], j);
            lo[j] = (q0 as i32 - 16) as f32 * d;
            hi[j] = (q1 as i32 - 16) as f32 * d;
        }
    }
}

/// Packs 32 values `0..=31` into `(qh, qs)`: low nibbles as in Q4_0, the fifth
/// bit of value j at bit j of `qh`.
#[inline(always)]
pub(crate) fn pack5(q: &[u8; 32]) -> ([u8; 4], [u8; 16]) {
    let mut qs = [0u8; 16];
    let mut qh = 0u32;
    for j in 0..16 {
        qs[j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
        qh |= ((q[j] as u32 & 0x10) >> 4) << j;
        qh |= ((q[j + 16] as u32 & 0x10) >> 4) << (j + 16);
    }
    (qh.to_le_bytes(), qs)
}

/// ggml's reference quantizer (`quantize_row_q5_0_ref`): `d = max / -16` where
/// `max` is the value of largest magnitude, `q = min(31, trunc(x / d + 16.5))`.
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ5_0]) {
    assert_eq!(x.len(), out.len() * QK5_0, "q5_0::quantize_ref: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK5_0)) {
        let max = signed_absmax(xb);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut q = [0u8; 32];
        for (q, &v) in q.iter_mut().zip(xb) {
            *q = ((v * id + 16.5) as i32).clamp(0, 31) as u8;
        }
        b.d = f16::from_f32(d);
        (b.qh, b.qs) = pack5(&q);
    }
}

/// Portable dot product of weight blocks with activation blocks (same count):
/// per block `(d_w * d_a) * sum((q_w - 16) * q_a)`, summed in f32 in block
/// order (ggml's `ggml_vec_dot_q5_0_q8_0_generic`).
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_q5_0_q8_0_generic(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q5_0_q8_0: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let qh = u32::from_le_bytes(x.qh);
        let mut sumi = 0i32;
        for j in 0..QK5_0 / 2 {
            let (q0, q1) = unpack5(qh, x.qs[j], j);
            sumi += (q0 as i32 - 16) * y.qs[j] as i32 + (q1 as i32 - 16) * y.qs[j + QK5_0 / 2] as i32;
        }
        sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32;
    }
    sumf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_round_trip() {
        let mut q = [0u8; 32];
        for (j, v) in q.iter_mut().enumerate() {
            *v = ((j * 7 + 3) % 32) as u8;
        }
        let (qh, qs) = pack5(&q);
        let qh = u32::from_le_bytes(qh);
        for j in 0..16 {
            assert_eq!(unpack5(qh, qs[j], j), (q[j], q[j + 16]));
        }
    }

    #[test]
    fn one_block_by_hand() {
        let mut x = [0.0f32; 32];
        x[1] = 8.0; // largest magnitude, positive: d = -0.5, maps to 0
        x[30] = -8.0; // maps to 32, clamped to 31
        x[4] = 1.0; // 1 / -0.5 + 16.5 = 14.5 -> 14
        let mut b = [BlockQ5_0 { d: f16::ZERO, qh: [0; 4], qs: [0; 16] }];
        quantize_ref(&x, &mut b);
        assert_eq!(b[0].d, f16::from_f32(-0.5));
        let mut y = [0.0f32; 32];
        dequantize(&b, &mut y);
        assert_eq!((y[1], y[30], y[4], y[0]), (8.0, -7.5, 1.0, 0.0));
    }

    #[test]
    fn dot_matches_dequantized_products() {
        let mut w = [BlockQ5_0 { d: f16::from_f32(0.25), qh: [0xa5, 0x0f, 0x33, 0xc1], qs: [0; 16] }; 2];
        w[1].d = f16::from_f32(-2.0);
        let mut a = [BlockQ8_0 { d: f16::from_f32(0.5), qs: [0; 32] }; 2];
        for i in 0..2 {
            for j in 0..16 {
                w[i].qs[j] = (j * 17 + i * 5) as u8;
            }
            for j in 0..32 {
                a[i].qs[j] = (j as i8 - 12) * 3;
            }
        }
        let (mut wf, mut af) = ([0.0f32; 64], [0.0f32; 64]);
        dequantize(&w, &mut wf);
        crate::q8_0::dequantize(&a, &mut af);
        let want: f32 = wf.iter().zip(&af).map(|(x, y)| x * y).sum();
        assert_eq!(vec_dot_q5_0_q8_0_generic(&w, &a), want);
    }
}
