//! Q5_K · Q8_K with AVX2:
//! Q4_K's scheme with the fifth bit of each value taken from `qh`.
//!
//! `gemv` takes one row per pass: this format shares little per-block work
//! between rows, and on wide rows four rows per pass (four memory streams)
//! measured well below one (Q4_K at 2048×640: ~50% against ~90% of the
//! plain-read bandwidth).

use super::avx2::*;
use crate::q5_k::BlockQ5K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5K]; R], a: &[BlockQ8K]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let m4 = _mm256_set1_epi8(0x0f);
    let b0 = _mm256_set1_epi8(1);
    let b1 = _mm256_set1_epi8(2);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut acc_m = [_mm_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let bs = load_i16x16(&ab.bsums);
        let bsums32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256::<1>(bs));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_block(wb);
            let d = ab.d * f16_to_f32(wb.d);
            let dmin = ab.d * f16_to_f32(wb.dmin);
            let (sc, mn) = k4_scales_mins(&wb.scales);
            let prod = _mm_madd_epi16(_mm_cvtepu8_epi16(load8(mn)), bsums32);
            acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[r]);
            let scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(load8(sc)));
            // Bit 2j of qh[l] is the fifth bit of value 64j + l, bit 2j + 1 of value 64j + 32 + l.
            let mut hm = load32(&wb.qh);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..4 {
                let q4 = load32_at(&wb.qs, 32 * j);
                let lo = _mm256_or_si256(_mm256_and_si256(q4, m4), _mm256_slli_epi16::<4>(_mm256_and_si256(hm, b0)));
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4);
                let hi = _mm256_or_si256(hi, _mm256_slli_epi16::<3>(_mm256_and_si256(hm, b1)));
                hm = _mm256_srli_epi16::<2>(hm);
                let p_lo = _mm256_maddubs_epi16(lo, load32_at(&ab.qs, 64 * j));
                let p_hi = _mm256_maddubs_epi16(hi, load32_at(&ab.qs, 64 * j + 32));
                let p_lo = _mm256_madd_epi16(p_lo, _mm256_shuffle_epi8(scales, i16_pick(2 * j, 2 * j)));
                let p_hi = _mm256_madd_epi16(p_hi, _mm256_shuffle_epi8(scales, i16_pick(2 * j + 1, 2 * j + 1)));
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_lo, p_hi));
            }
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[r]);
        }
    }
    let mut out = [0.0; R];
    for r in 0..R {
        let m = acc_m[r];
        let m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[r] = hsum_ps(acc[r]) - _mm_cvtss_f32(m);
    }
    out
}

/// Q5_K weights · Q8_K activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_k_q8_k_avx2(w: &[BlockQ5K], a: &[BlockQ8K]) -> f32 {
    dot_rows([w], a)[0]
}
