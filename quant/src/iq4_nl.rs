//! IQ4_NL: 32 weights as 4-bit indices into a fixed non-linear table (`KVALUES_IQ4NL`) with one f16 scale. Paired with Q8_0.
//!
//! Layout: ggml's `block_iq4_nl` (ggml-common.h).

use half::f16;

/// One IQ4_NL block of 32 values; mirrors ggml's `block_iq4_nl`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockIq4Nl {
    /// Scale.
    pub d: f16,
    /// 32 nibble indices, laid out as in Q4_0.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockIq4Nl>() == 18);
const _: () = assert!(core::mem::size_of::<BlockIq4Nl>() == crate::GgmlType::IQ4_NL.type_size());

/// Dequantizes `blocks` into `out` (`out.len()` must be `blocks.len() * block size`).
pub fn dequantize(blocks: &[BlockIq4Nl], out: &mut [f32]) {
    let _ = (blocks, out);
    unimplemented!("PLACEHOLDER iq4_nl::dequantize")
}

/// ggml's reference quantizer: `x` into `out` (`x.len()` must be `out.len() * block size`).
pub fn quantize_ref(x: &[f32], out: &mut [BlockIq4Nl]) {
    let _ = (x, out);
    unimplemented!("PLACEHOLDER iq4_nl::quantize_ref")
}

/// Portable dot product of weight blocks with activation blocks (same count).
pub fn vec_dot_iq4_nl_q8_0_generic(w: &[BlockIq4Nl], a: &[crate::q8_0::BlockQ8_0]) -> f32 {
    let _ = (w, a);
    unimplemented!("PLACEHOLDER vec_dot_iq4_nl_q8_0_generic")
}
