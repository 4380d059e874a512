//! Q2_K: 256 weights in 16 groups of 16, 2-bit values with 4-bit scales and minimums per group, scaled by f16 `d` and `dmin`. Paired with Q8_K.
//!
//! Layout: ggml's `block_q2_K` (ggml-common.h).

use half::f16;

/// One Q2_K block of 256 values; mirrors ggml's `block_q2_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ2K {
    /// Per-group scale (low nibble) and minimum (high nibble).
    pub scales: [u8; 16],
    /// 2-bit values, four per byte.
    pub qs: [u8; 64],
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
}

const _: () = assert!(core::mem::size_of::<BlockQ2K>() == 84);
const _: () = assert!(core::mem::size_of::<BlockQ2K>() == crate::GgmlType::Q2_K.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ2K], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q2_k::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ2K]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q2_k::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q2_k_q8_k_generic(w: &[BlockQ2K], a: &[crate::q8_k::BlockQ8K]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q2_k_q8_k_generic")
}
