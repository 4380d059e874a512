//! Q4_1: 32 weights as 4-bit values with an f16 scale and minimum: `w = d * q + m`. Paired with Q8_1 activations.
//!
//! Layout: ggml's `block_q4_1` (ggml-common.h).

use half::f16;

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

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ4_1], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q4_1::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ4_1]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q4_1::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q4_1_q8_1_generic(w: &[BlockQ4_1], a: &[crate::q8_1::BlockQ8_1]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q4_1_q8_1_generic")
}
