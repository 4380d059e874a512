//! Q3_K · Q8_K with AVX2.
//!
//! The 3-bit values are taken unsigned (0..=7: two bits from `qs`, the high
//! bit from `hmask`) so one `maddubs` does the products; their `-4` offset is
//! `4 * sum_g(sc_g * bsum_g)`, one multiply-add per block.
//!
//! `gemv` takes one row per pass: this format shares little per-block work
//! between rows, and on wide rows four rows per pass (four memory streams)
//! measured well below one (Q4_K at 2048×640: ~50% against ~90% of the
//! plain-read bandwidth).

use super::avx2::*;
use crate::q3_k::BlockQ3K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// The 16 signed 6-bit scales (`-32..=31`) of a Q3_K block, unpacked from 12 bytes.
#[inline]
fn q3_scales(s: &[u8; 12]) -> [u8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let w = |k: usize| u32::from_le_bytes([s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]]);
    let (a0, a1, t) = (w(0), w(1), w(2));
    let words = [
        (a0 & KMASK2) | ((t & KMASK1) << 4),
        (a1 & KMASK2) | (((t >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((t >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((t >> 6) & KMASK1) << 4),
    ];
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(words) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ3K]; R], a: &[BlockQ8K]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let m3 = _mm256_set1_epi8(3);
    let one = _mm256_set1_epi8(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let bsums = load_i16x16(&ab.bsums);
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_block(wb);
            let d = ab.d * f16_to_f32(wb.d);
            let raw = q3_scales(&wb.scales);
            let sc8 = _mm_sub_epi8(load16(&raw), _mm_set1_epi8(32));
            let sc16 = _mm256_cvtepi8_epi16(sc8);
            // 4 * sum_g(sc_g * bsum_g), to subtract.
            let mut sumi =
                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<2>(_mm256_madd_epi16(sc16, bsums)));
            // Bit 4h + k of hmask[l] is the high bit of value 128h + 32k + l.
            let mut hm = load32(&wb.hmask);
            for h in 0..2 {
                let sc = if h == 0 {
                    _mm256_permute2x128_si256::<0x00>(sc16, sc16)
                } else {
                    _mm256_permute2x128_si256::<0x11>(sc16, sc16)
                };
                let mut bits = load32_at(&wb.qs, 32 * h);
                for k in 0..4 {
                    let hi = _mm256_slli_epi16::<2>(_mm256_and_si256(hm, one));
                    let q = _mm256_or_si256(_mm256_and_si256(bits, m3), hi);
                    bits = _mm256_srli_epi16::<2>(bits);
                    hm = _mm256_srli_epi16::<1>(hm);
                    let p = _mm256_maddubs_epi16(q, load32_at(&ab.qs, 128 * h + 32 * k));
                    let p = _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc, i16_pick(2 * k, 2 * k + 1)));
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[r]);
        }
    }
    hsum_rows(acc)
}

/// Q3_K weights · Q8_K activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q3_k_q8_k_avx2(w: &[BlockQ3K], a: &[BlockQ8K]) -> f32 {
    dot_rows([w], a)[0]
}
