//! Q8_0 with AVX2: the Q8_0 · Q8_0 dot product (one row, or several rows per
//! pass over the activation) and the f32 → Q8_0 activation quantizer.
//!
//! The gemv reads the rows in [`RowStreams`](crate::arch::streams::RowStreams) order (four distant parts of
//! the matrix in turn), each row prefetched [`STREAM_PREFETCH`] bytes ahead.
//! At 49152×576 from DRAM (Zen 3 VM, `kernel-table`, two sets of 4
//! interleaved runs, medians), one row per turn took it from 10.8–10.9 to
//! 14.0–15.3 GB/s on one thread and from 16.8–17.5 to 18.0–19.8 GB/s on
//! two, against rows in address order with a 4 KiB prefetch. Two adjacent
//! rows per pass (two streams 612 bytes apart) had been slower than one
//! (47–58% of a plain read against 70–84%). Re-reading the 576 activation
//! bytes per row costs nothing (they stay in L1).
//!
//! A pass now takes [`GEMV_ROWS`] = 4 rows, one from each stream, block by
//! block ([`dot_rows_pre`]): four accumulator chains overlap instead of one
//! and each activation block is loaded once for four rows. SmolLM2 Q8_0
//! tg64 -t 2 (`ember bench -r 3`, 6 alternated pairs, quiet): 82–109 →
//! 99–120 t/s, median 96 → 111 (+15%); -t 1 unchanged within the noise
//! (59–86 against 65–79). Two rows per pass: 87–108; eight (two adjacent
//! rows from each stream): 79–88, slower than one. Gemma 3 and Q4_0
//! decode: unchanged within the noise.
//!
//! The pass loop calls nothing out of line (`perf` of a Gemma 3 decode step
//! had found 4% in the `row_passes` iterator and 3% in `array::map` calls
//! and closures): in cache (`kernel-table --hot`, 1 thread, 3 alternated
//! runs) 576×1536 13.5–18.1 → 19.99–20.1 GB/s, 640×2048 12.9–18.9 →
//! 18.9–20.6; SmolLM2 Q8_0 tg64 -t 1 74–83 → 87–92 t/s, -t 2 unchanged.
//!
//! The activation's block scales are converted once per call, and each row
//! converts its weight scales eight blocks at a time (about 12 instructions
//! per block instead of 22): 1.3-1.5x in cache (1536x576, L2-hot), no change
//! measurable when the weights stream from DRAM on this shared machine.
//!
//! Those eight scales are combined in general registers ([`f16_lanes`])
//! rather than inserted word by word into a vector, and each is then
//! broadcast from memory ([`in_memory`]) rather than picked out of a
//! register: per row and eight blocks, the compiled loop lost eight
//! `vpinsrw` from memory and seven unpacks, and per block a lane shuffle,
//! all on the vector ports the dot products keep busy (the shifts and ors
//! that replace them run on the integer ALUs). The blocks past the last
//! multiple of eight go in chunks of four, two and one the same way
//! instead of one scalar conversion per block. On the Zen 4 VM, SmolLM2
//! Q8_0 tg64 -t 1 (`ember bench -r 3`, alternated): 155-160 → 165-168 t/s
//! for the general registers and the broadcasts, then 163-167 → 170-171 for
//! the short chunks (Gemma 3, whose 262k × 640 Q8_0 output is half its
//! decode step: 88-90 → 90.5-91); in cache (`kernel-table --hot`, 576×576)
//! about +15%. With no scale conversion at all (wrong results, an upper
//! bound) it ran at 168-179 t/s.

