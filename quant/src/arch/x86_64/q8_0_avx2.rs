//! Q8_0 with AVX2: the Q8_0 · Q8_0 dot product (one row, or two rows per pass
//! over the activation in `gemv`) and the f32 → Q8_0 activation quantizer.
//!
//! Two rows per pass measured best for Q8_0 (its per-block activation work
//! is small, and every extra row is another memory stream: four rows lost to
//! two on 576- and 2048-wide rows).

use super::avx2::*;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;
use half::f16;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ8_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let mut acc = [_mm256_setzero_ps(); R];
    // Two blocks per step, so that one conversion yields the scales of both
    // blocks of every row; each row's accumulator still takes the blocks one
    // at a time, in order, as ggml's loop does.
    for p in 0..n / 2 {
        let (a0, a1) = (&a[2 * p], &a[2 * p + 1]);
        let (qa0, qa1) = (load32(&a0.qs), load32(&a1.qs));
        let d = _mm256_mul_ps(f16_rows(w.map(|r| [r[2 * p].d, r[2 * p + 1].d])), f16x2_repeat(a0.d, a1.d));
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let p0 = _mm256_cvtepi32_ps(dot_i8(load32(&w0.qs), qa0));
            let p1 = _mm256_cvtepi32_ps(dot_i8(load32(&w1.qs), qa1));
            acc[r] = _mm256_fmadd_ps(lane(d, 2 * r), p0, acc[r]);
            acc[r] = _mm256_fmadd_ps(lane(d, 2 * r + 1), p1, acc[r]);
        }
    }
    if n % 2 == 1 {
        // The odd last block, in the same per-block step (ggml's loop has no tail).
        let (i, ab) = (n - 1, &a[n - 1]);
        let qa = load32(&ab.qs);
        let d = _mm256_mul_ps(f16_lanes(w.map(|r| r[i].d)), _mm256_set1_ps(f16_to_f32(ab.d)));
        for r in 0..R {
            let p = _mm256_cvtepi32_ps(dot_i8(load32(&w[r][i].qs), qa));
            acc[r] = _mm256_fmadd_ps(lane(d, r), p, acc[r]);
        }
    }
    hsum_rows(acc)
}

/// Q8_0 weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q8_0_q8_0_avx2(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    dot_rows([w], a)[0]
}

/// Q8_0 matrix · Q8_0 activation row: `out.len()` rows of `row_bytes` bytes,
/// two rows per pass over the activation (the rest singly), with the row
/// loop inside the AVX2 code so the kernel inlines into it.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q8_0_q8_0_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8_0] = bytemuck::cast_slice(a);
    let w: &[BlockQ8_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ8_0>();
    let row = |r: usize| &w[r * per_row..(r + 1) * per_row];
    let mut r = 0;
    while r + 2 <= out.len() {
        let v = dot_rows([row(r), row(r + 1)], a);
        out[r..r + 2].copy_from_slice(&v);
        r += 2;
    }
    if r < out.len() {
        out[r] = dot_rows([row(r)], a)[0];
    }
}

/// The largest |x| of 32 values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn amax32(v: &[__m256; 4]) -> f32 {
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let m = _mm256_max_ps(_mm256_and_ps(v[0], abs), _mm256_and_ps(v[1], abs));
    let m = _mm256_max_ps(m, _mm256_max_ps(_mm256_and_ps(v[2], abs), _mm256_and_ps(v[3], abs)));
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)))
}

/// Loads 32 f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_f32x32(x: &[f32; 32]) -> [__m256; 4] {
    // SAFETY: `x` is 32 readable f32; `loadu` needs no alignment.
    unsafe { [0, 8, 16, 24].map(|o| _mm256_loadu_ps(x.as_ptr().add(o))) }
}

/// Packs 4 × 8 i32 (each in -128..=127) into 32 i8 in lane order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn pack_i32x32(i: [__m256i; 4]) -> __m256i {
    let a = _mm256_packs_epi32(i[0], i[1]); // 0..4 8..12 | 4..8 12..16
    let b = _mm256_packs_epi32(i[2], i[3]); // 16..20 24..28 | 20..24 28..32
    let c = _mm256_packs_epi16(a, b); // 0..4 8..12 16..20 24..28 | 4..8 12..16 20..24 28..32
    _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Stores 32 i8.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn store_i8x32(out: &mut [i8; 32], v: __m256i) {
    // SAFETY: `out` is 32 writable bytes; `storeu` needs no alignment.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// One block of ggml's x86 SIMD Q8_0 rounding (`quantize_row_q8_0`, AVX2
/// code, which llama.cpp's AVX-512 builds run too): `d = amax / 127`,
/// `q = round_half_even(x * (127 / amax))`. Returns the quantized lanes and `d`.
///
/// The reference quantizer (`q8_0::quantize_ref`, the generic kernel)
/// multiplies by `1 / d` and rounds halves away from zero instead; the two
/// differ by one in a quant whose scaled value lies within a few f32 ulps of
/// a half-integer. Activations follow llama.cpp's x86 arithmetic so that
/// ember's logits, and greedy tokens, match llama.cpp's.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn quantize_block(x: &[f32; 32]) -> ([__m256i; 4], f32) {
    let v = load_f32x32(x);
    let amax = amax32(&v);
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let q = v.map(|v| {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(v, id));
        _mm256_cvtps_epi32(r) // exact: `r` is integer-valued
    });
    (q, d)
}

