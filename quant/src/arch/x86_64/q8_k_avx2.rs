//! Q8_K with AVX2: the f32 → Q8_K activation quantizer (paired with every k-quant).

use super::avx2::hsum_epi32;
use super::q8_0_avx2::{pack_i32x32, store_i8x32};
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// f32 → Q8_K with ggml's reference rounding: `iscale = -127 / max` where
/// `max` is the first value of largest magnitude, `q = min(127,
/// round_half_even(iscale * x))`, `d = 1 / iscale`, `bsums` the sums of each
/// group of 16. An all-zero block gets `d = 0` and zero quants and sums.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `x.len() == 256 * out.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_k_avx2(x: &[f32], out: &mut [BlockQ8K]) {
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    for (xb, ob) in x.chunks_exact(256).zip(out.iter_mut()) {
        let xb: &[f32; 256] = xb.try_into().unwrap();
        // SAFETY: 8k + 8 <= 256 for every k < 32; loadu needs no alignment.
        let v: [__m256; 32] = core::array::from_fn(|k| unsafe { _mm256_loadu_ps(xb.as_ptr().add(8 * k)) });
        let mut m = _mm256_setzero_ps();
        for v in &v {
            m = _mm256_max_ps(m, _mm256_and_ps(*v, abs));
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        if amax == 0.0 {
            ob.d = 0.0;
            ob.qs = [0; 256];
            ob.bsums = [0; 16];
            continue;
        }
        // The first value whose magnitude is `amax` gives the sign, as the scalar scan does.
        let target = _mm256_set1_ps(amax);
        let first = v
            .iter()
            .enumerate()
            .find_map(|(k, v)| {
                let mask = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_and_ps(*v, abs), target));
                (mask != 0).then(|| 8 * k + mask.trailing_zeros() as usize)
            })
            .unwrap_or(0);
        let iscale = -127.0 / xb[first];
        let s = _mm256_set1_ps(iscale);
        let cap = _mm256_set1_epi32(127);
        for g in 0..8 {
            // Round half to even (the default MXCSR mode), as ggml's `nearest_int`.
            let q: [__m256i; 4] =
                core::array::from_fn(|k| _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[4 * g + k], s)), cap));
            ob.bsums[2 * g] = hsum_epi32(_mm256_add_epi32(q[0], q[1])) as i16;
            ob.bsums[2 * g + 1] = hsum_epi32(_mm256_add_epi32(q[2], q[3])) as i16;
            let dst: &mut [i8; 32] = (&mut ob.qs[32 * g..32 * g + 32]).try_into().unwrap();
            store_i8x32(dst, pack_i32x32(q));
        }
        ob.d = 1.0 / iscale;
    }
}
