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
//! Here the weight rows are read straight from the GGUF layout (no
//! repacked copy). The Q4_0 gemm takes eight rows per pass and transposes
//! each block of the eight rows once (a dword per row and 4-value group)
//! for up to sixteen activation rows, so that the products land in the
//! rows' lanes with no horizontal sum. The Q4_0 gemv takes eight rows per
//! pass too, rows `p` and `p + 4` in one register, and sums each row's
//! products with two `hadd` levels ([`q4_0_block8`]): fewer instructions per
//! block than the transpose when only one activation row shares it. Its
//! eight rows are two adjacent rows from each of four distant parts of the
//! matrix ([`RowStreams`]), addressed from one base pointer, the distance
//! between the parts and the row stride, so the weights stream from four
//! places at once (1.2-1.3x from DRAM at 49152×576, see
//! [`gemv_q4_0_q8_0_x8_avx2`]). Q4_K takes two rows per pass, also from
//! distant streams: each row's integer dot products are reduced across its
//! lanes and the rows' sums land in one vector, lane `r` for row `r`. The
//! f32 chain runs in the lanes exactly as above; only the order in which
//! rows are visited depends on the streams.

use super::avx2::*;
use crate::arch::streams::{pass_rows, row_passes, RowStreams};
use crate::q4_0::BlockQ4_0;
use crate::q4_k::BlockQ4K;
use crate::q8_0::BlockQ8_0;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;
use half::f16;

/// Q4_K weight rows per gemv pass, each from its own stream of
/// [`RowStreams`] (groups of one row).
const K_ROWS: usize = 2;

/// `N` row slices of `per_row` blocks from `w`, starting at row `r0`; rows
/// past `rows` repeat the last row (their outputs are not stored).
#[inline(always)]
pub(super) fn rows_n<T, const N: usize>(w: &[T], per_row: usize, r0: usize, rows: usize) -> [&[T]; N] {
    let mut out: [&[T]; N] = [&[]; N];
    for (k, o) in out.iter_mut().enumerate() {
        let r = (r0 + k).min(rows - 1);
        *o = &w[r * per_row..(r + 1) * per_row];
    }
    out
}

/// Scales `d` (`min = false`) or `dmin` (`true`) of block `b` of each row
/// (see [`trim`] for why not `map`).
#[inline(always)]
fn q4_k_scales<const R: usize>(w: &[&[BlockQ4K]; R], b: usize, min: bool) -> [f16; R] {
    let mut out = [f16::ZERO; R];
    for r in 0..R {
        out[r] = if min { w[r][b].dmin } else { w[r][b].d };
    }
    out
}

/// Scale `d` of block `b` of each row.
#[inline(always)]
pub(super) fn q4_0_scales<const R: usize>(w: &[&[BlockQ4_0]; R], b: usize) -> [f16; R] {
    let mut out = [f16::ZERO; R];
    for r in 0..R {
        out[r] = w[r][b].d;
    }
    out
}

/// Stores the first `out.len()` (at most 8) lanes of `v` into `out`: one
/// unaligned store for 8, lane by lane otherwise (a `copy_from_slice` of a
/// variable length is a libc `memcpy` call: 2.75% of a SmolLM2 Q8_0
/// pp512 profile, from the prompt gemms' 8-lane stores).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn store_lanes(v: __m256, out: &mut [f32]) {
    if let Some(o) = out.first_chunk_mut::<8>() {
        // SAFETY: `o` is 8 writable f32s, the size of one unaligned 256-bit store.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
        return;
    }
    let mut tmp = [0.0f32; 8];
    // SAFETY: `tmp` is 8 f32s, the size of one unaligned 256-bit store.
    unsafe { _mm256_storeu_ps(tmp.as_mut_ptr(), v) };
    for (o, t) in out.iter_mut().zip(tmp) {
        *o = t;
    }
}

/// Stores lane `k` of `v` into `out[rows[k]]`, for each of the first
/// `rows.len()` (at most 8) lanes: a gemv pass's outputs, its rows taken in
/// stream order ([`row_passes`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn store_rows(v: __m256, rows: &[usize], out: &mut [f32]) {
    let mut tmp = [0.0f32; 8];
    store_lanes(v, &mut tmp);
    for (&r, &x) in rows.iter().zip(&tmp) {
        out[r] = x;
    }
}

/// The Q8_0 activation rows `i0..i1` of `acts` (rows of `act_row_bytes`)
/// in the first `i1 - i0` entries (at most `N`) of an array.
#[inline(always)]
pub(super) fn act_rows<const N: usize>(acts: &[u8], act_row_bytes: usize, i0: usize, i1: usize) -> [&[BlockQ8_0]; N] {
    let mut a: [&[BlockQ8_0]; N] = [&[]; N];
    for (k, x) in a[..i1 - i0].iter_mut().enumerate() {
        let i = i0 + k;
        *x = bytemuck::cast_slice(&acts[i * act_row_bytes..(i + 1) * act_row_bytes]);
    }
    a
}

// ---------------------------------------------------------------- Q4_0 ----

/// Eight Q4_0 rows · one Q8_0 activation row, in the repacked order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q4_0_rows8(w: [&[BlockQ4_0]; 8], a: &[BlockQ8_0]) -> __m256 {
    let n = a.len();
    let w = trim(w, n);
    let ones = _mm256_set1_epi16(1);
    let eight = _mm256_set1_epi8(8);
    let mut acc = _mm256_setzero_ps();
    for (b, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // 8 * (pair sums of a): the -8 offset of Q4_0, exact in i16.
        let off = _mm256_maddubs_epi16(eight, qa);
        // Per row, 16 i16 pair sums of (q - 8) * a, each |.| <= 2 * 15 * 127 + 2 * 8 * 127.
        let mut p = [_mm256_setzero_si256(); 8];
        for r in 0..8 {
            let wb = &w[r][b];
            if b % 2 == 0 {
                prefetch_ahead(wb, PREFETCH);
            }
            p[r] = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles32(&wb.qs), qa), off);
        }
        let isum = reduce8_i16(p, ones);
        // col_scale * row_scale, as ggml's `_mm256_mul_ps(col_scale_f32, row_scale_f32)`.
        let d = _mm256_mul_ps(f16_lanes(q4_0_scales(&w, b)), _mm256_set1_ps(f16_to_f32(ab.d)));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
    }
    acc
}

/// Lane sums of eight rows' vectors of 16 i16 lanes, whose sums of any four lanes fit in
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
    join_halves(_mm256_madd_epi16(h03, ones), _mm256_madd_epi16(h47, ones))
}

