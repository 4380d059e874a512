//! Q3_K: 256 weights in 16 groups of 16, 3-bit values (2 low bits in `qs`, the high bit in `hmask`) with 6-bit signed scales. Paired with Q8_K.
//!
//! Layout: ggml's `block_q3_K` (ggml-common.h).

use half::f16;

/// One Q3_K block of 256 values; mirrors ggml's `block_q3_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ3K {
    /// High bit of each value.
    pub hmask: [u8; 32],
    /// Low 2 bits of each value, four per byte.
    pub qs: [u8; 64],
    /// 16 six-bit scales, packed in 12 bytes.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(core::mem::size_of::<BlockQ3K>() == 110);
const _: () = assert!(core::mem::size_of::<BlockQ3K>() == crate::GgmlType::Q3_K.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ3K], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q3_k::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ3K]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q3_k::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q3_k_q8_k_generic(w: &[BlockQ3K], a: &[crate::q8_k::BlockQ8K]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q3_k_q8_k_generic")
}
