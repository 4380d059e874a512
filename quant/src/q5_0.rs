//! Q5_0: 32 weights as 5-bit values (4 low bits in `qs`, the fifth in `qh`): `w = d * (q - 16)`. Paired with Q8_0.
//!
//! Layout: ggml's `block_q5_0` (ggml-common.h).

use half::f16;

/// One Q5_0 block of 32 values; mirrors ggml's `block_q5_0`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bit of each value, value j at bit j (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles, laid out as in Q4_0.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ5_0>() == 22);
const _: () = assert!(core::mem::size_of::<BlockQ5_0>() == crate::GgmlType::Q5_0.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ5_0], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q5_0::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ5_0]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q5_0::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_q5_0_q8_0_generic(w: &[BlockQ5_0], a: &[crate::q8_0::BlockQ8_0]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_q5_0_q8_0_generic")
}
