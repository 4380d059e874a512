//! Q5_0 · Q8_0 with AVX2, in ggml's x86 float order.
//!
//! As Q4_0 (one vector per block in ggml's lane layout, `fma(d_w*d_a, sum_l,
//! acc_l)` per block, ggml's `hsum_float_8`: bit-identical to llama.cpp's
//! AVX2 `ggml_vec_dot_q5_0_q8_0`, and to its tinyBLAS prompt path, whose
//! per-output order is the same), with the fifth bits spread from `qh` to
//! bytes: the values (0..=31) multiply the activations with `maddubs` and
//! the `-16` offset is `16 * sum(a)` per pair of values. Four rows share each
//! activation block, its offsets and one conversion of their scales; in
//! [`gemm_q5_0_q8_0_avx2`] (prompt batches) each unpacked weight block also
//! serves two activation rows.

use super::avx2::*;
use crate::q5_0::BlockQ5_0;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

/// Scale `d` of block `i` of each row (a plain loop, see [`trim`]).
#[inline(always)]
fn scales<const R: usize>(w: &[&[BlockQ5_0]; R], i: usize) -> [half::f16; R] {
    let mut out = [half::f16::ZERO; R];
    for r in 0..R {
        out[r] = w[r][i].d;
    }
    out
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = trim(w, n);
    let ones = _mm256_set1_epi16(1);
    let sixteen = _mm256_set1_epi8(16);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // |pair sums| <= 16*127*2, and 31*127*2 below: the i16 difference is exact.
        let off = _mm256_maddubs_epi16(sixteen, qa);
        let d = _mm256_mul_ps(f16_lanes(scales(&w, i)), _mm256_set1_ps(f16_to_f32(ab.d)));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa), off);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(lane(d, r), p, acc[r]);
        }
    }
    hsum_rows(acc)
}

/// Q5_0 weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_0_q8_0_avx2(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    dot_rows([w], a)[0]
}

rows4_gemv!(
    /// Q5_0 matrix · Q8_0 activation row: `out.len()` rows of `row_bytes` bytes,
    /// four rows per pass over the activation (the rest singly).
    gemv_q5_0_q8_0_avx2,
    BlockQ5_0,
    BlockQ8_0
);

/// [`dot_rows`] for two activation rows at once: `out[c][r]` is
/// bit-identical to `dot_rows(w, a[c])[r]` (same lane sums, same scale
/// products `d_w * d_a`, same FMA chains and reduction); the weight values
/// are unpacked once for both.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows_pair<const R: usize>(w: [&[BlockQ5_0]; R], a: [&[BlockQ8_0]; 2]) -> [[f32; R]; 2] {
    const { assert!(R <= 4) };
    let n = a[0].len();
    let (a0, a1) = (&a[0][..n], &a[1][..n]);
    let w = trim(w, n);
    let ones = _mm256_set1_epi16(1);
    let sixteen = _mm256_set1_epi8(16);
    let mut acc0 = [_mm256_setzero_ps(); R];
    let mut acc1 = [_mm256_setzero_ps(); R];
    for i in 0..n {
        let (qa0, qa1) = (load32(&a0[i].qs), load32(&a1[i].qs));
        let (off0, off1) = (_mm256_maddubs_epi16(sixteen, qa0), _mm256_maddubs_epi16(sixteen, qa1));
        let dw = f16_lanes(scales(&w, i));
        let d0 = _mm256_mul_ps(dw, _mm256_set1_ps(f16_to_f32(a0[i].d)));
        let d1 = _mm256_mul_ps(dw, _mm256_set1_ps(f16_to_f32(a1[i].d)));
        for r in 0..R {
            let wb = &w[r][i];
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            let p0 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa0), off0);
            acc0[r] = _mm256_fmadd_ps(lane(d0, r), _mm256_cvtepi32_ps(_mm256_madd_epi16(p0, ones)), acc0[r]);
            let p1 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa1), off1);
            acc1[r] = _mm256_fmadd_ps(lane(d1, r), _mm256_cvtepi32_ps(_mm256_madd_epi16(p1, ones)), acc1[r]);
        }
    }
    [hsum_rows(acc0), hsum_rows(acc1)]
}

pairs_gemm!(
    /// Q5_0 matrix · several Q8_0 activation rows, activation rows in pairs
    /// and weight rows in fours ([`dot_rows_pair`]), each weight block
    /// unpacked once per pair: [`gemm_q5_0_q8_0_avx2`]'s path for rows too
    /// long for its unpacked tile, and for the last `rows % 4` rows.
    gemm_q5_0_q8_0_pairs_avx2,
    BlockQ5_0,
    BlockQ8_0,
    gemv_q5_0_q8_0_avx2
);

