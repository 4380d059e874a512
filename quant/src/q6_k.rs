//! Q6_K: 256 weights in 16 groups of 16, 6-bit values (4 low bits in `ql`, 2 high bits in `qh`) with int8 scales and one f16 `d`. Paired with Q8_K.
//!
//! Layout: ggml's `block_q6_K` (ggml-common.h).

use half::f16;

/// One Q6_K block of 256 values; mirrors ggml's `block_q6_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low 4 bits of each value.
    pub ql: [u8; 128],
    /// High 2 bits of each value.
    pub qh: [u8; 64],
    /// Per-group scales.
    pub scales: [i8; 16],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(core::mem::size_of::<BlockQ6K>() == 210);
const _: () = assert!(core::mem::size_of::<BlockQ6K>() == crate::GgmlType::Q6_K.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ6K], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q6_k::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ6K]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q6_k::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q6_k_q8_k_generic(w: &[BlockQ6K], a: &[crate::q8_k::BlockQ8K]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q6_k_q8_k_generic")
}