/// Eight i32 sums from two vectors that hold, in each 128-bit half, partial
/// sums of items 0..4 (`a`) and 4..8 (`b`): lane `k` of the result is item
/// `k`'s total.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn join_halves(a: __m256i, b: __m256i) -> __m256i {
    let lo = _mm256_permute2x128_si256::<0x20>(a, b);
    let hi = _mm256_permute2x128_si256::<0x31>(a, b);
    _mm256_add_epi32(lo, hi)
}

/// Blocks per column chunk of [`gemv_q4_0_q8_0_x8_avx2`]: the per-block
/// activation terms ([`GemvPre`]) of one chunk live on the stack (2 KiB).
const GEMV_CHUNK: usize = 256;

/// Bytes of one Q4_0 block.
const Q4_0_BYTES: usize = core::mem::size_of::<BlockQ4_0>();

/// How far ahead [`q4_0_gemv_consecutive8`] (the rows the streams leave
/// over) prefetches, in passes of eight rows.
const GEMV_PF_PASSES: usize = 1;

/// Per-block terms of one Q8_0 activation row (a chunk of at most
/// [`GEMV_CHUNK`] blocks), computed once per gemv call and shared by every
/// eight weight rows.
struct GemvPre {
    /// `8 * sum(a)` of each block: the -8 offset of Q4_0, subtracted from
    /// the unsigned nibbles' integer dot product.
    off: [i32; GEMV_CHUNK],
    /// The activation scale `f32(d_a)`.
    d: [f32; GEMV_CHUNK],
}

impl GemvPre {
    /// Zeroed terms.
    fn new() -> GemvPre {
        GemvPre { off: [0; GEMV_CHUNK], d: [0.0; GEMV_CHUNK] }
    }

    /// The terms of `a` (at most [`GEMV_CHUNK`] blocks) in the first
    /// `a.len()` entries.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn fill(&mut self, a: &[BlockQ8_0]) {
        let eight = _mm256_set1_epi8(8);
        let ones = _mm256_set1_epi16(1);
        for ((ab, off), d) in a.iter().zip(self.off.iter_mut()).zip(self.d.iter_mut()) {
            // 8 * a summed in pairs (i16), then in fours (i32), then across lanes: exact.
            *off = hsum_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(eight, load32(&ab.qs)), ones));
            *d = f16_to_f32(ab.d);
        }
    }
}

/// The 16 bytes at `lo` (low half) and at `hi` (high half).
///
/// # Safety
/// 16 bytes are readable at each pointer.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load16_pair(lo: *const u8, hi: *const u8) -> __m256i {
    // SAFETY: the caller's; `loadu2` needs no alignment.
    unsafe { _mm256_loadu2_m128i(hi.cast(), lo.cast()) }
}

/// The f16 at `p`, as bits in an `i32`.
///
/// # Safety
/// 2 bytes are readable at `p`.
#[inline(always)]
unsafe fn f16_bits_at(p: *const u8) -> i32 {
    // SAFETY: the caller's; an unaligned read.
    i32::from(unsafe { p.cast::<u16>().read_unaligned() })
}

/// `x`, unknown to the optimizer (an empty `asm!`): a loop's offset passed
/// through it each step is no induction variable the compiler could derive
/// per-row pointers from.
#[inline(always)]
fn opaque(mut x: usize) -> usize {
    // SAFETY: an empty template: no instruction, no memory or stack access.
    unsafe { core::arch::asm!("/* {0} */", inout(reg) x, options(nomem, nostack, preserves_flags)) };
    x
}

/// One block of eight consecutive Q4_0 rows (row `k`'s block at `p0 + k *
/// s1` for `k < 4`, at `p4 + (k - 4) * s1` for `k >= 4`; `s3 = 3 s1`) · the
/// Q8_0 block `ab` (with its [`GemvPre`] terms `off`, `da`): one step of the
/// rows' chains, `acc = fma(f32(isum), d_w * d_a, acc)`, lane `r` row `r`.
///
/// Rows `p` and `p + 4` share a register (`[qs_p | qs_p+4]`); its low and
/// high nibbles (unsigned) meet the activation's values 0..16 and 16..32
/// broadcast to both halves, so two `maddubs` give the two rows' products
/// in their halves. Two `hadd_epi16` levels and one `madd` sum each row's
/// products into dword `p` of its half: lane `r` is row `r`. The -8 offset
/// comes off the i32 sum (`off`); the eight f16 row scales are inserted
/// word by word (one load each) and converted at once.
///
/// # Safety
/// The 18 bytes of each of the eight blocks are readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn q4_0_block8(
    p0: *const u8,
    p4: *const u8,
    s1: usize,
    s3: usize,
    ab: &BlockQ8_0,
    off: i32,
    da: f32,
    acc: __m256,
) -> __m256 {
    let m4 = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let s2 = 2 * s1;
    // SAFETY (every read below): the caller's; `qs` is at byte 2 of a block.
    let (y0, y1, y2, y3) = unsafe {
        (
            load16_pair(p0.add(2), p4.add(2)),
            load16_pair(p0.add(s1 + 2), p4.add(s1 + 2)),
            load16_pair(p0.add(s2 + 2), p4.add(s2 + 2)),
            load16_pair(p0.add(s3 + 2), p4.add(s3 + 2)),
        )
    };
    let al = _mm256_broadcastsi128_si256(load16(ab.qs[..16].try_into().unwrap()));
    let ah = _mm256_broadcastsi128_si256(load16(ab.qs[16..].try_into().unwrap()));
    // i16 lane j of half h: row p + 4h's products at values 2j, 2j + 1
    // and 16 + 2j, 17 + 2j (q = 0..=15), |.| <= 4 * 15 * 128 = 7680.
    let dot = |y: __m256i| {
        let lo = _mm256_and_si256(y, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(y), m4);
        _mm256_add_epi16(_mm256_maddubs_epi16(lo, al), _mm256_maddubs_epi16(hi, ah))
    };
    // Per half, i16 pairs of rows 0..4 (4..8), each |.| <= 4 * 7680 = 30720: exact.
    let h = _mm256_hadd_epi16(_mm256_hadd_epi16(dot(y0), dot(y1)), _mm256_hadd_epi16(dot(y2), dot(y3)));
    // Lane r: sum(q * a) - 8 * sum(a) = sum((q - 8) * a), row r's exact block sum.
    let isum = _mm256_sub_epi32(_mm256_madd_epi16(h, ones), _mm256_set1_epi32(off));
    // SAFETY: as above; `d` is at byte 0 of a block.
    let dw = unsafe {
        let v = _mm_cvtsi32_si128(f16_bits_at(p0));
        let v = _mm_insert_epi16::<1>(v, f16_bits_at(p0.add(s1)));
        let v = _mm_insert_epi16::<2>(v, f16_bits_at(p0.add(s2)));
        let v = _mm_insert_epi16::<3>(v, f16_bits_at(p0.add(s3)));
        let v = _mm_insert_epi16::<4>(v, f16_bits_at(p4));
        let v = _mm_insert_epi16::<5>(v, f16_bits_at(p4.add(s1)));
        let v = _mm_insert_epi16::<6>(v, f16_bits_at(p4.add(s2)));
        _mm256_cvtph_ps(_mm_insert_epi16::<7>(v, f16_bits_at(p4.add(s3))))
    };
    // col_scale * row_scale, as ggml's `_mm256_mul_ps(col_scale_f32, row_scale_f32)`.
    let d = _mm256_mul_ps(dw, _mm256_set1_ps(da));
    _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc)
}

