//! Q6_K · Q8_K with AVX-512 (BW), one row per pass (as the AVX2
//! kernel: the format shares little per-block work between rows).
//!
//! As the AVX2 kernel, with both 128-value halves of a block in one vector:
//! the 6-bit values (0..=63) multiply the activations with `vpmaddubsw`,
//! each group of 16's scale is applied with `vpmaddwd`, and the `-32` offset
//! is `32 * sum_g(sc_g * bsum_g)`, one multiply-add per block.

use super::avx2::{f16_to_f32, load_i16x16};
use super::avx512::*;
use crate::q6_k::BlockQ6K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// A `vpermw` index putting i16 lane `g[k]` in the 8 lanes of 128-bit quarter `k`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn pick4(g: [i16; 4]) -> __m512i {
    let lo = _mm256_set_m128i(_mm_set1_epi16(g[1]), _mm_set1_epi16(g[0]));
    let hi = _mm256_set_m128i(_mm_set1_epi16(g[3]), _mm_set1_epi16(g[2]));
    join256(lo, hi)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ6K]; R], a: &[BlockQ8K]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let m4 = _mm512_set1_epi8(0x0f);
    // Vector k holds values 32k..32k+32 (groups 2k, 2k+1) and 128+32k.. (groups 8+2k, 9+2k).
    let pick: [__m512i; 4] = core::array::from_fn(|k| {
        let k = 2 * k as i16;
        pick4([k, k + 1, k + 8, k + 9])
    });
    let mut acc = [_mm512_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let bsums = load_i16x16(&ab.bsums);
        let act: [__m512i; 4] =
            core::array::from_fn(|k| join256(load32_at(&ab.qs, 32 * k), load32_at(&ab.qs, 128 + 32 * k)));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_block(wb);
            let d = ab.d * f16_to_f32(wb.d);
            let sc16 = _mm256_cvtepi8_epi16(load16(&wb.scales));
            // 32 * sum_g(sc_g * bsum_g), to subtract.
            let corr = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc16, bsums));
            let scales = _mm512_castsi256_si512(sc16);
            let ql0 = join256(load32_at(&wb.ql, 0), load32_at(&wb.ql, 64));
            let ql1 = join256(load32_at(&wb.ql, 32), load32_at(&wb.ql, 96));
            let qh = join256(load32_at(&wb.qh, 0), load32_at(&wb.qh, 32));
            let q = [
                _mm512_or_si512(
                    _mm512_and_si512(ql0, m4),
                    _mm512_slli_epi16::<4>(_mm512_and_si512(qh, _mm512_set1_epi8(0x03))),
                ),
                _mm512_or_si512(
                    _mm512_and_si512(ql1, m4),
                    _mm512_slli_epi16::<2>(_mm512_and_si512(qh, _mm512_set1_epi8(0x0c))),
                ),
                _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi16::<4>(ql0), m4),
                    _mm512_and_si512(qh, _mm512_set1_epi8(0x30)),
                ),
                _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi16::<4>(ql1), m4),
                    _mm512_srli_epi16::<2>(_mm512_and_si512(qh, _mm512_set1_epi8(0xc0u8 as i8))),
                ),
            ];
            let mut sumi = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(corr));
            for k in 0..4 {
                let p = _mm512_maddubs_epi16(q[k], act[k]);
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, _mm512_permutexvar_epi16(pick[k], scales)));
            }
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc[r]);
        }
    }
    let mut out = [0.0; R];
    for r in 0..R {
        out[r] = hsum(acc[r]);
    }
    out
}

/// Q6_K weights · Q8_K activations.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL, AVX2, FMA and F16C. `w` and `a`
/// hold the same number of blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q6_k_q8_k_avx512(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    dot_rows([w], a)[0]
}
