//! Q8_1 with AVX-512: the f32 → Q8_1 activation quantizer.

use super::q8_0_avx512::{quantize_block, store_i8x32};
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;
use half::f16;

/// f32 → Q8_1 with ggml's x86 SIMD arithmetic (`s = f16(d * sum(q))`).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL, AVX2, FMA and F16C. `x.len() == 32 * out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_1_avx512(x: &[f32], out: &mut [BlockQ8_1]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.iter_mut()) {
        let (q, d) = quantize_block(xb.try_into().unwrap());
        let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q[0], q[1]));
        ob.d = f16::from_f32(d);
        ob.s = f16::from_f32(d * sum as f32);
        store_i8x32(&mut ob.qs, q);
    }
}
