//! Q5_K: 256 weights in 8 groups of 32, 5-bit values (4 low bits in `qs`, the fifth in `qh`) with 6-bit scales and minimums. Paired with Q8_K.
//!
//! Layout: ggml's `block_q5_K` (ggml-common.h).

use half::f16;

/// One Q5_K block of 256 values; mirrors ggml's `block_q5_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ5K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// 8 six-bit scales and 8 six-bit minimums, packed in 12 bytes.
    pub scales: [u8; 12],
    /// Fifth bit of each value.
    pub qh: [u8; 32],
    /// Low 4 bits of each value, two per byte.
    pub qs: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<BlockQ5K>() == 176);
const _: () = assert!(core::mem::size_of::<BlockQ5K>() == crate::GgmlType::Q5_K.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ5K], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q5_k::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ5K]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q5_k::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q5_k_q8_k_generic(w: &[BlockQ5K], a: &[crate::q8_k::BlockQ8K]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q5_k_q8_k_generic")
}
