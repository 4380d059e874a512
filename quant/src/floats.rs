//! F32, F16 and BF16 tensors: conversion to f32 and dot products with
//! activations in the same float type.
//!
//! The dot products follow ggml's scalar `ggml_vec_dot_f32/f16/bf16` (ggml-cpu
//! vec.cpp): each product in f32, accumulated in f64 (`ggml_float`). The BF16
//! conversion is ggml's `GGML_FP32_TO_BF16` (ggml-impl.h), identical with the
//! `gguf` Python package's `BF16.quantize_blocks`.

use half::{bf16, f16};

/// f32 · f32: products in f32, summed in f64 (ggml's scalar `ggml_vec_dot_f32`).
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_f32_generic(w: &[f32], a: &[f32]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_f32: lengths differ");
    let mut sum = 0.0f64;
    for (&x, &y) in w.iter().zip(a) {
        sum += (x * y) as f64;
    }
    sum as f32
}

/// f16 · f16: each value widened to f32 (exact), products in f32, summed in f64.
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_f16_generic(w: &[f16], a: &[f16]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_f16: lengths differ");
    let mut sum = 0.0f64;
    for (&x, &y) in w.iter().zip(a) {
        sum += (x.to_f32() * y.to_f32()) as f64;
    }
    sum as f32
}

/// bf16 · bf16: each value widened to f32 (exact), products in f32, summed in f64.
///
/// # Panics
/// If `w.len() != a.len()` (a programming error; [`crate::Kernels::vec_dot`] checks lengths).
pub fn vec_dot_bf16_generic(w: &[bf16], a: &[bf16]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_bf16: lengths differ");
    let mut sum = 0.0f64;
    for (&x, &y) in w.iter().zip(a) {
        sum += (bf16_to_f32(x) * bf16_to_f32(y)) as f64;
    }
    sum as f32
}

/// f32 → f16 (round to nearest even, as numpy's `astype(np.float16)` and
/// ggml's `GGML_FP32_TO_FP16`).
///
/// # Panics
/// If `x.len() != out.len()` (a programming error; the byte-level entry points
/// in [`crate::matmul`] check lengths and return `Err`).
pub fn quantize_f16(x: &[f32], out: &mut [f16]) {
    assert_eq!(x.len(), out.len(), "quantize_f16: lengths differ");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f16::from_f32(v);
    }
}

/// One f32 → bf16 exactly as ggml's `GGML_FP32_TO_BF16`: NaN keeps its sign
/// and top payload bits and is forced quiet; everything else rounds to
/// nearest even (overflowing to infinity).
#[inline(always)]
pub fn f32_to_bf16(v: f32) -> bf16 {
    let i = v.to_bits();
    if i & 0x7fff_ffff > 0x7f80_0000 {
        return bf16::from_bits(((i >> 16) | 64) as u16);
    }
    // Cannot overflow: the largest non-NaN pattern is 0xff80_0000.
    bf16::from_bits(((i + (0x7fff + ((i >> 16) & 1))) >> 16) as u16)
}

/// One bf16 → f32 (exact: the bits shifted into the top half).
#[inline(always)]
pub fn bf16_to_f32(v: bf16) -> f32 {
    f32::from_bits((v.to_bits() as u32) << 16)
}

/// f32 → bf16, rounding as ggml's `GGML_FP32_TO_BF16` does (nearest even, NaN kept quiet).
///
/// # Panics
/// If `x.len() != out.len()` (a programming error; see [`quantize_f16`]).
pub fn quantize_bf16(x: &[f32], out: &mut [bf16]) {
    assert_eq!(x.len(), out.len(), "quantize_bf16: lengths differ");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f32_to_bf16(v);
    }
}

/// f16 → f32 (exact).
///
/// # Panics
/// If `x.len() != out.len()` (a programming error; see [`quantize_f16`]).
pub fn dequantize_f16(x: &[f16], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "dequantize_f16: lengths differ");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.to_f32();
    }
}

/// bf16 → f32 (exact).
///
/// # Panics
/// If `x.len() != out.len()` (a programming error; see [`quantize_f16`]).
pub fn dequantize_bf16(x: &[bf16], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "dequantize_bf16: lengths differ");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = bf16_to_f32(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_by_hand() {
        let cases: [(u32, u16); 8] = [
            (0x3f80_0000, 0x3f80), // 1.0
            (0x3f80_8000, 0x3f80), // halfway, even below: stays
            (0x3f81_8000, 0x3f82), // halfway, odd below: rounds up
            (0x3f80_8001, 0x3f81), // above halfway
            (0x7f7f_ffff, 0x7f80), // f32::MAX overflows to +inf
            (0xff80_0000, 0xff80), // -inf
            (0x7f80_0001, 0x7fc0), // signalling NaN forced quiet
            (0xffc1_2345, 0xffc1), // NaN keeps sign and top payload
        ];
        for (bits, want) in cases {
            assert_eq!(f32_to_bf16(f32::from_bits(bits)).to_bits(), want, "{bits:#x}");
        }
    }

    #[test]
    fn dots_accumulate_in_f64() {
        // 1e8 + 1 - 1e8 loses the 1 in an f32 accumulator, not in f64.
        let w = [1.0e8f32, 1.0, -1.0e8];
        let a = [1.0f32; 3];
        assert_eq!(vec_dot_f32_generic(&w, &a), 1.0);
        let wh = [f16::from_f32(2048.0), f16::ONE, f16::from_f32(-2048.0)];
        let ah = [f16::from_f32(16.0), f16::ONE, f16::from_f32(16.0)];
        assert_eq!(vec_dot_f16_generic(&wh, &ah), 1.0);
        let wb = [bf16::from_f32(1.0e8), bf16::ONE, bf16::from_f32(-1.0e8)];
        let ab = [bf16::ONE; 3];
        assert_eq!(vec_dot_bf16_generic(&wb, &ab), 1.0);
        assert_eq!(vec_dot_f32_generic(&[], &[]), 0.0);
    }
}
