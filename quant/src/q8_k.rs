//! Q8_K: 256 activations as int8 with an f32 scale and the sums of each group of 16, the activation format paired with every k-quant.
//!
//! Layout: ggml's `block_q8_K` (ggml-common.h). Quantizer: ggml's
//! `quantize_row_q8_K_ref` (ggml-quants.c): `d = max / -127` where `max` is the
//! value of largest magnitude (with its sign), `q = min(127, round(x / d))`.

use crate::k_common::nearest_int;
use crate::QK_K;

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

/// Dequantizes `blocks` into `out`: `out[i] = d * q[i]`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ8K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q8_k::dequantize: output length");
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        for (o, &q) in y.iter_mut().zip(b.qs.iter()) {
            *o = b.d * q as f32;
        }
    }
}

/// ggml's reference quantizer `quantize_row_q8_K_ref`: `x` into `out`.
///
/// Unlike ggml, an all-zero block also gets zero `bsums` (ggml leaves them
/// untouched); everything else is byte-identical.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ8K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q8_k::quantize_ref: input length");
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        for &v in xb {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        if amax == 0.0 {
            y.d = 0.0;
            y.qs = [0; QK_K];
            y.bsums = [0; QK_K / 16];
            continue;
        }
        let iscale = -127.0f32 / max;
        for (q, &v) in y.qs.iter_mut().zip(xb) {
            // C assigns the int to an int8_t: truncation, as `as i8` does.
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, g) in y.bsums.iter_mut().zip(y.qs.chunks_exact(16)) {
            *s = g.iter().map(|&q| q as i16).sum();
        }
        y.d = 1.0 / iscale;
    }
}
