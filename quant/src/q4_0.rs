//! Q4_0: 32 weights as 4-bit unsigned values with one f16 scale: `w = d * (q - 8)`. Paired with Q8_0 activations.
//!
//! Layout: ggml's `block_q4_0` (ggml-common.h).

use half::f16;

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

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ4_0], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q4_0::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ4_0]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q4_0::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q4_0_q8_0_generic(w: &[BlockQ4_0], a: &[crate::q8_0::BlockQ8_0]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q4_0_q8_0_generic")
}
