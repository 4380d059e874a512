//! Q8_1 with AVX2: the f32 → Q8_1 activation quantizer (paired with Q4_1 and Q5_1).

use super::avx2::hsum_epi32;
use super::q8_0_avx2::{pack_i32x32, quantize_block, store_i8x32};
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;
use half::f16;

/// f32 → Q8_1 with ggml's x86 SIMD arithmetic (`quantize_row_q8_1`: the
/// rounding of [`super::q8_0_avx2::quantize_block`], `s = f16(d * sum(q))`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `x.len() == 32 * out.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_1_avx2(x: &[f32], out: &mut [BlockQ8_1]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.iter_mut()) {
        let (q, d) = quantize_block(xb.try_into().unwrap());
        let sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        ob.d = f16::from_f32(d);
        ob.s = f16::from_f32(d * sum as f32);
        store_i8x32(&mut ob.qs, pack_i32x32(q));
    }
}