use super::avx2::*;
use super::x8_avx2::{act_rows, rows_n, store_lanes};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;
use half::f16;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_rows<const R: usize>(w: [&[BlockQ8_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
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

/// Activation blocks whose scales [`gemv_q8_0_q8_0_avx2`] converts once per
/// call (2 KiB of stack); longer rows take [`dot_rows`] per row.
pub(super) const DA_CAP: usize = 512;

/// Rows per pass of [`gemv_q8_0_q8_0_avx2`], one from each stream in turn.
pub(super) const GEMV_ROWS: usize = 4;

/// Defines a Q8_0 gemv of [`gemv_q8_0_q8_0_avx2`]'s layout for the target
/// features `$feat`, whose 32-pair integer dot product is `$dot` (it must
/// give [`dot_i8`]'s exact i32 per group of four values): the pass function
/// `$rows`, its block-chunk step `$chunk` and the gemv `$gemv`.
/// [`gemv_q8_0_q8_0_avx2`] is the AVX2 instance (`vpmaddubsw` +
/// `vpmaddwd`); `q8_0_avx512::gemv_q8_0_q8_0_vnni256` the 256-bit VNNI one
/// (`vpdpbusd`), with the same bits.
macro_rules! q8_0_gemv {
    ($feat:literal, $dot:path, $chunk:ident, $rows:ident, $gemv:ident) => {
        /// `R` Q8_0 rows · the activation `a` whose block scales are `da`
        /// (f32), each row in [`dot_rows`](super::q8_0_avx2)'s order (per
        /// block `acc = fma(d_w * d_a, f32(dot), acc)`, then `hsum_rows`),
        /// bit for bit. The rows advance together, so each activation block
        /// is loaded once for all of them and their `R` accumulator chains
        /// overlap. The blocks go in chunks of eight, the rest in one chunk
        /// each of four, two and one.
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const R: usize>(w: [&[BlockQ8_0]; R], a: &[BlockQ8_0], da: &[f32]) -> [f32; R] {
            let mut n = a.len().min(da.len());
            for r in &w {
                n = n.min(r.len());
            }
            let mut acc = [_mm256_setzero_ps(); R];
            let mut c = 0;
            while c + 8 <= n {
                $chunk::<R, 8>(&w, a, da, c, &mut acc);
                c += 8;
            }
            if c + 4 <= n {
                $chunk::<R, 4>(&w, a, da, c, &mut acc);
                c += 4;
            }
            if c + 2 <= n {
                $chunk::<R, 2>(&w, a, da, c, &mut acc);
                c += 2;
            }
            if c < n {
                $chunk::<R, 1>(&w, a, da, c, &mut acc);
            }
            super::avx2::hsum_rows(acc)
        }

        /// Blocks `c..c + K` (`K <= 8`) of the pass's rows, continuing their
        /// chains in `acc`. The `K` weight scales of each row are converted
        /// and multiplied by the activation's at once and stored, so that
        /// each block's scale is a broadcast from memory (`in_memory`).
        #[inline]
        #[target_feature(enable = $feat)]
        #[allow(clippy::needless_range_loop)]
        fn $chunk<const R: usize, const K: usize>(
            w: &[&[BlockQ8_0]; R],
            a: &[BlockQ8_0],
            da: &[f32],
            c: usize,
            acc: &mut [__m256; R],
        ) {
            use super::avx2::{f16_lanes, in_memory, load32, prefetch_ahead, STREAM_PREFETCH};
            // Plain loops rather than `array::map` here: `map` and its closure were
            // left out of line (a call per pass and per 8 blocks, 3% of a Gemma 3
            // decode step in `perf`).
            let ac: &[BlockQ8_0; K] = a[c..c + K].try_into().unwrap();
            let mut wc: [&[BlockQ8_0; K]; R] = [ac; R];
            for (x, r) in wc.iter_mut().zip(w) {
                *x = r[c..c + K].try_into().unwrap();
            }
            let mut dac = [0.0f32; 8];
            dac[..K].copy_from_slice(&da[c..c + K]);
            let mut d = [[0.0f32; 8]; R];
            for r in 0..R {
                let mut dw = [half::f16::ZERO; K];
                for (x, blk) in dw.iter_mut().zip(wc[r]) {
                    *x = blk.d;
                }
                // SAFETY: `dac` and `d[r]` are 8 f32; loadu/storeu need no alignment.
                unsafe {
                    _mm256_storeu_ps(d[r].as_mut_ptr(), _mm256_mul_ps(f16_lanes(dw), _mm256_loadu_ps(dac.as_ptr())))
                };
            }
            in_memory(&mut d);
            for k in 0..K {
                let qa = load32(&ac[k].qs);
                for r in 0..R {
                    if k % 2 == 0 {
                        prefetch_ahead(&wc[r][k], STREAM_PREFETCH);
                    }
                    let p = _mm256_cvtepi32_ps($dot(load32(&wc[r][k].qs), qa));
                    acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d[r][k]), p, acc[r]);
                }
            }
        }

        /// Q8_0 matrix · Q8_0 activation row: `out.len()` rows of `row_bytes`
        /// bytes, `GEMV_ROWS` rows per pass, one from each of the
        /// `RowStreams` in turn (each output is exactly
        /// `vec_dot_q8_0_q8_0_avx2`'s), with the row loop inside the SIMD code
        /// so the kernel inlines into it. The activation's block scales are
        /// converted once per call for rows of up to `DA_CAP` blocks; longer
        /// rows take `dot_rows` per row.
        ///
        /// # Safety
        /// The CPU must support the target features above; the buffers
        /// satisfy [`crate::kernels::GemvFn`]'s contract.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $gemv(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
            use super::q8_0_avx2::{dot_rows, DA_CAP, GEMV_ROWS};
            use crate::arch::streams::stream_passes;
            let a: &[BlockQ8_0] = bytemuck::cast_slice(a);
            let w: &[BlockQ8_0] = bytemuck::cast_slice(w);
            let per_row = row_bytes / core::mem::size_of::<BlockQ8_0>();
            if a.len() > DA_CAP {
                for (r, o) in out.iter_mut().enumerate() {
                    *o = dot_rows([&w[r * per_row..(r + 1) * per_row]], a)[0];
                }
                return;
            }
            let mut da = [0.0f32; DA_CAP];
            for (d, ab) in da.iter_mut().zip(a) {
                *d = super::avx2::f16_to_f32(ab.d);
            }
            let da = &da[..a.len()];
            stream_passes::<_, GEMV_ROWS>(w, per_row, out, |rows| $rows(rows, a, da), |row| $rows(row, a, da));
        }
    };
}
pub(super) use q8_0_gemv;