/// Prefetches the `N` cache lines at `p`, `p + 64`, ... (hints that never
/// fault, whatever the address).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch_lines<const N: usize>(p: *const u8) {
    for k in 0..N {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * k).cast());
    }
}

/// Eight Q4_0 rows (row `k` at `w0 + k * s1` for `k < 4`, at `w4 + (k - 4)
/// * s1` for `k >= 4`) · one Q8_0 activation row (`a`, at most
/// [`GEMV_CHUNK`] blocks, with its [`GemvPre`]), continuing the repacked
/// order's chains from `acc` (lane `r`: row `r`), two blocks
/// ([`q4_0_block8`]) per step. Each step prefetches `PF_LINES` cache lines
/// at `pf + k * s1` for each `k < PF_STREAMS`, then moves `pf` on by the
/// bytes one stream's rows read per step (`16 * 18 / PF_STREAMS`).
///
/// The offset into the rows passes through [`opaque`] each step, so the
/// compiler addresses the eight rows from two pointers and two strides
/// (`row0 + stride * 2`, ...) instead of keeping eight pointers, too many
/// for the registers.
///
/// # Safety
/// For every `k < 4`, the `a.len()` blocks (`18 a.len()` bytes) at `w0 + k *
/// s1` and at `w4 + k * s1` are readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn q4_0_gemv_pass8<const PF_STREAMS: usize, const PF_LINES: usize>(
    w0: *const u8,
    w4: *const u8,
    s1: usize,
    a: &[BlockQ8_0],
    pre: &GemvPre,
    mut acc: __m256,
    pf: *const u8,
) -> __m256 {
    let n = a.len().min(GEMV_CHUNK);
    let (a, off, da) = (&a[..n], &pre.off[..n], &pre.d[..n]);
    let s3 = 3 * s1;
    // Byte offset of block `b` in a row, and the prefetch pointer.
    let (mut o, mut pf) = (0, pf);
    let mut b = 0;
    // SAFETY (both loops): block `b` of row `k` is at `p0` (`p4`) `+ (k % 4)
    // * s1` for `b < n <= a.len()`: readable by the caller's contract.
    while b + 2 <= n {
        for k in 0..PF_STREAMS {
            prefetch_lines::<PF_LINES>(pf.wrapping_add(k * s1));
        }
        unsafe {
            let (p0, p4) = (w0.add(o), w4.add(o));
            acc = q4_0_block8(p0, p4, s1, s3, &a[b], off[b], da[b], acc);
            let (p0, p4) = (p0.add(Q4_0_BYTES), p4.add(Q4_0_BYTES));
            acc = q4_0_block8(p0, p4, s1, s3, &a[b + 1], off[b + 1], da[b + 1], acc);
        }
        o = opaque(o + 2 * Q4_0_BYTES);
        pf = pf.wrapping_add(16 * Q4_0_BYTES / PF_STREAMS);
        b += 2;
    }
    if b < n {
        for k in 0..PF_STREAMS {
            prefetch_lines::<PF_LINES>(pf.wrapping_add(k * s1));
        }
        acc = unsafe { q4_0_block8(w0.add(o), w4.add(o), s1, s3, &a[b], off[b], da[b], acc) };
    }
    acc
}

/// Eight consecutive rows `r0..r0 + 8` over the chunk `ac` (blocks `c0..`),
/// the chains continued from `out[r0..r0 + 8]` when `c0 > 0`; stores the
/// lanes of rows `r..r0 + 8` only.
///
/// # Safety
/// As [`gemv_q4_0_q8_0_x8_avx2`] after its check; `r0 + 8 <= out.len()`, `r0 <= r`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn q4_0_gemv_consecutive8(
    w: &[u8],
    row_bytes: usize,
    ac: &[BlockQ8_0],
    c0: usize,
    pre: &GemvPre,
    out: &mut [f32],
    r0: usize,
    r: usize,
) {
    let o = &mut out[r0..r0 + 8];
    // SAFETY: `o` is 8 f32s.
    let acc = if c0 == 0 { _mm256_setzero_ps() } else { unsafe { _mm256_loadu_ps(o.as_ptr()) } };
    // SAFETY: rows `r0..r0 + 8` (r0 + 8 <= rows) hold blocks
    // `c0..c1` at byte `18 c0` on, inside `w` (checked by the caller).
    let v = unsafe {
        let w0 = w.as_ptr().add(r0 * row_bytes + c0 * Q4_0_BYTES);
        q4_0_gemv_pass8::<1, 5>(
            w0,
            w0.wrapping_add(4 * row_bytes),
            row_bytes,
            ac,
            pre,
            acc,
            w0.wrapping_add(GEMV_PF_PASSES * 8 * row_bytes),
        )
    };
    let mut tmp = [0.0f32; 8];
    // SAFETY: `tmp` is 8 f32s.
    unsafe { _mm256_storeu_ps(tmp.as_mut_ptr(), v) };
    o[r - r0..].copy_from_slice(&tmp[r - r0..]);
}

