//! Q5_1: 32 weights as 5-bit values with an f16 scale and minimum: `w = d * q + m`. Paired with Q8_1.
//!
//! Layout: ggml's `block_q5_1` (ggml-common.h).

use half::f16;

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

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ5_1], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q5_1::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ5_1]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q5_1::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q5_1_q8_1_generic(w: &[BlockQ5_1], a: &[crate::q8_1::BlockQ8_1]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q5_1_q8_1_generic")
}
