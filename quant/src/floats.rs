//! F32, F16 and BF16 tensors: conversion to f32 and dot products with
//! activations in the same float type.

use half::{bf16, f16};

/// f32 · f32.
pub fn vec_dot_f32_generic(w: &[f32], a: &[f32]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_f32_generic")
}

/// f16 · f16, accumulated in f32.
pub fn vec_dot_f16_generic(w: &[f16], a: &[f16]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_f16_generic")
}

/// bf16 · bf16, accumulated in f32.
pub fn vec_dot_bf16_generic(w: &[bf16], a: &[bf16]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_bf16_generic")
}

/// f32 → f16 (round to nearest even).
pub fn quantize_f16(x: &[f32], out: &mut [f16]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER quantize_f16")
}

/// f32 → bf16, rounding as ggml's `GGML_FP32_TO_BF16` does (nearest even, NaN kept quiet).
pub fn quantize_bf16(x: &[f32], out: &mut [bf16]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER quantize_bf16")
}