/// Rows `s[k]` (lane `k`) and `s[k] + 1` (lane `k + 4`) for `k < 4`, with
/// `s` equally spaced, over the chunk `ac` (blocks `c0..`), the chains
/// continued from `out` when `c0 > 0`: one [`q4_0_gemv_pass8`] whose rows
/// `p` and `p + 4` are adjacent rows of stream `p`, each stream prefetched
/// [`STREAM_PREFETCH`] bytes ahead (one line per step, as fast as it reads).
///
/// # Safety
/// As [`gemv_q4_0_q8_0_x8_avx2`] after its check; `s[3] + 1 < out.len()`,
/// `s[1] - s[0] = s[2] - s[1] = s[3] - s[2] > 0`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_gemv_streams8(
    w: &[u8],
    row_bytes: usize,
    ac: &[BlockQ8_0],
    c0: usize,
    pre: &GemvPre,
    out: &mut [f32],
    s: [usize; 4],
) {
    let mut tmp = [0.0f32; 8];
    if c0 > 0 {
        for k in 0..4 {
            tmp[k] = out[s[k]];
            tmp[k + 4] = out[s[k] + 1];
        }
    }
    // SAFETY: `tmp` is 8 f32s.
    let acc = unsafe { _mm256_loadu_ps(tmp.as_ptr()) };
    // SAFETY: row `s[0] + k * (s[1] - s[0])` (+ 1) is row `s[k]` (+ 1),
    // which holds blocks `c0..c1` at byte `18 c0` on, inside `w` (the
    // caller's contract).
    let v = unsafe {
        let w0 = w.as_ptr().add(s[0] * row_bytes + c0 * Q4_0_BYTES);
        let w4 = w0.add(row_bytes);
        q4_0_gemv_pass8::<4, 1>(w0, w4, (s[1] - s[0]) * row_bytes, ac, pre, acc, w0.wrapping_add(STREAM_PREFETCH))
    };
    // SAFETY: `tmp` is 8 f32s.
    unsafe { _mm256_storeu_ps(tmp.as_mut_ptr(), v) };
    for k in 0..4 {
        out[s[k]] = tmp[k];
        out[s[k] + 1] = tmp[k + 4];
    }
}

/// Q4_0 matrix · Q8_0 activation row in llama.cpp's repacked order, eight
/// rows per pass ([`q4_0_gemv_pass8`]): two adjacent rows from each of the
/// four streams of [`RowStreams`] (groups of two rows), so the weights are
/// read as four distant streams interleaved every two blocks (36 bytes per
/// row), each prefetched [`STREAM_PREFETCH`] bytes ahead
/// ([`q4_0_gemv_streams8`]). The rows the streams leave over (fewer than
/// eight, at the end) run consecutive passes ([`q4_0_gemv_consecutive8`]);
/// the last of them takes the last eight rows and stores only the rows no
/// other pass stored (every lane is its own row's chain, so the overlap
/// changes no bits); fewer than eight rows in all run [`q4_0_rows8`]. Rows
/// longer than [`GEMV_CHUNK`] blocks are done a column chunk at a time, each
/// chunk continuing the outputs' chains from the values the previous one
/// stored.
///
/// Kernel-table, one thread, DRAM (medians of 3 interleaved runs, loaded
/// machine) against eight consecutive rows per pass with the next pass
/// prefetched: 49152×576 9.3 → 12.2 GB/s (another run 11.2 → 14.5),
/// 1536×576 9.2 → 11.0, 576×1536 9.8 → 11.1; from cache no slower (1536×576
/// 15.9 → 19.4, 576×1536 17.0 → 16.2). Whole passes of eight consecutive
/// rows in stream order (2.6 KiB per stream turn at 576 columns) were
/// slower than before (7.2 GB/s at 49152×576); prefetching 256 / 1024 bytes
/// ahead gave 10.3 / 10.0, none 9.9, two lines per step 12.3 (as one).
/// Two streams at a time (four adjacent rows from each) were slower than
/// four: 10.4 against 12.8 GB/s at 49152×576, 5.9 against 11.0 at 1536×576.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q4_0_q8_0_x8_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8_0] = bytemuck::cast_slice(a);
    let rows = out.len();
    let nb = a.len();
    // The bounds every pointer of `q4_0_gemv_pass8` relies on, checked once:
    // each of the `rows` rows of `row_bytes` holds `nb` blocks, inside `w`.
    assert!(
        nb * Q4_0_BYTES <= row_bytes && rows.checked_mul(row_bytes).is_some_and(|t| t <= w.len()),
        "gemv_q4_0_q8_0_x8_avx2: {rows} rows of {row_bytes} bytes ({nb} blocks) in {} bytes",
        w.len()
    );
    if nb == 0 {
        out.fill(0.0);
        return;
    }
    if rows < 8 {
        let wb: &[BlockQ4_0] = bytemuck::cast_slice(&w[..rows * row_bytes]);
        store_lanes(q4_0_rows8(rows_n::<_, 8>(wb, row_bytes / Q4_0_BYTES, 0, rows), a), out);
        return;
    }
    let mut pre = GemvPre::new();
    let mut c0 = 0;
    while c0 < nb {
        let c1 = (c0 + GEMV_CHUNK).min(nb);
        let ac = &a[c0..c1];
        pre.fill(ac);
        // Two adjacent rows from each of four streams per pass (four
        // consecutive groups of `RowStreams`, equally spaced); the groups
        // left over (fewer than four, and a short last one) are the rows
        // `tail..rows`, done by consecutive passes at the end.
        let mut groups = RowStreams::new(rows, 2);
        let mut tail = rows;
        loop {
            let q = [groups.next(), groups.next(), groups.next(), groups.next()];
            let s = match q {
                [Some((s0, 2)), Some((s1, 2)), Some((s2, 2)), Some((s3, 2))]
                    if s1 > s0 && s2 - s1 == s1 - s0 && s3 - s2 == s1 - s0 =>
                {
                    [s0, s1, s2, s3]
                }
                [None, ..] => break,
                _ => {
                    for (first, _) in q.into_iter().flatten() {
                        tail = tail.min(first);
                    }
                    continue;
                }
            };
            // SAFETY: rows `s[k]`, `s[k] + 1` (< rows) hold blocks `c0..c1`.
            unsafe { q4_0_gemv_streams8(w, row_bytes, ac, c0, &pre, out, s) };
        }
        let mut r = tail;
        while r < rows {
            // SAFETY: r.min(rows - 8) + 8 <= rows.
            unsafe { q4_0_gemv_consecutive8(w, row_bytes, ac, c0, &pre, out, r.min(rows - 8), r) };
            r += 8;
        }
        c0 = c1;
    }
}

/// Activation rows per pass of [`gemm_q4_0_q8_0_x8_avx2`] (each unpacked
/// weight block serves all of them).
pub(super) const Q4_0_ACTS: usize = 16;

/// Block `b` of eight Q4_0 rows as its eight 4-value groups across the rows:
/// dword `p` of `t[g]` holds row `p`'s values `4g..4g + 4` (unsigned, 0..=15).
/// One 4×4 dword transpose per 128-bit half of the raw `qs` (rows `p` and
/// `p + 4` share a register): dword `j` of a row's `qs` holds group `j` in
/// its low nibbles and group `j + 4` in its high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q4_0_groups8(w: &[&[BlockQ4_0]; 8], b: usize) -> [__m256i; 8] {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut y = [_mm256_setzero_si256(); 4];
    for (k, yk) in y.iter_mut().enumerate() {
        *yk = _mm256_set_m128i(load16(&w[k + 4][b].qs), load16(&w[k][b].qs));
    }
    // z[j] dword p: row p's dword j (rows 4..8 in the high half).
    let z = transpose4_epi32(y);
    let mut t = [_mm256_setzero_si256(); 8];
    for j in 0..4 {
        t[j] = _mm256_and_si256(z[j], m4);
        t[j + 4] = _mm256_and_si256(_mm256_srli_epi16::<4>(z[j]), m4);
    }
    t
}