/// f32 → Q8_0 with ggml's x86 SIMD arithmetic ([`quantize_block`]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `x.len() == 32 * out.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_0_avx2(x: &[f32], out: &mut [BlockQ8_0]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.iter_mut()) {
        let (q, d) = quantize_block(xb.try_into().unwrap());
        ob.d = f16::from_f32(d);
        store_i8x32(&mut ob.qs, pack_i32x32(q));
    }
}

// ---------------------------------------------------------------- gemm ----

/// Q8_0 weight rows per pass of [`gemm_q8_0_q8_0_avx2`].
const GEMM_ROWS: usize = 2;
/// Q8_0 activation rows per pass of [`gemm_q8_0_q8_0_avx2`].
const GEMM_ACTS: usize = 4;

/// `R` Q8_0 weight rows · `M` Q8_0 activation rows, `R * M` outputs
/// (`[i][r]`). Each weight block is loaded (and its `abs` taken) once for the
/// `M` activation rows, each activation block once for the `R` weight rows.
/// Every output runs [`vec_dot_q8_0_q8_0_avx2`]'s chain: its own 8-lane
/// accumulator, `acc = fma(d_w * d_a, f32(dot_i8(w, a)), acc)` block after
/// block (`dot_i8` with the weight as the sign source, as there), then the
/// same `hsum_ps`; so the outputs are bit-identical to the gemv's.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_tile<const R: usize, const M: usize>(w: [&[BlockQ8_0]; R], a: [&[BlockQ8_0]; M]) -> [[f32; R]; M] {
    let n = a.first().map_or(0, |a| a.len());
    let mut wr = w;
    for r in 0..R {
        wr[r] = &w[r][..n];
    }
    let mut ar = a;
    for i in 0..M {
        ar[i] = &a[i][..n];
    }
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); R]; M];
    for b in 0..n {
        let mut wq = [_mm256_setzero_si256(); R];
        let mut wabs = [_mm256_setzero_si256(); R];
        let mut ws = [f16::ZERO; R];
        for r in 0..R {
            let wb = &wr[r][b];
            prefetch_ahead(wb, PREFETCH);
            wq[r] = load32(&wb.qs);
            wabs[r] = _mm256_sign_epi8(wq[r], wq[r]);
            ws[r] = wb.d;
        }
        let dw = f16_lanes(ws);
        for i in 0..M {
            let ab = &ar[i][b];
            let qa = load32(&ab.qs);
            // lane r: f32(d_w[r]) * f32(d_a), the product vec_dot rounds once
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(f16_to_f32(ab.d)));
            for r in 0..R {
                let sy = _mm256_sign_epi8(qa, wq[r]);
                let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(wabs[r], sy), ones));
                acc[i][r] = _mm256_fmadd_ps(lane(d, r), p, acc[i][r]);
            }
        }
    }
    let mut out = [[0.0f32; R]; M];
    for i in 0..M {
        out[i] = hsum_rows(acc[i]);
    }
    out
}

/// All weight rows · `M` activation rows starting at `i0`: [`GEMM_ROWS`]
/// weight rows per pass, the rest one at a time.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn gemm_acts<const M: usize>(
    w: &[BlockQ8_0],
    per_row: usize,
    a: &[BlockQ8_0],
    per_act: usize,
    i0: usize,
    out: &mut [f32],
    stride: usize,
) {
    let rows = w.len() / per_row;
    let row = |r: usize| &w[r * per_row..(r + 1) * per_row];
    let mut acts: [&[BlockQ8_0]; M] = [&[]; M];
    for (k, x) in acts.iter_mut().enumerate() {
        *x = &a[(i0 + k) * per_act..(i0 + k + 1) * per_act];
    }
    let mut r = 0;
    while r + GEMM_ROWS <= rows {
        let mut wr: [&[BlockQ8_0]; GEMM_ROWS] = [&[]; GEMM_ROWS];
        for (k, x) in wr.iter_mut().enumerate() {
            *x = row(r + k);
        }
        let v = dot_tile(wr, acts);
        for (k, vk) in v.iter().enumerate() {
            let o = (i0 + k) * stride + r;
            out[o..o + GEMM_ROWS].copy_from_slice(vk);
        }
        r += GEMM_ROWS;
    }
    while r < rows {
        let v = dot_tile([row(r)], acts);
        for (k, vk) in v.iter().enumerate() {
            out[(i0 + k) * stride + r] = vk[0];
        }
        r += 1;
    }
}

/// Q8_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]):
/// tiles of [`GEMM_ROWS`] weight rows × [`GEMM_ACTS`] activation rows
/// ([`dot_tile`]), smaller tiles at the edges. Every output equals
/// [`gemv_q8_0_q8_0_avx2`]'s (and [`vec_dot_q8_0_q8_0_avx2`]'s) bit for bit.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q8_0_q8_0_avx2(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    stride: usize,
) {
    let w: &[BlockQ8_0] = bytemuck::cast_slice(w);
    let a: &[BlockQ8_0] = bytemuck::cast_slice(acts);
    let per_row = row_bytes / core::mem::size_of::<BlockQ8_0>();
    let per_act = act_row_bytes / core::mem::size_of::<BlockQ8_0>();
    if per_row == 0 || per_act == 0 {
        return;
    }
    let m = a.len() / per_act;
    let mut i = 0;
    while i + GEMM_ACTS <= m {
        gemm_acts::<GEMM_ACTS>(w, per_row, a, per_act, i, out, stride);
        i += GEMM_ACTS;
    }
    match m - i {
        1 => gemm_acts::<1>(w, per_row, a, per_act, i, out, stride),
        2 => gemm_acts::<2>(w, per_row, a, per_act, i, out, stride),
        3 => gemm_acts::<3>(w, per_row, a, per_act, i, out, stride),
        _ => {}
    }
}