q8_0_gemv!("avx2,fma,f16c", dot_i8, chunk_rows, dot_rows_pre, gemv_q8_0_q8_0_avx2);

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

/// Activation rows per pass of [`gemm_q8_0_q8_0_avx2`].
const GEMM_ACTS: usize = 8;

/// Eight Q8_0 weight rows · up to [`GEMM_ACTS`] activation rows, each output
/// in [`vec_dot_q8_0_q8_0_avx2`]'s float order, laid out across rows: block
/// `b` of the eight rows is transposed once so that dword `p` of `t[g]` is
/// row `p`'s values `4g..4g + 4`; `dot_i8`'s i32 lane `g` (the same four
/// products, the same `maddubs` pairs, the weight as the sign source) of
/// output (row `p`, activation `i`) is then lane `p` of one vector, and its
/// 8-lane accumulator is lane `p` of `acc[i][0..8]`: `acc[i][g] = fma(d_w *
/// d_a, f32(lane), acc[i][g])` block after block, as vec_dot's lane `g`.
/// Returns, per activation row, `hsum_ps`'s sum of those eight lanes in its
/// order: `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn rows8_acts(w: [&[BlockQ8_0]; 8], acts: &[&[BlockQ8_0]]) -> [__m256; GEMM_ACTS] {
    let n = acts.first().map_or(0, |a| a.len());
    let wr = trim(w, n);
    let acts = &acts[..acts.len().min(GEMM_ACTS)];
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); 8]; GEMM_ACTS];
    for b in 0..n {
        let (t, dw) = groups8(&wr, b);
        let mut tabs = [_mm256_setzero_si256(); 8];
        for g in 0..8 {
            tabs[g] = _mm256_sign_epi8(t[g], t[g]);
        }
        for (a, acc_i) in acts.iter().zip(acc.iter_mut()) {
            let ab = &a[b];
            // lane p: f32(d_w[p]) * f32(d_a), the product vec_dot rounds once
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(f16_to_f32(ab.d)));
            for g in 0..8 {
                let q = &ab.qs[4 * g..4 * g + 4];
                let ag = _mm256_set1_epi32(i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8]));
                let sy = _mm256_sign_epi8(ag, t[g]);
                let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(tabs[g], sy), ones));
                acc_i[g] = _mm256_fmadd_ps(d, p, acc_i[g]);
            }
        }
    }
    let mut out = [_mm256_setzero_ps(); GEMM_ACTS];
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = sum_lanes8(*a);
    }
    out
}

/// Blocks per row up to which [`gemm_q8_0_q8_0_avx2`] unpacks eight weight
/// rows once for the whole batch (a [`Tile8`] of 64 × 544 bytes = 34 KiB on
/// the stack, of which a row of `n` blocks touches `n / 64`).
pub(super) const TILE_BLOCKS: usize = 64;

/// Eight weight rows, transposed: dword `p` of `w[b][g]` holds row `p`'s
/// values `4g..4g + 4` of block `b`, `aw[b][g]` their absolute values (the
/// `maddubs` operand of [`dot_i8`]), `d[b]` the rows' scales as f32, lane `p`.
struct Tile8 {
    w: [[__m256i; 8]; TILE_BLOCKS],
    aw: [[__m256i; 8]; TILE_BLOCKS],
    d: [__m256; TILE_BLOCKS],
}

