//! Q4_K · Q8_K with AVX-512 (BW), one row per pass (as the AVX2
//! kernel: the format shares little per-block work between rows).
//!
//! As the AVX2 kernel, 128 values per step: one 64-byte load of `qs` holds
//! the nibbles of four groups of 32 (low nibbles: groups 4h and 4h+2, high
//! nibbles: 4h+1 and 4h+3), the activations are rearranged once per block
//! to meet them, and each group's scale multiplies its pair sums with
//! `vpmaddwd` (a VNNI `vpdpbusd` would still need that multiply, so there is
//! no VNNI build).

use super::avx2::{f16_to_f32, k4_scales_mins, load8, load_i16x16};
use super::avx512::*;
use crate::q4_k::BlockQ4K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// 64 bytes at `q[off..off + 64]`, unaligned.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn load64_at(q: &[u8; 128], off: usize) -> __m512i {
    let s: &[u8; 64] = q[off..off + 64].try_into().unwrap();
    // SAFETY: `s` is 64 readable bytes; `loadu` needs no alignment.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

/// A `vpermw` index putting i16 lane `a` in lanes 0..16 and `b` in 16..32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn pick2(a: i16, b: i16) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(_mm256_set1_epi16(a)), _mm256_set1_epi16(b))
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ4K]; R], a: &[BlockQ8K]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let m4 = _mm512_set1_epi8(0x0f);
    let pick = [[pick2(0, 2), pick2(1, 3)], [pick2(4, 6), pick2(5, 7)]];
    let mut acc = [_mm512_setzero_ps(); R];
    let mut acc_m = [_mm_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let bs = load_i16x16(&ab.bsums);
        // Sums of each group of 32 activations, groups 0..8 in order.
        let bsums32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256::<1>(bs));
        // Activations for half h: (groups 4h, 4h+2) and (4h+1, 4h+3).
        let act: [[__m512i; 2]; 2] = core::array::from_fn(|h| {
            let at = |g: usize| load32_at(&ab.qs, 128 * h + 32 * g);
            [join256(at(0), at(2)), join256(at(1), at(3))]
        });
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_block(wb);
            let d = ab.d * f16_to_f32(wb.d);
            let dmin = ab.d * f16_to_f32(wb.dmin);
            let (sc, mn) = k4_scales_mins(&wb.scales);
            let prod = _mm_madd_epi16(_mm_cvtepu8_epi16(load8(mn)), bsums32);
            acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[r]);
            let scales = _mm512_castsi128_si512(_mm_cvtepu8_epi16(load8(sc)));
            let mut sumi = _mm512_setzero_si512();
            for h in 0..2 {
                let q = load64_at(&wb.qs, 64 * h);
                let lo = _mm512_and_si512(q, m4);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(q), m4);
                let p_lo = _mm512_madd_epi16(
                    _mm512_maddubs_epi16(lo, act[h][0]),
                    _mm512_permutexvar_epi16(pick[h][0], scales),
                );
                let p_hi = _mm512_madd_epi16(
                    _mm512_maddubs_epi16(hi, act[h][1]),
                    _mm512_permutexvar_epi16(pick[h][1], scales),
                );
                sumi = _mm512_add_epi32(sumi, _mm512_add_epi32(p_lo, p_hi));
            }
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc[r]);
        }
    }
    let mut out = [0.0; R];
    for r in 0..R {
        let m = acc_m[r];
        let m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[r] = hsum(acc[r]) - _mm_cvtss_f32(m);
    }
    out
}

/// Q4_K weights · Q8_K activations.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL, AVX2, FMA and F16C. `w` and `a`
/// hold the same number of blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_avx512(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    dot_rows([w], a)[0]
}
