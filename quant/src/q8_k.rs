//! Q8_K: 256 activations as int8 with an f32 scale and the sums of each group of 16, the activation format paired with every k-quant.
//!
//! Layout: ggml's `block_q8_K` (ggml-common.h).

/// One Q8_K block of 256 values; mirrors ggml's `block_q8_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ8K {
    /// Scale.
    pub d: f32,
    /// Quantized values.
    pub qs: [i8; 256],
    /// Sum of each group of 16 values.
    pub bsums: [i16; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ8K>() == 292);
const _: () = assert!(core::mem::size_of::<BlockQ8K>() == crate::GgmlType::Q8_K.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockQ8K], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER q8_k::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ8K]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER q8_k::quantize_ref")
}