/// Block `b` of eight Q8_0 rows as its eight 4-value groups across the
/// rows (dword `p` of `t[g]`: row `p`'s values `4g..4g + 4`, rows 4..8 from
/// the high halves' transposes) and the rows' scales as f32, lane `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn groups8(wr: &[&[BlockQ8_0]; 8], b: usize) -> ([__m256i; 8], __m256) {
    let mut t = [_mm256_setzero_si256(); 8];
    for h in 0..2 {
        let mut y = [_mm256_setzero_si256(); 4];
        for (k, yk) in y.iter_mut().enumerate() {
            let (lo, hi) = (&wr[k][b].qs, &wr[k + 4][b].qs);
            let lo: &[i8; 16] = lo[16 * h..16 * h + 16].try_into().unwrap();
            let hi: &[i8; 16] = hi[16 * h..16 * h + 16].try_into().unwrap();
            *yk = _mm256_set_m128i(load16(hi), load16(lo));
        }
        // z[j] dword p: row p's group 4h + j (rows 4..8 in the high half).
        t[4 * h..4 * h + 4].copy_from_slice(&transpose4_epi32(y));
    }
    let mut ws = [f16::ZERO; 8];
    for (r, x) in ws.iter_mut().enumerate() {
        *x = wr[r][b].d;
    }
    (t, f16_lanes(ws))
}

/// Transposes rows `w` (each `n <= TILE_BLOCKS` blocks) into `t` ([`groups8`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack8(w: [&[BlockQ8_0]; 8], n: usize, t: &mut Tile8) {
    let wr = trim(w, n.min(TILE_BLOCKS));
    for (b, ((tw, aw), d)) in t.w.iter_mut().zip(t.aw.iter_mut()).zip(t.d.iter_mut()).enumerate().take(n) {
        let (g, dw) = groups8(&wr, b);
        for ((tw, aw), z) in tw.iter_mut().zip(aw.iter_mut()).zip(g) {
            *tw = z;
            *aw = _mm256_sign_epi8(z, z);
        }
        *d = dw;
    }
}

/// Entries (activation row × block) of the activation scales [`gemm_q8_0_q8_0_avx2`] converts once.
const ACT_CAP: usize = 1024;

/// Activation rows per group of [`gemm_q8_0_q8_0_avx2`].
const ACT_ROWS: usize = 64;

/// The eight rows of `t` times one activation row `a` (`da`: its blocks'
/// scales as f32): lane `p` is bit-identical to
/// [`vec_dot_q8_0_q8_0_avx2`]`(w[p], a)`, as in [`rows8_acts`] (lane `g` of
/// vec_dot's accumulator for row `p` is lane `p` of `acc[g]`, the same
/// `dot_i8` lanes and FMA chain, then `hsum_ps`' order), with the eight
/// chains in registers.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_tile8(t: &Tile8, a: &[BlockQ8_0], da: &[f32]) -> __m256 {
    let n = a.len().min(da.len()).min(TILE_BLOCKS);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); 8];
    for b in 0..n {
        // lane p: f32(d_w[p]) * f32(d_a), the product vec_dot rounds once
        let d = _mm256_mul_ps(t.d[b], _mm256_set1_ps(da[b]));
        let qs = &a[b].qs;
        for (g, acc_g) in acc.iter_mut().enumerate() {
            let c = &qs[4 * g..4 * g + 4];
            let ag = _mm256_set1_epi32(i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]));
            let sy = _mm256_sign_epi8(ag, t.w[b][g]);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(t.aw[b][g], sy), ones));
            *acc_g = _mm256_fmadd_ps(d, p, *acc_g);
        }
    }
    sum_lanes8(acc)
}