/// Group `g` (values `4g..4g + 4`) of a Q8_0 block in every dword.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn act_group(qs: &[i8; 32], g: usize) -> __m256i {
    let q = &qs[4 * g..4 * g + 4];
    _mm256_set1_epi32(i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8]))
}

/// Per-block terms of a group of activation rows that [`q4_0_rows8_acts`]
/// would otherwise recompute for every eight weight rows: entry `i * nb + b`
/// is activation row `i`'s block `b`. At most [`PRE_CAP`] entries.
pub(super) struct ActPre {
    /// The -8 offset's two i16 lanes (even, odd) of every dword: 8 × the
    /// sums of the activation's values at positions `4g, 4g + 1` (`4g + 2,
    /// 4g + 3`) over the eight groups `g`; each |.| <= 8 * 8 * 2 * 128 = 16384.
    pub(super) off: [i32; PRE_CAP],
    /// The same offset whole, negated, for sums that start from it
    /// (`vpdpbusd`): -8 × the sum of the block's 32 values.
    pub(super) neg_off: [i32; PRE_CAP],
    /// The activation scale `f32(d_a)`.
    pub(super) d: [f32; PRE_CAP],
}

/// Entries of an [`ActPre`] (12 KiB of stack in all).
pub(super) const PRE_CAP: usize = 1024;

impl ActPre {
    /// The terms of activation rows `acts` (each `nb` blocks, `acts.len() * nb <= PRE_CAP`).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn new(acts: &[&[BlockQ8_0]], nb: usize) -> ActPre {
        let mut pre = ActPre { off: [0; PRE_CAP], neg_off: [0; PRE_CAP], d: [0.0; PRE_CAP] };
        let eight = _mm256_set1_epi8(8);
        let ones = _mm256_set1_epi16(1);
        for (i, a) in acts.iter().enumerate() {
            for (b, ab) in a[..nb].iter().enumerate() {
                let x = _mm256_maddubs_epi16(eight, load32(&ab.qs));
                pre.neg_off[i * nb + b] = -hsum_epi32(_mm256_madd_epi16(x, ones));
                let x = _mm256_add_epi16(x, _mm256_permute2x128_si256::<0x01>(x, x));
                let x = _mm256_add_epi16(x, _mm256_shuffle_epi32::<0x4e>(x));
                let x = _mm256_add_epi16(x, _mm256_shuffle_epi32::<0xb1>(x));
                pre.off[i * nb + b] = _mm256_cvtsi256_si32(x);
                pre.d[i * nb + b] = f16_to_f32(ab.d);
            }
        }
        pre
    }
}

/// The exact integer sums of block `b` of eight Q4_0 rows (`t`: their
/// groups, [`q4_0_groups8`]) with the Q8_0 block of values `qs`, whose
/// [`ActPre`] terms are entry `k` of `pre`: lane `r` is row `r`'s
/// `sum((q - 8) * a)`. Per group `g`, one `maddubs` lands each row's products
/// at values `4g..4g + 4` in its dword's two i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_isum8(t: &[__m256i; 8], qs: &[i8; 32], pre: &ActPre, k: usize) -> __m256i {
    // i16 lane 2p (2p + 1): row p's products at values 4g, 4g + 1
    // (4g + 2, 4g + 3) summed over the eight groups g, each |.| <=
    // 8 * 2 * 15 * 128 = 30720: exact.
    let mut s = _mm256_maddubs_epi16(t[0], act_group(qs, 0));
    for (g, tg) in t.iter().enumerate().skip(1) {
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(*tg, act_group(qs, g)));
    }
    // s - offset is, lane for lane, a sum of (q - 8) * a products,
    // |.| <= 8 * 2 * 8 * 128 = 16384: exact in i16 (the wrapping
    // arithmetic lands on it), so lane p is row p's exact block sum.
    let x = _mm256_set1_epi32(pre.off[k]);
    _mm256_madd_epi16(_mm256_sub_epi16(s, x), _mm256_set1_epi16(1))
}

