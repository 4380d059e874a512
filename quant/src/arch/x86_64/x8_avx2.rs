//! Q4_0 and Q4_K matrix products with AVX2 in the float order of llama.cpp's
//! **repacked** x86 kernels (ggml-cpu `repack.cpp`: `ggml_gemv_q4_0_8x8_q8_0`,
//! `ggml_gemm_q4_0_8x8_q8_0`, `ggml_gemv_q4_K_8x8_q8_K`,
//! `ggml_gemm_q4_K_8x8_q8_K`), which llama.cpp runs instead of `vec_dot` for
//! every Q4_0 / Q4_K weight whose row count is a multiple of 8 on an AVX2 or
//! AVX-512 CPU.
//!
//! Those kernels give each output (weight row `r`, activation row `i`) its
//! own f32 lane, so the float order per output is a plain chain, whatever
//! the grouping of rows:
//! - Q4_0 (gemv and gemm alike): `acc = fma(f32(isum_b), d_w * d_a, acc)`
//!   block after block from `acc = 0`, where `isum_b` is the exact integer
//!   dot product of block `b`.
//! - Q4_K, one activation row (gemv; also the `m % 4` trailing activation
//!   rows of a gemm): per super-block `acc = fma(f32(isum), d * d_a, acc)`
//!   and `acc_min = fma(f32(imin), dmin * d_a, acc_min)`, with `isum =
//!   sum_j scale_j * dot_j` and `imin = sum_j min_j * bsum_j` over the eight
//!   32-value groups; the output is `acc - acc_min`.
//! - Q4_K, activation rows four at a time (gemm): the same two chains but
//!   one step per 64 values (groups `2s` and `2s + 1`), four per super-block.
//!
//! Here eight weight rows are read straight from the GGUF layout (no
//! repacked copy): each row's integer dot products are reduced across its
//! lanes and the eight rows' sums land in one vector, lane `r` for row `r`,
//! where the f32 chain runs exactly as above.

use super::avx2::*;
use crate::q4_0::BlockQ4_0;
use crate::q4_k::BlockQ4K;
use crate::q8_0::BlockQ8_0;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// Lane sums of eight vectors: lane `r` of the result is the (exact,
/// wrapping-free for our ranges) sum of the eight i32 lanes of `p[r]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce8(p: [__m256i; 8]) -> __m256i {
    let s01 = _mm256_hadd_epi32(p[0], p[1]);
    let s23 = _mm256_hadd_epi32(p[2], p[3]);
    let s45 = _mm256_hadd_epi32(p[4], p[5]);
    let s67 = _mm256_hadd_epi32(p[6], p[7]);
    let t0 = _mm256_hadd_epi32(s01, s23);
    let t1 = _mm256_hadd_epi32(s45, s67);
    let lo = _mm256_permute2x128_si256::<0x20>(t0, t1);
    let hi = _mm256_permute2x128_si256::<0x31>(t0, t1);
    _mm256_add_epi32(lo, hi)
}

/// Stores the first `n` lanes of `v` into `out`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store_lanes(v: __m256, out: &mut [f32]) {
    let mut tmp = [0.0f32; 8];
    // SAFETY: `tmp` is 8 f32s, the size of one unaligned 256-bit store.
    unsafe { _mm256_storeu_ps(tmp.as_mut_ptr(), v) };
    let n = out.len().min(8);
    out[..n].copy_from_slice(&tmp[..n]);
}

/// Eight row slices of `per_row` blocks from `w`, starting at row `r0`; rows
/// past `rows` repeat the last row (their outputs are not stored).
#[inline(always)]
fn rows8<T>(w: &[T], per_row: usize, r0: usize, rows: usize) -> [&[T]; 8] {
    core::array::from_fn(|k| {
        let r = (r0 + k).min(rows - 1);
        &w[r * per_row..(r + 1) * per_row]
    })
}

// ---------------------------------------------------------------- Q4_0 ----