/// [`gemm_q8_0_q8_0_avx2`]'s path for rows of more than [`TILE_BLOCKS`]
/// blocks: eight weight rows × up to [`GEMM_ACTS`] activation rows per
/// pass ([`rows8_acts`]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gemm_q8_0_q8_0_long_avx2(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    stride: usize,
) {
    let m = acts.len() / act_row_bytes.max(1);
    let rows = w.len() / row_bytes.max(1);
    let wb: &[BlockQ8_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ8_0>();
    let mut i0 = 0;
    while i0 < m {
        let i1 = (i0 + GEMM_ACTS).min(m);
        let a = act_rows::<GEMM_ACTS>(acts, act_row_bytes, i0, i1);
        let mut r = 0;
        while r < rows {
            let end = (r + 8).min(rows);
            let v = rows8_acts(rows_n(wb, per_row, r, rows), &a[..i1 - i0]);
            for (k, vk) in v[..i1 - i0].iter().enumerate() {
                let o = (i0 + k) * stride;
                store_lanes(*vk, &mut out[o + r..o + end]);
            }
            r += 8;
        }
        i0 = i1;
    }
}

/// [`tile8_gemm`]'s Q8_0 format: [`Tile8`], the activation scales as f32, [`dot_tile8`].
struct Q8_0Tile;

impl Tile8Format for Q8_0Tile {
    type W = BlockQ8_0;
    type A = BlockQ8_0;
    type Tile = Tile8;
    type Terms = [f32; ACT_CAP];
    const TILE_BLOCKS: usize = TILE_BLOCKS;
    const CAP: usize = ACT_CAP;
    const ACT_ROWS: usize = ACT_ROWS;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new() -> (Tile8, [f32; ACT_CAP]) {
        let z = _mm256_setzero_si256();
        (
            Tile8 { w: [[z; 8]; TILE_BLOCKS], aw: [[z; 8]; TILE_BLOCKS], d: [_mm256_setzero_ps(); TILE_BLOCKS] },
            [0.0; ACT_CAP],
        )
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack8(w: [&[BlockQ8_0]; 8], n: usize, t: &mut Tile8) {
        unpack8(w, n, t)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn fill(terms: &mut [f32; ACT_CAP], k: usize, a: &[BlockQ8_0]) {
        for (b, ab) in a.iter().enumerate() {
            terms[k + b] = f16_to_f32(ab.d);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot(t: &Tile8, a: &[BlockQ8_0], terms: &[f32; ACT_CAP], k: usize) -> __m256 {
        dot_tile8(t, a, &terms[k..k + a.len()])
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn long_rows(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], stride: usize) {
        // SAFETY: same CPU and buffer contract.
        unsafe { gemm_q8_0_q8_0_long_avx2(w, row_bytes, acts, act_row_bytes, out, stride) }
    }
}

/// Q8_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]):
/// eight weight rows are transposed once into an L1-resident [`Tile8`],
/// then every activation row runs over the tile ([`dot_tile8`]; the driver
/// is [`tile8_gemm`]); rows of more than [`TILE_BLOCKS`] blocks take eight
/// weight rows × up to [`GEMM_ACTS`] activation rows per pass
/// ([`gemm_q8_0_q8_0_long_avx2`]). `Kernels::gemm_strided` sends one
/// activation row (decode) to the gemv instead. Every output equals
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
    // SAFETY: same CPU and buffer contract.
    unsafe { tile8_gemm::<Q8_0Tile>(w, row_bytes, acts, act_row_bytes, out, stride) }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    /// The gemv (scales converted once per call, and the per-row fallback
    /// past [`DA_CAP`] blocks) equals the one-row kernel bit for bit, with
    /// block counts that leave every tail of the eight-block step.
    #[test]
    fn gemv_equals_vec_dot_bit_for_bit() {
        if !crate::Tier::Avx2.is_available() {
            panic!("this x86_64 CPU lacks AVX2/FMA/F16C: the AVX2 Q8_0 gemv could not be checked");
        }
        let mut next = xorshift32(0x9e37_79b9_u32);
        let block = |next: &mut dyn FnMut() -> u32| BlockQ8_0 {
            d: f16::from_f32((next() % 1000) as f32 * 1e-4 - 0.05),
            qs: core::array::from_fn(|_| ((next() % 255) as i32 - 127) as i8),
        };
        for nb in [1usize, 7, 8, 9, 18, 63, DA_CAP, DA_CAP + 9] {
            for rows in [1usize, 3, 4, 9, 37] {
                let w: Vec<BlockQ8_0> = (0..rows * nb).map(|_| block(&mut next)).collect();
                let a: Vec<BlockQ8_0> = (0..nb).map(|_| block(&mut next)).collect();
                let mut out = vec![f32::NAN; rows];
                let row_bytes = nb * core::mem::size_of::<BlockQ8_0>();
                // SAFETY: AVX2/FMA/F16C checked above; whole blocks, `rows` rows of `nb` blocks.
                unsafe { gemv_q8_0_q8_0_avx2(bytemuck::cast_slice(&w), row_bytes, bytemuck::cast_slice(&a), &mut out) };
                for (r, got) in out.iter().enumerate() {
                    // SAFETY: as above.
                    let want = unsafe { vec_dot_q8_0_q8_0_avx2(&w[r * nb..(r + 1) * nb], &a) };
                    assert_eq!(got.to_bits(), want.to_bits(), "nb={nb} rows={rows} row {r}");
                }
            }
        }
    }
}
