//! Q2_K · Q8_K with AVX2.
//!
//! Per 256-value block: `d * sum_g(sc_g * sum(q*a)) - dmin * sum_g(m_g * bsum_g)`
//! over 16 groups of 16, with 4-bit scales and minimums.
//!
//! `gemv` takes one row per pass: this format shares little per-block work
//! between rows, and on wide rows four rows per pass (four memory streams)
//! measured well below one (Q4_K at 2048×640: ~50% against ~90% of the
//! plain-read bandwidth).

use super::avx2::*;
use crate::q2_k::BlockQ2K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ2K]; R], a: &[BlockQ8K]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut acc_m = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let bsums = load_i16x16(&ab.bsums);
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_block(wb);
            let d = ab.d * f16_to_f32(wb.d);
            let dmin = ab.d * f16_to_f32(wb.dmin);
            let raw = load16(&wb.scales);
            let mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(raw), m4));
            let prod = _mm256_madd_epi16(mins, bsums);
            acc_m[r] = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc_m[r]);
            let sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                // Scales of groups 8h..8h+8 as i16, in both 128-bit halves.
                let sc = if h == 0 {
                    _mm256_permute2x128_si256::<0x00>(sc16, sc16)
                } else {
                    _mm256_permute2x128_si256::<0x11>(sc16, sc16)
                };
                // Value 128h + 32k + l is bits 2k..2k+2 of qs[32h + l].
                let mut bits = load32_at(&wb.qs, 32 * h);
                for k in 0..4 {
                    let q = _mm256_and_si256(bits, m3);
                    bits = _mm256_srli_epi16::<2>(bits);
                    let p = _mm256_maddubs_epi16(q, load32_at(&ab.qs, 128 * h + 32 * k));
                    let p = _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc, i16_pick(2 * k, 2 * k + 1)));
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[r]);
        }
    }
    let mut out = [0.0; R];
    for r in 0..R {
        out[r] = hsum_ps(_mm256_sub_ps(acc[r], acc_m[r]));
    }
    out
}

/// Q2_K weights · Q8_K activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q2_k_q8_k_avx2(w: &[BlockQ2K], a: &[BlockQ8K]) -> f32 {
    dot_rows([w], a)[0]
}
