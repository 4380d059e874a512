//! Q8_0: 32 values as int8 with one f16 scale: `w = d * q`. Used for weights and as the activation format paired with Q4_0, Q5_0, Q8_0 and IQ4_NL.
//!
//! Layout: ggml's `block_q8_0` (ggml-common.h). The quantizer is ggml's
//! `quantize_row_q8_0_ref` (ggml-quants.c), byte-identical with the `gguf`
//! Python package's `quants.quantize`; the dot product is ggml's
//! `ggml_vec_dot_q8_0_q8_0_generic` (ggml-cpu/quants.c).

use half::f16;

/// Values per block (`QK8_0`).
pub const QK8_0: usize = 32;

/// One Q8_0 block of 32 values; mirrors ggml's `block_q8_0`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quantized values.
    pub qs: [i8; 32],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == crate::GgmlType::Q8_0.type_size());

/// `roundf`: round half away from zero (C's `roundf`, numpy's `np_roundf` in
/// the `gguf` package), for values whose magnitude fits an `i32`.
///
/// Written without `f32::round`, which needs `std`.
#[inline(always)]
pub(crate) fn round_half_away(v: f32) -> f32 {
    let a = abs(v);
    let t = a as i32 as f32; // truncation of a non-negative value = floor
    let r = if a - t >= 0.5 { t + 1.0 } else { t };
    f32::from_bits(r.to_bits() | (v.to_bits() & 0x8000_0000)) // copysign
}

/// `fabsf` without `std`.
#[inline(always)]
pub(crate) fn abs(v: f32) -> f32 {
    f32::from_bits(v.to_bits() & 0x7fff_ffff)
}

/// Dequantizes `blocks` into `out`: `out[32*i + j] = qs[j] * d` (ggml's `dequantize_row_q8_0`).
///
/// # Panics
/// If `out.len() != blocks.len() * 32` (a programming error; the byte-level
/// entry points in [`crate::matmul`] check lengths and return `Err`).
pub fn dequantize(blocks: &[BlockQ8_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK8_0, "q8_0::dequantize: output length");
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK8_0)) {
        let d = b.d.to_f32();
        for (y, &q) in o.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

/// Quantizes one block: `d = amax / 127`, `q = roundf(x / d)`. Returns the
/// f32 scale (before its conversion to f16) with the block.
#[inline(always)]
pub(crate) fn quantize_block(x: &[f32]) -> (f32, [i8; QK8_0]) {
    let mut amax = 0.0f32;
    for &v in x {
        // MAX(amax, fabsf(v)) as ggml writes it: `amax > |v| ? amax : |v|`.
        let a = abs(v);
        amax = if amax > a { amax } else { a };
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK8_0];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = round_half_away(v * id) as i8;
    }
    (d, qs)
}

/// ggml's reference quantizer (`quantize_row_q8_0_ref`): `x` into `out`.
///
/// # Panics
/// If `x.len() != out.len() * 32` (a programming error; see [`dequantize`]).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ8_0]) {
    assert_eq!(x.len(), out.len() * QK8_0, "q8_0::quantize_ref: input length");
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK8_0)) {
        let (d, qs) = quantize_block(xb);
        b.d = f16::from_f32(d);
        b.qs = qs;
    }
}

/// Portable dot product of weight blocks with activation blocks (same count):
/// per block the integer sum of `qs_w * qs_a`, times `d_w * d_a`, summed in f32
/// in block order (ggml's `ggml_vec_dot_q8_0_q8_0_generic`).
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_q8_0_q8_0_generic(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q8_0_q8_0: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let mut sumi = 0i32;
        for (&qx, &qy) in x.qs.iter().zip(&y.qs) {
            sumi += qx as i32 * qy as i32;
        }
        sumf += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
    }
    sumf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_away_matches_c_roundf() {
        let cases = [
            (0.5, 1.0),
            (-0.5, -1.0),
            (1.5, 2.0),
            (2.5, 3.0),
            (-2.5, -3.0),
            (0.49999997, 0.0),
            (126.5, 127.0),
            (-0.0, -0.0),
            (3.2, 3.0),
            (-3.7, -4.0),
        ];
        for (v, want) in cases {
            assert_eq!(round_half_away(v).to_bits(), f32::to_bits(want), "roundf({v})");
        }
    }

    #[test]
    fn one_block_by_hand() {
        let mut x = [0.0f32; 32];
        x[0] = 127.0; // d = 1
        x[1] = -63.5; // half: rounds away from zero
        x[2] = 0.5;
        let mut b = [BlockQ8_0 { d: f16::ZERO, qs: [0; 32] }];
        quantize_ref(&x, &mut b);
        assert_eq!(b[0].d, f16::ONE);
        assert_eq!(b[0].qs[0], 127);
        assert_eq!(b[0].qs[1], -64); // -63.5 -> -64
        assert_eq!(b[0].qs[2], 1);
        assert!(b[0].qs[3..].iter().all(|&q| q == 0));
        let mut y = [0.0f32; 32];
        dequantize(&b, &mut y);
        assert_eq!((y[0], y[1], y[2]), (127.0, -64.0, 1.0));
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let x = [0.0f32; 64];
        let mut b = [BlockQ8_0 { d: f16::ONE, qs: [1; 32] }; 2];
        quantize_ref(&x, &mut b);
        assert!(b.iter().all(|b| b.d == f16::ZERO && b.qs == [0; 32]));
    }

    #[test]
    fn dot_is_sum_of_block_integer_dots() {
        let mut w = [BlockQ8_0 { d: f16::from_f32(0.5), qs: [0; 32] }; 2];
        let mut a = [BlockQ8_0 { d: f16::from_f32(0.25), qs: [0; 32] }; 2];
        for j in 0..32 {
            w[0].qs[j] = j as i8 - 16;
            a[0].qs[j] = 3;
            w[1].qs[j] = -128;
            a[1].qs[j] = -128;
        }
        let s0: i32 = (0..32).map(|j| (j - 16) * 3).sum();
        let s1 = 32 * 128 * 128;
        let want = s0 as f32 * 0.125 + s1 as f32 * 0.125;
        assert_eq!(vec_dot_q8_0_q8_0_generic(&w, &a), want);
        assert_eq!(vec_dot_q8_0_q8_0_generic(&[], &[]), 0.0);
    }
}