/// Blocks per row up to which [`gemm_q5_0_q8_0_avx2`] unpacks four weight
/// rows once for the whole batch (4 × 64 × 32 bytes of values on the stack;
/// 64 blocks = 2048 columns).
const TILE_BLOCKS: usize = 64;

/// Four weight rows, unpacked: the values (0..=31) of block `b` of row `r`
/// in `q[b][r]`, and the rows' scales of block `b` as f32 lanes 0..4 of `d[b]`.
struct Tile {
    q: [[__m256i; 4]; TILE_BLOCKS],
    d: [__m256; TILE_BLOCKS],
}

/// Unpacks rows `w` (each `n <= TILE_BLOCKS` blocks) into `t`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack4(w: [&[BlockQ5_0]; 4], n: usize, t: &mut Tile) {
    let w = trim(w, n);
    for b in 0..n {
        for (q, row) in t.q[b].iter_mut().zip(w) {
            let wb = &row[b];
            *q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
        }
        t.d[b] = f16_lanes(scales(&w, b));
    }
}

/// The four rows of `t` times `C` activation rows: `out[c][r]` is
/// bit-identical to `dot_rows(w, a[c])[r]` (same lane sums, scale products,
/// FMA chains and reduction).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_tile<const C: usize>(t: &Tile, a: [&[BlockQ8_0]; C]) -> [[f32; 4]; C] {
    let n = a[0].len().min(TILE_BLOCKS);
    let a = trim(a, n);
    let ones = _mm256_set1_epi16(1);
    let sixteen = _mm256_set1_epi8(16);
    let mut acc = [[_mm256_setzero_ps(); 4]; C];
    for b in 0..n {
        for (acc, ac) in acc.iter_mut().zip(&a) {
            let qa = load32(&ac[b].qs);
            let off = _mm256_maddubs_epi16(sixteen, qa);
            let d = _mm256_mul_ps(t.d[b], _mm256_set1_ps(f16_to_f32(ac[b].d)));
            for (r, (acc, q)) in acc.iter_mut().zip(&t.q[b]).enumerate() {
                let p = _mm256_sub_epi16(_mm256_maddubs_epi16(*q, qa), off);
                *acc = _mm256_fmadd_ps(lane(d, r), _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), *acc);
            }
        }
    }
    let mut out = [[0.0f32; 4]; C];
    for c in 0..C {
        out[c] = hsum_rows(acc[c]);
    }
    out
}

/// Q5_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]):
/// four weight rows are unpacked once into an L1-resident tile, then every
/// activation row (two per pass) runs over the tile ([`dot_tile`]). Every
/// output equals [`gemv_q5_0_q8_0_avx2`]'s; rows of more than
/// [`TILE_BLOCKS`] blocks, and the last `rows % 4` rows, go through
/// [`gemm_q5_0_q8_0_pairs_avx2`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q5_0_q8_0_avx2(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let wb: &[BlockQ5_0] = bytemuck::cast_slice(w);
    let a: &[BlockQ8_0] = bytemuck::cast_slice(acts);
    let per_row = row_bytes / core::mem::size_of::<BlockQ5_0>();
    let per_act = act_row_bytes / core::mem::size_of::<BlockQ8_0>();
    if per_row == 0 || per_act == 0 {
        return;
    }
    let rows = wb.len() / per_row;
    let m = a.len() / per_act;
    let rows4 = if per_row <= TILE_BLOCKS && m >= 2 { rows - rows % 4 } else { 0 };
    let row = |r: usize| &wb[r * per_row..(r + 1) * per_row];
    let act = |i: usize| &a[i * per_act..(i + 1) * per_act];
    let mut t = Tile { q: [[_mm256_setzero_si256(); 4]; TILE_BLOCKS], d: [_mm256_setzero_ps(); TILE_BLOCKS] };
    for r in (0..rows4).step_by(4) {
        unpack4([row(r), row(r + 1), row(r + 2), row(r + 3)], per_row, &mut t);
        let mut i = 0;
        while i + 2 <= m {
            let v = dot_tile(&t, [act(i), act(i + 1)]);
            out[i * out_stride + r..i * out_stride + r + 4].copy_from_slice(&v[0]);
            out[(i + 1) * out_stride + r..(i + 1) * out_stride + r + 4].copy_from_slice(&v[1]);
            i += 2;
        }
        if i < m {
            let v = dot_tile(&t, [act(i)]);
            out[i * out_stride + r..i * out_stride + r + 4].copy_from_slice(&v[0]);
        }
    }
    if rows4 < rows {
        // SAFETY: same CPU; the rows from `rows4` are whole blocks, and `out`
        // from `rows4` holds `rows - rows4` values from `i * out_stride` for every `i`.
        unsafe {
            gemm_q5_0_q8_0_pairs_avx2(
                &w[rows4 * row_bytes..],
                row_bytes,
                acts,
                act_row_bytes,
                &mut out[rows4..],
                out_stride,
            )
        };
    }
}
