//! Q8_1: 32 activations as int8 with an f16 scale `d` and `s = d * sum(qs)`, the activation format paired with Q4_1 and Q5_1 (the sum folds the weights' minimum into one multiply).
//!
//! Layout: ggml's `block_q8_1` (ggml-common.h).

use half::f16;

/// One Q8_1 block of 32 values; mirrors ggml's `block_q8_1`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// `d * sum(qs)`.
    pub s: f16,
    /// Quantized values.
    pub qs: [i8; 32],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_1>() == 36);
const _: () = assert!(core::mem::size_of::<BlockQ8_1>() == crate::GgmlType::Q8_1.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ8_1], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q8_1::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ8_1]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q8_1::quantize_ref")
}