/// The Q4_0 prompt gemm of one build (AVX2, or 256-bit VNNI in
/// [`super::x8_avx512`]): `$isum` is the integer block sums of eight rows
/// with one activation block ([`q4_0_isum8`] or its `vpdpbusd` twin);
/// everything else, and so every bit of the output, is shared.
macro_rules! q4_0_gemm {
    ($feat:literal, $isum:path, $rows8_acts:ident, $gemm:ident) => {
        /// Eight Q4_0 rows · up to `Q4_0_ACTS` Q8_0 activation rows (`pre`:
        /// their `ActPre` terms): `acc[i]` lane `r` is output (row `r`,
        /// activation `i`), in `q4_0_rows8`'s chain (`acc = fma(f32(isum_b),
        /// d_w * d_a, acc)` block after block, `isum_b` the exact integer dot
        /// product of the block with the -8 offset). Each weight block is
        /// unpacked and transposed (`q4_0_groups8`) once for all the
        /// activation rows; per activation row, `$isum` lands the eight
        /// groups' products in the rows' own lanes, so no horizontal sum is
        /// needed.
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows8_acts(
            w: [&[BlockQ4_0]; 8],
            acts: &[&[BlockQ8_0]],
            pre: &super::x8_avx2::ActPre,
            acc: &mut [__m256; super::x8_avx2::Q4_0_ACTS],
        ) {
            use super::avx2::{f16_lanes, prefetch_ahead, trim, PREFETCH};
            use super::x8_avx2::{q4_0_groups8, q4_0_scales, PRE_CAP, Q4_0_ACTS};
            let n = acts.first().map_or(0, |a| a.len());
            let w = trim(w, n);
            let acts = &acts[..acts.len().min(Q4_0_ACTS).min(PRE_CAP / n.max(1))];
            for x in acc.iter_mut() {
                *x = _mm256_setzero_ps();
            }
            for b in 0..n {
                if b % 2 == 0 {
                    for r in &w {
                        prefetch_ahead(&r[b], PREFETCH);
                    }
                }
                let t = q4_0_groups8(&w, b);
                let dw = f16_lanes(q4_0_scales(&w, b));
                for (i, (a, acc_i)) in acts.iter().zip(acc.iter_mut()).enumerate() {
                    let ab = &a[b];
                    let isum = $isum(&t, &ab.qs, pre, i * n + b);
                    // col_scale * row_scale, as in q4_0_rows8.
                    let d = _mm256_mul_ps(dw, _mm256_set1_ps(pre.d[i * n + b]));
                    *acc_i = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, *acc_i);
                }
            }
        }

        /// Q4_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]):
        /// the repacked gemm and gemv orders are the same for Q4_0, so each
        /// activation row gets the gemv's result. Groups of up to `Q4_0_ACTS`
        /// activation rows pass over the weights eight rows at a time; rows
        /// of more than `PRE_CAP` blocks run `q4_0_rows8` over the weights
        /// one activation row at a time. (`Kernels::gemm_strided` sends a
        /// single activation row, decode, to the gemv.)
        ///
        /// # Safety
        /// The CPU must support the features this function is compiled for; the
        /// buffers satisfy [`crate::kernels::GemmFn`]'s contract.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $gemm(
            w: &[u8],
            row_bytes: usize,
            acts: &[u8],
            act_row_bytes: usize,
            out: &mut [f32],
            stride: usize,
        ) {
            use super::x8_avx2::{act_rows, q4_0_rows8, rows_n, store_lanes, ActPre, PRE_CAP, Q4_0_ACTS};
            let wb: &[BlockQ4_0] = bytemuck::cast_slice(w);
            let per_row = row_bytes / core::mem::size_of::<BlockQ4_0>();
            let rows = w.len() / row_bytes;
            let m = acts.len() / act_row_bytes;
            let nb = act_row_bytes / core::mem::size_of::<BlockQ8_0>();
            if nb > PRE_CAP || nb == 0 {
                for i in 0..m {
                    let a: &[BlockQ8_0] = bytemuck::cast_slice(&acts[i * act_row_bytes..(i + 1) * act_row_bytes]);
                    let mut r = 0;
                    while r < rows {
                        let end = (r + 8).min(rows);
                        let v = q4_0_rows8(rows_n::<_, 8>(wb, per_row, r, rows), a);
                        store_lanes(v, &mut out[i * stride + r..i * stride + end]);
                        r += 8;
                    }
                }
                return;
            }
            let group = Q4_0_ACTS.min(PRE_CAP / nb);
            let mut acc = [_mm256_setzero_ps(); Q4_0_ACTS];
            let mut i0 = 0;
            while i0 < m {
                let i1 = (i0 + group).min(m);
                let a = act_rows::<Q4_0_ACTS>(acts, act_row_bytes, i0, i1);
                let a = &a[..i1 - i0];
                let pre = ActPre::new(a, nb);
                let mut r = 0;
                while r < rows {
                    let end = (r + 8).min(rows);
                    $rows8_acts(rows_n::<_, 8>(wb, per_row, r, rows), a, &pre, &mut acc);
                    for (k, v) in acc[..i1 - i0].iter().enumerate() {
                        let i = i0 + k;
                        store_lanes(*v, &mut out[i * stride + r..i * stride + end]);
                    }
                    r += 8;
                }
                i0 = i1;
            }
        }
    };
}
pub(super) use q4_0_gemm;

q4_0_gemm!("avx2,fma,f16c", q4_0_isum8, q4_0_rows8_acts, gemm_q4_0_q8_0_x8_avx2);

// ---------------------------------------------------------------- Q4_K ----

/// Block `wb` of a Q4_K row times activation block `ab`, exactly: the
/// integer products of each 64-value step `s` (groups `2s` and `2s + 1`,
/// each times its 6-bit scale) in the lanes of `p[s]`, and the block's eight
/// 6-bit minimums. Prefetches the row [`STREAM_PREFETCH`] bytes ahead (the
/// block's three lines).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k_block_products(wb: &BlockQ4K, ab: &BlockQ8K) -> ([__m256i; 4], [u8; 8]) {
    prefetch_ahead(wb, STREAM_PREFETCH);
    prefetch_ahead(wb, STREAM_PREFETCH + 64);
    prefetch_ahead(wb, STREAM_PREFETCH + 128);
    let m4 = _mm256_set1_epi8(0x0f);
    let (sc8, mn8) = k4_scales_mins(&wb.scales);
    let sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(load8(sc8)));
    let mut p = [_mm256_setzero_si256(); 4];
    for (s, p) in p.iter_mut().enumerate() {
        let q = load32_at(&wb.qs, 32 * s);
        let lo = _mm256_and_si256(q, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
        let a_lo = load32_at(&ab.qs, 64 * s);
        let a_hi = load32_at(&ab.qs, 64 * s + 32);
        let s_lo = _mm256_shuffle_epi8(sc, i16_pick(2 * s, 2 * s));
        let s_hi = _mm256_shuffle_epi8(sc, i16_pick(2 * s + 1, 2 * s + 1));
        let plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a_lo), s_lo);
        let phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a_hi), s_hi);
        *p = _mm256_add_epi32(plo, phi);
    }
    (p, mn8)
}

/// `R` Q4_K rows · one Q8_K activation row in ggml's repacked **gemv** order
/// (one f32 step per 256 values), each row's integer sums reduced on its
/// own, the `R` rows' f32 chains in the lanes of one vector. Any `R` rows:
/// the gemv passes it rows of distant streams.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_k_rows<const R: usize>(w: [&[BlockQ4K]; R], a: &[BlockQ8K]) -> __m256 {
    let n = a.len();
    let w = trim(w, n);
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = _mm256_setzero_ps();
    for (b, ab) in a.iter().enumerate() {
        let da = _mm256_set1_ps(ab.d);
        let d = _mm256_mul_ps(f16_lanes(q4_k_scales(&w, b, false)), da);
        let dmin = _mm256_mul_ps(f16_lanes(q4_k_scales(&w, b, true)), da);
        let mut bs = [0i32; 8];
        for (j, v) in bs.iter_mut().enumerate() {
            *v = ab.bsums[2 * j] as i32 + ab.bsums[2 * j + 1] as i32;
        }
        let mut isum = [0i32; 8];
        let mut imin = [0i32; 8];
        for r in 0..R {
            let (p, mn) = k_block_products(&w[r][b], ab);
            let tot = _mm256_add_epi32(_mm256_add_epi32(p[0], p[1]), _mm256_add_epi32(p[2], p[3]));
            isum[r] = hsum_epi32(tot);
            imin[r] = (0..8).map(|j| mn[j] as i32 * bs[j]).sum();
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load_i32x8(&isum)), d, acc);
        acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load_i32x8(&imin)), dmin, acc_min);
    }
    _mm256_sub_ps(acc, acc_min)
}

/// Eight i32s as one vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_i32x8(v: &[i32; 8]) -> __m256i {
    // SAFETY: `v` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Q4_K matrix · Q8_K activation row in llama.cpp's repacked gemv order,