/// Eight Q4_0 rows · one Q8_0 activation row, in the repacked order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_rows8(w: [&[BlockQ4_0]; 8], a: &[BlockQ8_0]) -> __m256 {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let eight = _mm256_set1_epi8(8);
    let mut acc = _mm256_setzero_ps();
    for (b, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // 8 * (pair sums of a): the -8 offset of Q4_0, exact in i16.
        let off = _mm256_maddubs_epi16(eight, qa);
        // Per row, 16 i16 pair sums of (q - 8) * a, each |.| <= 2 * 15 * 127 + 2 * 8 * 127.
        let p: [__m256i; 8] = core::array::from_fn(|r| {
            let wb = &w[r][b];
            if b % 2 == 0 {
                prefetch_ahead(wb, PREFETCH);
            }
            _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles32(&wb.qs), qa), off)
        });
        let isum = reduce8_i16(p, ones);
        // col_scale * row_scale, as ggml's `_mm256_mul_ps(col_scale_f32, row_scale_f32)`.
        let d = _mm256_mul_ps(f16_lanes(w.map(|r| r[b].d)), _mm256_set1_ps(f16_to_f32(ab.d)));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
    }
    acc
}

/// [`reduce8`] for 16 i16 lanes per row whose sums of any four lanes fit in
/// i16 (Q4_0's pair sums: 4 * 5842 < 32768): two `hadd_epi16` levels, then
/// one `madd` per four rows. Lane `r` of the result is the exact sum of
/// `p[r]`'s lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce8_i16(p: [__m256i; 8], ones: __m256i) -> __m256i {
    // Per 128-bit half: rows 0..4, two i16 each (sums of four lanes).
    let h03 = _mm256_hadd_epi16(_mm256_hadd_epi16(p[0], p[1]), _mm256_hadd_epi16(p[2], p[3]));
    let h47 = _mm256_hadd_epi16(_mm256_hadd_epi16(p[4], p[5]), _mm256_hadd_epi16(p[6], p[7]));
    // i32 lanes: rows 0..4 (4..8) of each half.
    let m03 = _mm256_madd_epi16(h03, ones);
    let m47 = _mm256_madd_epi16(h47, ones);
    let lo = _mm256_permute2x128_si256::<0x20>(m03, m47);
    let hi = _mm256_permute2x128_si256::<0x31>(m03, m47);
    _mm256_add_epi32(lo, hi)
}

/// Q4_0 matrix · Q8_0 activation row in llama.cpp's repacked order (eight
/// rows per pass; a last group of fewer rows is computed the same way).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q4_0_q8_0_x8_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8_0] = bytemuck::cast_slice(a);
    let w: &[BlockQ4_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4_0>();
    let rows = out.len();
    let mut r = 0;
    while r < rows {
        let v = q4_0_rows8(rows8(w, per_row, r, rows), a);
        store_lanes(v, &mut out[r..(r + 8).min(rows)]);
        r += 8;
    }
}

