//! Q8_K with AVX-512: the f32 → Q8_K activation quantizer.

use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// f32 → Q8_K with ggml's reference rounding (see the AVX2 twin): `iscale =
/// -127 / max` where `max` is the first value of largest magnitude, `q =
/// min(127, round_half_even(iscale * x))`, `d = 1 / iscale`, `bsums` the sums
/// of each group of 16 (one vector each). An all-zero block gets `d = 0` and
/// zero quants and sums.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL, AVX2, FMA and F16C. `x.len() == 256 * out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_k_avx512(x: &[f32], out: &mut [BlockQ8K]) {
    for (xb, ob) in x.chunks_exact(256).zip(out.iter_mut()) {
        let xb: &[f32; 256] = xb.try_into().unwrap();
        // SAFETY: 16k + 16 <= 256 for every k < 16; loadu needs no alignment.
        let v: [__m512; 16] = core::array::from_fn(|k| unsafe { _mm512_loadu_ps(xb.as_ptr().add(16 * k)) });
        let mut m = _mm512_setzero_ps();
        for v in &v {
            m = _mm512_max_ps(m, _mm512_abs_ps(*v));
        }
        let amax = _mm512_reduce_max_ps(m);
        if amax == 0.0 {
            ob.d = 0.0;
            ob.qs = [0; 256];
            ob.bsums = [0; 16];
            continue;
        }
        // The first value whose magnitude is `amax` gives the sign, as the scalar scan does.
        let target = _mm512_set1_ps(amax);
        let first = v
            .iter()
            .enumerate()
            .find_map(|(k, v)| {
                let mask = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(_mm512_abs_ps(*v), target);
                (mask != 0).then(|| 16 * k + mask.trailing_zeros() as usize)
            })
            .unwrap_or(0);
        let iscale = -127.0 / xb[first];
        let s = _mm512_set1_ps(iscale);
        let cap = _mm512_set1_epi32(127);
        for (g, v) in v.iter().enumerate() {
            // Round half to even (the default MXCSR mode), as ggml's `nearest_int`.
            let q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(*v, s)), cap);
            ob.bsums[g] = _mm512_reduce_add_epi32(q) as i16;
            let dst: &mut [i8; 16] = (&mut ob.qs[16 * g..16 * g + 16]).try_into().unwrap();
            // SAFETY: `dst` is 16 writable bytes; `storeu` needs no alignment.
            unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm512_cvtsepi32_epi8(q)) };
        }
        ob.d = 1.0 / iscale;
    }
}