/// [`K_ROWS`] rows per pass ([`q4_k_rows`]) taken in [`RowStreams`] order
/// with groups of one row: a pass reads rows of two of the four streams,
/// the next pass the other two, and so on, each row prefetched
/// [`STREAM_PREFETCH`] bytes ahead (into the stream's next row near its
/// end). Kernel-table (DRAM, one thread, medians of 4 interleaved runs)
/// against two adjacent rows per pass with a 4 KiB prefetch: 2048×640
/// 6.2 → 9.4 GB/s, 36864×768 7.6 → 7.8; four rows per pass (one per
/// stream) 9.4 and 8.6, but slower from cache at 36864×768 (7.5 against 9.9
/// GB/s); two rows per pass with the 4 KiB prefetch 8.6 and 7.9.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q4_k_q8_k_x8_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8K] = bytemuck::cast_slice(a);
    let w: &[BlockQ4K] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4K>();
    let rows = out.len();
    // `K_ROWS` successive rows of the stream order per pass (the last pass
    // repeats its last row in the lanes it does not store).
    for (idx, n) in row_passes::<K_ROWS>(rows) {
        let wr = pass_rows(w, per_row, &idx);
        store_rows(q4_k_rows::<K_ROWS>(wr, a), &idx[..n], out);
    }
}

/// Super-blocks of eight Q4_K rows unpacked at once by
/// [`gemm_q4_k_q8_k_x8_avx2`]: 8 × 256 = 2048 columns, a [`KTile`] of 19.5
/// KiB (L1-resident while the activation rows pass over it).
const K_TILE_SB: usize = 8;

/// Activation rows whose accumulators [`gemm_q4_k_q8_k_x8_avx2`] keeps
/// between column chunks when a row spans more than one [`KTile`].
const K_ACT_GROUP: usize = 16;

/// Eight Q4_K rows over up to [`K_TILE_SB`] super-blocks, unpacked and
/// transposed so that one `maddubs` with a broadcast 4-value group of an
/// activation leaves row `p`'s two pair sums in dword `p` (no horizontal sums).
struct KTile {
    /// `q[t][s][8h + g]`: values `4g..4g + 4` of sub-block `2s + h` of
    /// super-block `t`, row `p` in dword `p` (unsigned, 0..=15).
    q: [[[__m256i; 16]; 4]; K_TILE_SB],
    /// `sc[t][j]`: row `p`'s 6-bit scale of sub-block `j` in both i16 halves of dword `p`.
    sc: [[__m256i; 8]; K_TILE_SB],
    /// `mn[t][s]`: row `p`'s 6-bit minimums of sub-blocks `2s` (low i16) and `2s + 1` (high) in dword `p`.
    mn: [[__m256i; 4]; K_TILE_SB],
    /// `d` of each row as f32, lane `p`.
    d: [__m256; K_TILE_SB],
    /// `dmin` of each row as f32, lane `p`.
    dmin: [__m256; K_TILE_SB],
}

impl KTile {
    /// An all-zero tile.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn new() -> KTile {
        let z = _mm256_setzero_si256();
        let zf = _mm256_setzero_ps();
        KTile {
            q: [[[z; 16]; 4]; K_TILE_SB],
            sc: [[z; 8]; K_TILE_SB],
            mn: [[z; 4]; K_TILE_SB],
            d: [zf; K_TILE_SB],
            dmin: [zf; K_TILE_SB],
        }
    }

    /// Unpacks super-blocks `b0..b0 + n` (`n <= K_TILE_SB`) of rows `w`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn unpack(&mut self, w: &[&[BlockQ4K]; 8], b0: usize, n: usize) {
        let m4 = _mm256_set1_epi8(0x0f);
        for t in 0..n.min(K_TILE_SB) {
            let b = b0 + t;
            let mut sc = [[0u32; 8]; 8];
            let mut mn = [[0u32; 8]; 4];
            for (p, row) in w.iter().enumerate() {
                let wb = &row[b];
                let (sc8, mn8) = k4_scales_mins(&wb.scales);
                for j in 0..8 {
                    sc[j][p] = sc8[j] as u32 * 0x0001_0001;
                }
                for s in 0..4 {
                    mn[s][p] = mn8[2 * s] as u32 | (mn8[2 * s + 1] as u32) << 16;
                }
            }
            for (v, x) in self.sc[t].iter_mut().zip(&sc) {
                *v = load_u32x8(x);
            }
            for (v, x) in self.mn[t].iter_mut().zip(&mn) {
                *v = load_u32x8(x);
            }
            self.d[t] = f16_lanes(q4_k_scales(w, b, false));
            self.dmin[t] = f16_lanes(q4_k_scales(w, b, true));
            for s in 0..4 {
                // Bytes 32s + 16h2 .. + 16 of each row: groups 4h2..4h2 + 4
                // of sub-blocks 2s (low nibbles) and 2s + 1 (high nibbles).
                for h2 in 0..2 {
                    let half = |p: usize| -> &[u8; 16] {
                        w[p][b].qs[32 * s + 16 * h2..32 * s + 16 * h2 + 16].try_into().unwrap()
                    };
                    let mut y = [_mm256_setzero_si256(); 4];
                    for (k, yk) in y.iter_mut().enumerate() {
                        *yk = _mm256_set_m128i(load16(half(k + 4)), load16(half(k)));
                    }
                    let z = transpose4_epi32(y);
                    for (jj, zj) in z.iter().enumerate() {
                        self.q[t][s][4 * h2 + jj] = _mm256_and_si256(*zj, m4);
                        self.q[t][s][8 + 4 * h2 + jj] = _mm256_and_si256(_mm256_srli_epi16::<4>(*zj), m4);
                    }
                }
            }
        }
    }
}

/// Eight u32s as one vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_u32x8(v: &[u32; 8]) -> __m256i {
    // SAFETY: `v` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Values `4g..4g + 4` of an activation block's `qs` in every dword.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k_act_group(qs: &[i8; 256], g: usize) -> __m256i {
    let q = &qs[4 * g..4 * g + 4];
    _mm256_set1_epi32(i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8]))
}