/// Q4_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]):
/// the repacked gemm and gemv orders are the same for Q4_0, so each
/// activation row gets [`gemv_q4_0_q8_0_x8_avx2`]'s result.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q4_0_q8_0_x8_avx2(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    stride: usize,
) {
    let wb: &[BlockQ4_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4_0>();
    let rows = w.len() / row_bytes;
    let m = acts.len() / act_row_bytes;
    let mut r = 0;
    while r < rows {
        // Weight rows outer, activation rows inner: the eight rows stay in L1.
        let w8 = rows8(wb, per_row, r, rows);
        let end = (r + 8).min(rows);
        for i in 0..m {
            let a: &[BlockQ8_0] = bytemuck::cast_slice(&acts[i * act_row_bytes..(i + 1) * act_row_bytes]);
            let v = q4_0_rows8(w8, a);
            store_lanes(v, &mut out[i * stride + r..i * stride + end]);
        }
        r += 8;
    }
}

// ---------------------------------------------------------------- Q4_K ----

/// Eight Q4_K rows · one Q8_K activation row. `PER_64`: ggml's gemm order
/// (one f32 step per 64 values) instead of its gemv order (one per 256).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_k_rows8<const PER_64: bool>(w: [&[BlockQ4K]; 8], a: &[BlockQ8K]) -> __m256 {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = _mm256_setzero_ps();
    for (b, ab) in a.iter().enumerate() {
        let da = _mm256_set1_ps(ab.d);
        let d = _mm256_mul_ps(f16_lanes(w.map(|r| r[b].d)), da);
        let dmin = _mm256_mul_ps(f16_lanes(w.map(|r| r[b].dmin)), da);
        // Scales row by row; minimums transposed (group j: the eight rows' lanes).
        let mut sc = [_mm256_setzero_si256(); 8];
        let mut mn = [[0u8; 8]; 8];
        for r in 0..8 {
            let wb = &w[r][b];
            prefetch_ahead(wb, PREFETCH);
            prefetch_ahead(wb, PREFETCH + 64);
            prefetch_ahead(wb, PREFETCH + 128);
            let (s, m) = k4_scales_mins(&wb.scales);
            // The eight scales as i16, in both 128-bit halves.
            sc[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(load8(s)));
            for j in 0..8 {
                mn[j][r] = m[j];
            }
        }
        // sum_j min_j * (sum of the activation over group j), exact in i32.
        let min_term = |j: usize| {
            let bs = ab.bsums[2 * j] as i32 + ab.bsums[2 * j + 1] as i32;
            _mm256_mullo_epi32(_mm256_cvtepu8_epi32(load8(mn[j])), _mm256_set1_epi32(bs))
        };
        // One 64-value step of row `r`: scale_2s * dot_2s + scale_2s+1 * dot_2s+1
        // in 8 i32 lanes (|pair sums| <= 2 * 15 * 127 in i16; times a 6-bit scale in i32).
        let step = |r: usize, s: usize| {
            let q = load32_at(&w[r][b].qs, 32 * s);
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            let a_lo = load32_at(&ab.qs, 64 * s);
            let a_hi = load32_at(&ab.qs, 64 * s + 32);
            let s_lo = _mm256_shuffle_epi8(sc[r], i16_pick(2 * s, 2 * s));
            let s_hi = _mm256_shuffle_epi8(sc[r], i16_pick(2 * s + 1, 2 * s + 1));
            let plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a_lo), s_lo);
            let phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a_hi), s_hi);
            _mm256_add_epi32(plo, phi)
        };
        if PER_64 {
            for s in 0..4 {
                let isum = reduce8(core::array::from_fn(|r| step(r, s)));
                let imin = _mm256_add_epi32(min_term(2 * s), min_term(2 * s + 1));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
                acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), dmin, acc_min);
            }
        } else {
            let isum = reduce8(core::array::from_fn(|r| {
                let t01 = _mm256_add_epi32(step(r, 0), step(r, 1));
                let t23 = _mm256_add_epi32(step(r, 2), step(r, 3));
                _mm256_add_epi32(t01, t23)
            }));
            let mut imin = min_term(0);
            for j in 1..8 {
                imin = _mm256_add_epi32(imin, min_term(j));
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
            acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), dmin, acc_min);
        }
    }
    _mm256_sub_ps(acc, acc_min)
}

/// Q4_K matrix · Q8_K activation row in llama.cpp's repacked gemv order.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q4_k_q8_k_x8_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8K] = bytemuck::cast_slice(a);
    let w: &[BlockQ4K] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4K>();
    let rows = out.len();
    let mut r = 0;
    while r < rows {
        let v = q4_k_rows8::<false>(rows8(w, per_row, r, rows), a);
        store_lanes(v, &mut out[r..(r + 8).min(rows)]);
        r += 8;
    }
}

/// Q4_K matrix · several Q8_K activation rows ([`crate::kernels::GemmFn`]) in
/// llama.cpp's repacked order: the first `m - m % 4` activation rows in the
/// gemm order (one step per 64 values), the last `m % 4` in the gemv order,
/// as `forward_mul_mat_one_chunk` splits a batch. Call it with the whole
/// batch, or with groups whose sizes are multiples of four but the last.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q4_k_q8_k_x8_avx2(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    stride: usize,
) {
    let wb: &[BlockQ4K] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4K>();
    let rows = w.len() / row_bytes;
    let m = acts.len() / act_row_bytes;
    let m4 = m - m % 4;
    let mut r = 0;
    while r < rows {
        let w8 = rows8(wb, per_row, r, rows);
        let end = (r + 8).min(rows);
        for i in 0..m {
            let a: &[BlockQ8K] = bytemuck::cast_slice(&acts[i * act_row_bytes..(i + 1) * act_row_bytes]);
            let v = if i < m4 { q4_k_rows8::<true>(w8, a) } else { q4_k_rows8::<false>(w8, a) };
            store_lanes(v, &mut out[i * stride + r..i * stride + end]);
        }
        r += 8;
    }
}
