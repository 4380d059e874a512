//! Q4_K: 256 weights in 8 groups of 32, 4-bit values with 6-bit scales and minimums per group, scaled by f16 `d` and `dmin`. Paired with Q8_K.
//!
//! Layout: ggml's `block_q4_K` (ggml-common.h).

use half::f16;

/// One Q4_K block of 256 values; mirrors ggml's `block_q4_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// 8 six-bit scales and 8 six-bit minimums, packed in 12 bytes.
    pub scales: [u8; 12],
    /// 4-bit values, two per byte.
    pub qs: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<BlockQ4K>() == 144);
const _: () = assert!(core::mem::size_of::<BlockQ4K>() == crate::GgmlType::Q4_K.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ4K], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q4_k::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ4K]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q4_k::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q4_k_q8_k_generic(w: &[BlockQ4K], a: &[crate::q8_k::BlockQ8K]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q4_k_q8_k_generic")
}