/// The eight rows of `t` (its first `n` super-blocks) times `C` activation
/// rows `a` (the same super-blocks), continuing the chains in `acc[c] =
/// [acc, acc_min]`: lane `p` of activation row `c` runs
/// [`q4_k_rows`]'s chain (`PER64 = false`, one f32 step per super-block)
/// or ggml's repacked gemm chain (`PER64`, one step per 64 values), on the
/// same exact integer sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k_tile_dot<const C: usize, const PER64: bool>(t: &KTile, n: usize, a: [&[BlockQ8K]; C], acc: &mut [[__m256; 2]; C]) {
    let a = trim(a, n.min(K_TILE_SB));
    for (b, (q, sc)) in t.q.iter().zip(&t.sc).enumerate().take(n) {
        let mut d = [_mm256_setzero_ps(); C];
        let mut dmin = [_mm256_setzero_ps(); C];
        let mut bs = [[0u32; 4]; C];
        for c in 0..C {
            let ab = &a[c][b];
            let da = _mm256_set1_ps(ab.d);
            // col_scale * row_scale, as q4_k_rows.
            d[c] = _mm256_mul_ps(t.d[b], da);
            dmin[c] = _mm256_mul_ps(t.dmin[b], da);
            for (s, v) in bs[c].iter_mut().enumerate() {
                // Sums of the 32-value sub-blocks 2s and 2s + 1 (|.| <= 32 * 128, exact in i16).
                let lo = ab.bsums[4 * s] as i32 + ab.bsums[4 * s + 1] as i32;
                let hi = ab.bsums[4 * s + 2] as i32 + ab.bsums[4 * s + 3] as i32;
                *v = (lo as u32 & 0xffff) | (hi as u32) << 16;
            }
        }
        let mut tot = [_mm256_setzero_si256(); C];
        let mut tot_min = [_mm256_setzero_si256(); C];
        for s in 0..4 {
            let mut isum = [_mm256_setzero_si256(); C];
            for h in 0..2 {
                let j = 2 * s + h;
                // i16 lanes 2p, 2p + 1: row p's pair sums over the eight
                // groups, each |.| <= 8 * 2 * 15 * 128 = 30720: exact.
                let mut sum = [_mm256_setzero_si256(); C];
                for g in 0..8 {
                    let wq = q[s][8 * h + g];
                    for c in 0..C {
                        let p = _mm256_maddubs_epi16(wq, k_act_group(&a[c][b].qs, 8 * j + g));
                        sum[c] = if g == 0 { p } else { _mm256_add_epi16(sum[c], p) };
                    }
                }
                for c in 0..C {
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(sum[c], sc[j]));
                }
            }
            for c in 0..C {
                let imin = _mm256_madd_epi16(t.mn[b][s], _mm256_set1_epi32(bs[c][s] as i32));
                if PER64 {
                    acc[c][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), d[c], acc[c][0]);
                    acc[c][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), dmin[c], acc[c][1]);
                } else {
                    tot[c] = _mm256_add_epi32(tot[c], isum[c]);
                    tot_min[c] = _mm256_add_epi32(tot_min[c], imin);
                }
            }
        }
        if !PER64 {
            for c in 0..C {
                acc[c][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[c]), d[c], acc[c][0]);
                acc[c][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot_min[c]), dmin[c], acc[c][1]);
            }
        }
    }
}

/// Activation rows `i0..i1` (all in the same order: `PER64` or not) over
/// the tile `t` (its first `n` super-blocks, starting at super-block `b0`
/// of each activation row), two at a time; `acc[i - i0]` holds each row's
/// chains.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k_tile_rows<const PER64: bool>(
    t: &KTile,
    b0: usize,
    n: usize,
    acts: &[u8],
    act_row_bytes: usize,
    (i0, i1): (usize, usize),
    acc: &mut [[__m256; 2]],
) {
    let act = |i: usize| -> &[BlockQ8K] {
        let a: &[BlockQ8K] = bytemuck::cast_slice(&acts[i * act_row_bytes..(i + 1) * act_row_bytes]);
        &a[b0..]
    };
    let mut i = i0;
    while i + 2 <= i1 {
        let mut pair = [acc[i - i0], acc[i + 1 - i0]];
        k_tile_dot::<2, PER64>(t, n, [act(i), act(i + 1)], &mut pair);
        acc[i - i0] = pair[0];
        acc[i + 1 - i0] = pair[1];
        i += 2;
    }
    if i < i1 {
        let mut one = [acc[i - i0]];
        k_tile_dot::<1, PER64>(t, n, [act(i)], &mut one);
        acc[i - i0] = one[0];
    }
}

/// Q4_K matrix · several Q8_K activation rows ([`crate::kernels::GemmFn`]) in
/// llama.cpp's repacked order: the first `m - m % 4` activation rows in the
/// gemm order (one step per 64 values), the last `m % 4` in the gemv order,
/// as `forward_mul_mat_one_chunk` splits a batch. Call it with the whole
/// batch, or with groups whose sizes are multiples of four but the last.
///
/// Eight weight rows at a time are unpacked into a [`KTile`] (up to
/// [`K_TILE_SB`] super-blocks), then every activation row passes over it
/// ([`k_tile_dot`]); rows longer than a tile are done in column chunks, with
/// the chains of up to [`K_ACT_GROUP`] activation rows kept between chunks.
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
    if per_row == 0 || act_row_bytes == 0 {
        return;
    }
    let rows = w.len() / row_bytes;
    let m = acts.len() / act_row_bytes;
    let m4 = m - m % 4;
    // One chunk: every activation row in one group (no chains to keep).
    let group = if per_row <= K_TILE_SB { m } else { K_ACT_GROUP };
    let mut t = KTile::new();
    let mut acc = [[_mm256_setzero_ps(); 2]; K_ACT_GROUP];
    let mut g0 = 0;
    while g0 < m {
        let g1 = (g0 + group).min(m);
        let mut r = 0;
        while r < rows {
            let wr = rows_n::<_, 8>(wb, per_row, r, rows);
            let end = (r + 8).min(rows);
            // Slices of at most K_ACT_GROUP activation rows (one slice per
            // group when the rows span several chunks); the tile is unpacked
            // once for all slices when it holds the whole rows.
            let mut s0 = g0;
            while s0 < g1 {
                let s1 = (s0 + K_ACT_GROUP).min(g1);
                for a in acc.iter_mut() {
                    *a = [_mm256_setzero_ps(); 2];
                }
                let mut b0 = 0;
                while b0 < per_row {
                    let n = (per_row - b0).min(K_TILE_SB);
                    if s0 == g0 || per_row > K_TILE_SB {
                        t.unpack(&wr, b0, n);
                    }
                    let split = m4.clamp(s0, s1);
                    k_tile_rows::<true>(&t, b0, n, acts, act_row_bytes, (s0, split), &mut acc);
                    k_tile_rows::<false>(&t, b0, n, acts, act_row_bytes, (split, s1), &mut acc[split - s0..]);
                    b0 += n;
                }
                for i in s0..s1 {
                    store_lanes(
                        _mm256_sub_ps(acc[i - s0][0], acc[i - s0][1]),
                        &mut out[i * stride + r..i * stride + end],
                    );
                }
                s0 = s1;
            }
            r += 8;
        }
        g0 = g1;
    }
}
