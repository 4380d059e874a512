//! Q8_0: 32 values as int8 with one f16 scale: `w = d * q`. Used for weights and as the activation format paired with Q4_0, Q5_0, Q8_0 and IQ4_NL.
//!
//! Layout: ggml's `block_q8_0` (ggml-common.h).

use half::f16;

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

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ8_0], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q8_0::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ8_0]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q8_0::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q8_0_q8_0_generic(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q8_0_q8_0_generic")
}
