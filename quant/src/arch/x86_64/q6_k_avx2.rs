//! Q6_K · Q8_K with AVX2.
//!
//! In ggml's x86 float order (the same integer lanes as llama.cpp's AVX2
//! `ggml_vec_dot_q6_K_q8_K`: the unsigned 6-bit values (0..=63) times the
//! activations per pair with `maddubs`, times the group's scale, summed per
//! lane; then lane `l` loses `32 * (bsums[2l] * sc[2l] + bsums[2l+1] *
//! sc[2l+1])`, ggml's `q8sclsub`; one `fma(d, sum, acc)` per block; ggml's
//! `hsum_float_8`), so results are bit-identical to llama.cpp's. (Older
//! ggml took the -32 off each pair, which spreads the same total over the
//! lanes differently: checked against llama.cpp 0c1e570's tensors.)
//!
//! `gemv` takes one row per pass: this format shares little per-block work
//! between rows, and on wide rows four rows per pass (four memory streams)
//! measured well below one (Q4_K at 2048×640: ~50% against ~90% of the
//! plain-read bandwidth).

use super::avx2::*;
use crate::q6_k::BlockQ6K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ6K]; R], a: &[BlockQ8K]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_block(wb);
            let d = ab.d * f16_to_f32(wb.d);
            let sc16 = _mm256_cvtepi8_epi16(load16(&wb.scales));
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                // Scales of groups 8h..8h+8 as i16, in both 128-bit halves.
                let sc = if h == 0 {
                    _mm256_permute2x128_si256::<0x00>(sc16, sc16)
                } else {
                    _mm256_permute2x128_si256::<0x11>(sc16, sc16)
                };
                let ql0 = load32_at(&wb.ql, 64 * h);
                let ql1 = load32_at(&wb.ql, 64 * h + 32);
                let qh = load32_at(&wb.qh, 32 * h);
                let q = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql0, m4),
                        _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(0x03))),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, m4),
                        _mm256_slli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c))),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                        _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                        _mm256_srli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0xc0u8 as i8))),
                    ),
                ];
                for (k, q) in q.into_iter().enumerate() {
                    let qa = load32_at(&ab.qs, 128 * h + 32 * k);
                    // |q * a pairs| <= 63 * 128 * 2: exact in i16.
                    let p = _mm256_maddubs_epi16(q, qa);
                    let p = _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc, i16_pick(2 * k, 2 * k + 1)));
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            // ggml's q8sclsub: 32 * (bsums · scales), pairs of groups per lane.
            let sub = _mm256_slli_epi32::<5>(_mm256_madd_epi16(load_i16x16(&ab.bsums), sc16));
            let sumi = _mm256_sub_epi32(sumi, sub);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[r]);
        }
    }
    hsum_rows(acc)
}

/// Q6_K weights · Q8_K activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q6_k_q8_k_avx2(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    dot_rows([w], a)[0]
}

/// [`crate::q6_k::gemm_tiled_order`] compiled for AVX2 (the same statements,
/// auto-vectorized; bit-identical, `tests/gemm.rs`).
///
/// # Safety
/// The CPU must support AVX2 and FMA; the slices must satisfy
/// `gemm_tiled_order`'s conditions (it panics otherwise).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm_tiled_order_avx2(w: &[BlockQ6K], a: &[BlockQ8K], nb: usize, out: &mut [f32], out_stride: usize) {
    crate::q6_k::gemm_tiled_order_body(w, a, nb, out, out_stride);
}
