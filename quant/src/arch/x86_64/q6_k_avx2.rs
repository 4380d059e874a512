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
//! The gemv ([`gemv_q6_k_q8_k_avx2`]) takes four rows per pass, one from
//! each of the four [`RowStreams`](crate::arch::streams::RowStreams) parts of the matrix (four distant
//! streams interleaved block by block), each prefetched [`STREAM_PREFETCH`]
//! bytes ahead; each row's arithmetic is [`vec_dot_q6_k_q8_k_avx2`]'s (the
//! rows' lanes never mix). It was the default gemv, `vec_dot` row after row
//! in address order with a 4 KiB prefetch. 2048×640 (Gemma 3 ffn down)
//! from DRAM (`kernel-table`, medians of 5–8 interleaved runs): two threads
//! 15.7 → 17.9 GB/s, where one row per pass in `RowStreams` order (whole
//! 1680-byte rows per stream visit) measured 15.4–17.4 → 14.0–15.8 in four
//! runs; one thread 11.6 → 12.3 (one row per pass: 12.4); L3-hot
//! 16.8–18.8 → 15.4–15.9 (two runs). Four ADJACENT rows per pass measured
//! well below one row for Q4_K (~50% against ~90% of the plain read).

use super::avx2::*;
use crate::arch::streams::stream_passes;
use crate::q6_k::BlockQ6K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// The unsigned 6-bit values (0..=63) of values `128h..128h + 128` of block
/// `wb`, 32 per vector in value order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack_half(wb: &BlockQ6K, h: usize) -> [__m256i; 4] {
    let m4 = _mm256_set1_epi8(0x0f);
    let ql0 = load32_at(&wb.ql, 64 * h);
    let ql1 = load32_at(&wb.ql, 64 * h + 32);
    let qh = load32_at(&wb.qh, 32 * h);
    [
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
    ]
}

/// The scales of groups `8h..8h + 8` of a block, as i16 in both 128-bit
/// halves, from all sixteen as i16 (`sc16`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales_half(sc16: __m256i, h: usize) -> __m256i {
    if h == 0 {
        _mm256_permute2x128_si256::<0x00>(sc16, sc16)
    } else {
        _mm256_permute2x128_si256::<0x11>(sc16, sc16)
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize, const PF: usize>(w: [&[BlockQ6K]; R], a: &[BlockQ8K]) -> [f32; R] {
    let n = a.len();
    let w = trim(w, n);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_block_ahead(wb, PF);
            let d = ab.d * f16_to_f32(wb.d);
            let sc16 = _mm256_cvtepi8_epi16(load16(&wb.scales));
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                // Scales of groups 8h..8h+8 as i16, in both 128-bit halves.
                let sc = scales_half(sc16, h);
                let q = unpack_half(wb, h);
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
    dot_rows::<1, PREFETCH>([w], a)[0]
}

/// Q6_K matrix · Q8_K activation row: `out.len()` rows of `row_bytes` bytes,
/// four rows per pass taken in [`RowStreams`](crate::arch::streams::RowStreams) order (one row from each of
/// four distant parts of the matrix; the left-over rows singly), each row
/// exactly [`vec_dot_q6_k_q8_k_avx2`]'s arithmetic, its blocks prefetched
/// [`STREAM_PREFETCH`] bytes ahead.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q6_k_q8_k_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8K] = bytemuck::cast_slice(a);
    let w: &[BlockQ6K] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ6K>();
    stream_passes::<_, 4>(
        w,
        per_row,
        out,
        |rows| dot_rows::<4, STREAM_PREFETCH>(rows, a),
        |row| dot_rows::<1, STREAM_PREFETCH>(row, a),
    );
}

/// [`crate::q6_k::gemm_tiled_order`] with AVX2: the same integer sum per
/// 256-value block (exact: the unsigned values times the activations with
/// `maddubs`, times the group scales with `madd`, less `32 * bsums · scales`)
/// and the same f32 step `acc = fma(d_w * f32(isum), d_a, acc)`, so the same
/// bits (`tests/gemm.rs`). Each weight block is unpacked once for up to
/// [`TILE`] activation rows.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the slices must satisfy
/// `gemm_tiled_order`'s conditions (it panics otherwise).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn gemm_tiled_order_avx2(w: &[BlockQ6K], a: &[BlockQ8K], nb: usize, out: &mut [f32], out_stride: usize) {
    if nb == 0 {
        return;
    }
    assert!(w.len().is_multiple_of(nb) && a.len().is_multiple_of(nb), "q6_k::gemm_tiled_order: partial rows");
    let m = a.len() / nb;
    let mut acc = [0.0f32; TILE];
    for (r, wr) in w.chunks_exact(nb).enumerate() {
        for j0 in (0..m).step_by(TILE) {
            let mj = (m - j0).min(TILE);
            acc[..mj].fill(0.0);
            for (b, x) in wr.iter().enumerate() {
                let d = f16_to_f32(x.d);
                let sc16 = _mm256_cvtepi8_epi16(load16(&x.scales));
                let mut q = [_mm256_setzero_si256(); 8];
                let mut sc = [_mm256_setzero_si256(); 8];
                for h in 0..2 {
                    let sch = scales_half(sc16, h);
                    for (k, v) in unpack_half(x, h).into_iter().enumerate() {
                        q[4 * h + k] = v;
                        sc[4 * h + k] = _mm256_shuffle_epi8(sch, i16_pick(2 * k, 2 * k + 1));
                    }
                }
                for (j, acc) in acc[..mj].iter_mut().enumerate() {
                    let y = &a[(j0 + j) * nb + b];
                    let mut sumi = _mm256_setzero_si256();
                    for k in 0..8 {
                        // |q * a pairs| <= 63 * 128 * 2: exact in i16.
                        let p = _mm256_maddubs_epi16(q[k], load32_at(&y.qs, 32 * k));
                        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sc[k]));
                    }
                    let sub = _mm256_slli_epi32::<5>(_mm256_madd_epi16(load_i16x16(&y.bsums), sc16));
                    let isum = hsum_epi32(_mm256_sub_epi32(sumi, sub));
                    // One fused multiply-add (`f32::mul_add` is not in `core`: the no_std build).
                    let t = _mm_fmadd_ss(_mm_set_ss(d * isum as f32), _mm_set_ss(y.d), _mm_set_ss(*acc));
                    *acc = _mm_cvtss_f32(t);
                }
            }
            for (j, &v) in acc[..mj].iter().enumerate() {
                out[(j0 + j) * out_stride + r] = v;
            }
        }
    }
}

/// Activation rows per pass of [`gemm_tiled_order_avx2`] (each unpacked
/// weight block serves them all; their blocks stay in L2).
const TILE: usize = 32;
