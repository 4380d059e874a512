//! Q4_1 · Q8_1 with AVX2, in ggml's x86 float order.
//!
//! `sum((d*q + m) * da*a) = d*da * sum(q*a) + m * s`, with `s = da * sum(a)`
//! stored in the Q8_1 block. Each block is one vector in ggml's lane layout
//! (low nibbles are values 0..16, high nibbles 16..32; lane `l` holds the
//! exact integer sum of values `4l..4l+4`), accumulated per lane with
//! `fma(d*da, sum_l, acc_l)` block after block, reduced with ggml's
//! `hsum_float_8`, plus the `m * s` terms as one fused multiply-add chain:
//! the result is bit-identical to llama.cpp's AVX2 `ggml_vec_dot_q4_1_q8_1`,
//! which the end-to-end tests against llama.cpp's greedy ids rely on.
//! [`gemm_q4_1_q8_1_avx2`] (prompt batches) unpacks and transposes eight
//! weight rows once for every activation row, each output's eight lane
//! chains in lane `p` of eight vectors, every output keeping exactly the
//! one-row order.
//!
//! The gemv ([`gemv_q4_1_q8_1_avx2`], [`dot_rows4_pre`]) takes four rows
//! per pass, one from each quarter of the matrix ([`RowStreams`](crate::arch::streams::RowStreams) order,
//! groups of one row, session 6: the four streams are read side by side 20
//! bytes at a time, every other block of each prefetched [`STREAM_PREFETCH`]
//! bytes ahead). Its arithmetic is the one-row kernel's per lane, laid out
//! for fewer instructions: two rows share each vector (row 0 and row 2 of a
//! pass in the low and high 128 bits, [`nibbles_pair`]: one load, one
//! shift, two ANDs for both rows' low and high nibbles), so each
//! accumulator holds half of two rows; the activation is prepared once per
//! call (`[a0..16 | a0..16]`, `[a16..32 | a16..32]` and `[d, s]` per block,
//! [`ActBlock`]); the four rows' `[d, m]` are one 4-dword gather and one f16
//! conversion per block, their scale products spread to the row pairs by
//! two in-lane shuffles; the four outputs are reduced together in
//! [`hsum_ps`]' order. About 42 instructions per block of four rows
//! (`objdump` of the loop, two blocks per iteration) against 54 before
//! (a `nibbles32` per row, the scale products stored and broadcast back
//! per row, a hint per row and block), and the per-pass driver lost an
//! out-of-line `array::map` call and four `div`s (`RowStreams` now divides
//! by the constant). Session 7 (Zen 3 VM, shared machine; valgrind
//! callgrind instructions per call; `kernel-table --threads 1`, 5
//! interleaved runs, medians, GB/s): 576×576 195k → 133k instructions, hot
//! 8.4 → 10.6, DRAM 8.2 → 11.3; 1536×576 437k → 315k, hot 9.7 → 11.1,
//! DRAM 10.9 → 11.6; 576×1536 513k → 353k, hot 8.4 → 11.2, DRAM 8.5 →
//! 11.5; 49152×576 (3 runs) hot 8.5 → 11.2, DRAM 10.3 → 13.1. SmolLM2
//! Q4_1 `ember bench -p 0 -n 64 -t 1 -r 3`, 7 interleaved pairs against
//! main 32c9070: median 86.5 → 100.8 t/s (77–110 → 88–122). A hint every
//! block instead of every other (DRAM, 5 interleaved runs, medians):
//! 1536×576 13.7 against 14.3, 49152×576 13.4 against 13.5, 576×1536 13.5
//! against 12.5: no difference within the noise, so the fewer
//! instructions. `llvm-mca -mcpu=znver3` puts the loop at about 11 cycles per
//! block (12.5 before), bound by the four vector pipes (about 33 vector
//! µops per block: 16 of them the `maddubs`/`madd`/`cvt`/`fma` per row that
//! any layout needs), so fewer instructions alone will not gain much more
//! here. What is left per pass (about 160 instructions for 4 rows against
//! 42 per block: `row_passes`, the row slices' bounds checks, the
//! reduction) is mostly scalar work that overlaps the vector pipes: the
//! same bytes as 1536 rows of 18 blocks or 576 rows of 48 ran at the same
//! speed in cache (11.2 and 11.1 GB/s).
//!
//! Session 6's measurements of the row order: before, a pass was four
//! adjacent rows with one address-ordered prefetch two passes ahead (one
//! stream). `kernel-table --threads 1` from DRAM (loaded machine, 15
//! interleaved runs each, medians): 1536×576 9.3 → 11.1 GB/s, 576×1536
//! 10.1 → 10.7, 49152×576 9.7 → 9.5; in cache (`--hot`) 12.8 → 12.2, 12.6
//! → 11.4, 10.0 → 10.0. Tried and slower (1536×576 from DRAM, same runs):
//! one group of four adjacent rows per stream (`RowStreams` group 4, 1.4
//! KiB a turn) with the prefetch 512 or 1440 bytes ahead (4.6 / 6.0 GB/s
//! against 11.5), two adjacent rows from each of two streams (7.3 against
//! 11.3), one row per stream with a hint every block at 256 or 1024 bytes
//! (11.8 / 11.7 against 13.4), a hint every three blocks at 256 / 512 /
//! 1024 bytes (9.9 / 10.7 / 8.9 against 11.3), two of the four rows' hints
//! per block, alternating (9.4 against 10.0).

use super::avx2::*;
use crate::arch::streams::{pass_rows, row_passes};
use crate::q4_1::BlockQ4_1;
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

/// `[d, m]` of block `i` of each row (see [`trim`] for why not `map`).
#[inline(always)]
fn scales<const R: usize>(w: &[&[BlockQ4_1]; R], i: usize) -> [[half::f16; 2]; R] {
    let mut out = [[half::f16::ZERO; 2]; R];
    for r in 0..R {
        out[r] = [w[r][i].d, w[r][i].m];
    }
    out
}

/// `[d0, m0, d1, m1, ..]` of block `i` of up to four rows as f32 lanes: each
/// row's `d` and `m` are one little-endian dword, four dwords, one conversion.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dm_lanes<const R: usize>(w: &[&[BlockQ4_1]; R], i: usize) -> __m256 {
    const { assert!(R <= 4) };
    let bits = |r: usize| {
        if r < R {
            (w[r][i].d.to_bits() as u32 | (w[r][i].m.to_bits() as u32) << 16) as i32
        } else {
            0
        }
    };
    _mm256_cvtph_ps(_mm_set_epi32(bits(3), bits(2), bits(1), bits(0)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ4_1]; R], a: &[BlockQ8_1]) -> [f32; R] {
    const { assert!(R <= 4) };
    let n = a.len();
    let w = trim(w, n);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    // Lane 2r: row r's `m * s` chain (lane 2r + 1 computes the same, unused).
    let mut acc_m = _mm256_setzero_ps();
    let mrep_idx = _mm256_setr_epi32(1, 1, 3, 3, 5, 5, 7, 7);
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // [d_a, s_a], one conversion.
        let ds = _mm_cvtph_ps(_mm_cvtsi32_si128((ab.d.to_bits() as u32 | (ab.s.to_bits() as u32) << 16) as i32));
        // [d0, m0, d1, m1, ..] of the R rows' block i.
        let dm = dm_lanes(&w, i);
        // m * s with one rounding, as GCC contracts `summs += m * s`.
        let sa = _mm256_broadcastss_ps(_mm_movehdup_ps(ds));
        acc_m = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dm, mrep_idx), sa, acc_m);
        // d_w * d_a, each rounded once, as ggml's `_mm256_mul_ps(d0v, d1v)`.
        let d = _mm256_mul_ps(dm, _mm256_broadcastss_ps(ds));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(nibbles32(&wb.qs), qa), ones));
            acc[r] = _mm256_fmadd_ps(lane(d, 2 * r), p, acc[r]);
        }
    }
    let mut m = [0.0f32; 8];
    // SAFETY: `m` is 8 writable f32; storeu needs no alignment.
    unsafe { _mm256_storeu_ps(m.as_mut_ptr(), acc_m) };
    let mut out = hsum_rows(acc);
    for (r, o) in out.iter_mut().enumerate() {
        *o += m[2 * r];
    }
    out
}

/// Q4_1 weights · Q8_1 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1_avx2(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    dot_rows([w], a)[0]
}

rows4_gemv!(
    /// Q4_1 matrix · Q8_1 activation row, four rows per pass over the
    /// activation (the rest singly): [`gemv_q4_1_q8_1_avx2`]'s path for rows
    /// longer than [`GEMV_CHUNK`] blocks, the same results.
    gemv_q4_1_q8_1_rows4_avx2,
    BlockQ4_1,
    BlockQ8_1
);

/// Activation blocks that [`gemv_q4_1_q8_1_avx2`] prepares once per call
/// ([`ActBlock`], 96 bytes each with its 32-byte alignment: 48 KiB of
/// stack, left uninitialised except for the blocks a row has; 16384 values
/// per row).
const GEMV_CHUNK: usize = 512;

/// One activation block prepared for [`dot_rows4_pre`]: `q[0] = [a[0..16] |
/// a[0..16]]` and `q[1] = [a[16..32] | a[16..32]]`, the operands of
/// `maddubs` against two rows' nibbles as [`nibbles_pair`] lays them out,
/// and `[d, s]` as two f32 in one f64's bits (`d` low), one broadcast load
/// giving `[d, s, d, s, ..]`.
#[derive(Clone, Copy)]
struct ActBlock {
    q: [__m256i; 2],
    ds: f64,
}

/// [`ActBlock`] of `b`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn act_block(b: &BlockQ8_1) -> ActBlock {
    let (lo, hi) = act_pair(&b.qs, &b.qs);
    let (d, s) = (f16_to_f32(b.d).to_bits() as u64, f16_to_f32(b.s).to_bits() as u64);
    ActBlock { q: [lo, hi], ds: f64::from_bits(d | s << 32) }
}

/// One block `b[r]` of each of four rows times the activation block `ab`,
/// added into the accumulators of [`dot_rows4_pre`] (see there for the
/// lane layout); with `PREFETCH_ROWS`, a hint for each row's stream.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn step4<const PREFETCH_ROWS: bool>(b: [&BlockQ4_1; 4], ab: &ActBlock, acc: &mut [__m256; 5]) {
    let ones = _mm256_set1_epi16(1);
    let ds = _mm256_castpd_ps(_mm256_broadcast_sd(&ab.ds));
    // [d0, m0, d1, m1 | d2, m2, d3, m3]: each row's `d` and `m` are one
    // little-endian dword, four dwords, one conversion.
    let bits = |r: usize| (b[r].d.to_bits() as u32 | (b[r].m.to_bits() as u32) << 16) as i32;
    let dm = _mm256_cvtph_ps(_mm_set_epi32(bits(3), bits(2), bits(1), bits(0)));
    // m * s with one rounding, as GCC contracts `summs += m * s`.
    acc[4] = _mm256_fmadd_ps(dm, ds, acc[4]);
    // d_w * d_a, each rounded once, as ggml's `_mm256_mul_ps(d0v, d1v)`;
    // in-lane shuffles give rows 0 and 2's as [dd0 ×4 | dd2 ×4], 1 and 3's.
    let dd = _mm256_mul_ps(dm, ds);
    let sc = [_mm256_permute_ps::<0b00_00_00_00>(dd), _mm256_permute_ps::<0b10_10_10_10>(dd)];
    for k in 0..2 {
        let (r0, r1) = (b[k], b[k + 2]);
        if PREFETCH_ROWS {
            prefetch_ahead(r0, STREAM_PREFETCH);
            prefetch_ahead(r1, STREAM_PREFETCH);
        }
        let (lo, hi) = nibbles_pair(&r0.qs, &r1.qs);
        let p_lo = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, ab.q[0]), ones));
        let p_hi = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, ab.q[1]), ones));
        acc[2 * k] = _mm256_fmadd_ps(sc[k], p_lo, acc[2 * k]);
        acc[2 * k + 1] = _mm256_fmadd_ps(sc[k], p_hi, acc[2 * k + 1]);
    }
}

/// Four rows · one activation row prepared as `act` ([`ActBlock`] `i` for
/// block `i`), bit-identical to [`dot_rows`]: row `r`'s per-lane chains
/// `fma(d_w * d_a, f32(lane sum), acc)`, [`hsum_ps`], then `+` its `m * s`
/// chain. Rows 0 and 2 share two vectors of nibbles ([`nibbles_pair`]:
/// row 0 in the low 128 bits, row 2 in the high), and so their
/// accumulators: `acc[0] = [row 0 lanes 0..4 | row 2 lanes 0..4]`, `acc[1]`
/// lanes 4..8 of both; rows 1 and 3 likewise in `acc[2]`, `acc[3]`. Each
/// lane is still one row's chain with that row's scale product, so the
/// results are the one-row kernel's; the reduction adds the halves first,
/// as [`hsum_ps`] does. The four rows' `[d, m]` are one f16 conversion
/// `dm = [d0, m0, d1, m1 | d2, m2, d3, m3]`; with `ds = [d_a, s_a, ..]`,
/// `dm * ds` has `d_r * d_a` in lane `2r` (rounded once, as ggml's
/// `_mm256_mul_ps(d0v, d1v)`), spread to each row pair's halves by one
/// in-lane shuffle, and `fma(dm, ds, acc[4])` row `r`'s `m * s` chain in
/// lane `2r + 1` (the other lanes are unused). The rows may lie anywhere
/// (the gemv takes them from four distant parts of the matrix); every
/// other block of each is prefetched [`STREAM_PREFETCH`] bytes ahead (a
/// hint per 40 bytes, so every 64-byte line gets one), so each row's part
/// is its own prefetched stream.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows4_pre(w: [&[BlockQ4_1]; 4], act: &[ActBlock]) -> [f32; 4] {
    let n = act.len();
    let [w0, w1, w2, w3] = trim(w, n);
    let mut acc = [_mm256_setzero_ps(); 5];
    let (a2, w0c, w1c, w2c, w3c) = (
        act.as_chunks::<2>().0,
        w0.as_chunks::<2>().0,
        w1.as_chunks::<2>().0,
        w2.as_chunks::<2>().0,
        w3.as_chunks::<2>().0,
    );
    for ((((ab, b0), b1), b2), b3) in a2.iter().zip(w0c).zip(w1c).zip(w2c).zip(w3c) {
        step4::<true>([&b0[0], &b1[0], &b2[0], &b3[0]], &ab[0], &mut acc);
        step4::<false>([&b0[1], &b1[1], &b2[1], &b3[1]], &ab[1], &mut acc);
    }
    if let (Some(ab), Some(b0), Some(b1), Some(b2), Some(b3)) =
        (act.as_chunks::<2>().1.first(), w0.last(), w1.last(), w2.last(), w3.last())
    {
        step4::<true>([b0, b1, b2, b3], ab, &mut acc);
    }
    // [`hsum_ps`] of the four rows at once, in its order: with `a` a row's
    // eight lanes, `s_j = a_j + a_{j+4}` (one add for two rows, whose halves
    // are already apart), then `(s_0 + s_2) + (s_1 + s_3)`, then `+ m * s`.
    let s02 = _mm256_add_ps(acc[0], acc[1]);
    let s13 = _mm256_add_ps(acc[2], acc[3]);
    // [s0+s2, s1+s3 of row 0, of row 1 | of row 2, of row 3]
    let u = _mm256_add_ps(
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(s02), _mm256_castps_pd(s13))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(s02), _mm256_castps_pd(s13))),
    );
    // lanes [row 0, row 1, .. | row 2, row 3, ..]
    let h = _mm256_add_ps(_mm256_shuffle_ps::<0b10_00_10_00>(u, u), _mm256_shuffle_ps::<0b11_01_11_01>(u, u));
    let o = _mm256_add_ps(h, _mm256_shuffle_ps::<0b11_01_11_01>(acc[4], acc[4]));
    let mut v = [0.0f32; 8];
    // SAFETY: `v` is 8 writable f32; storeu needs no alignment.
    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), o) };
    [v[0], v[1], v[4], v[5]]
}

/// Q4_1 matrix · Q8_1 activation row: `out.len()` rows of `row_bytes` bytes,
/// four rows per pass over the activation ([`dot_rows4_pre`]), the rows in
/// [`RowStreams`](crate::arch::streams::RowStreams) order with groups of one row: each pass takes one row from
/// each of four equal parts of the matrix, so the weights are read as four
/// streams side by side, each prefetched [`STREAM_PREFETCH`] bytes ahead; the
/// rows the parts leave over (fewer than four) make one last pass, padded
/// with repeats of its last row. The activation is prepared once per call
/// ([`ActBlock`]). Rows longer than [`GEMV_CHUNK`] blocks go through
/// [`gemv_q4_1_q8_1_rows4_avx2`]. Every output is bit-identical to
/// [`vec_dot_q4_1_q8_1_avx2`] of its row.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q4_1_q8_1_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    use core::mem::MaybeUninit;
    let ab: &[BlockQ8_1] = bytemuck::cast_slice(a);
    if ab.len() > GEMV_CHUNK {
        // SAFETY: same CPU and buffer contract.
        unsafe { gemv_q4_1_q8_1_rows4_avx2(w, row_bytes, a, out) };
        return;
    }
    let wb: &[BlockQ4_1] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4_1>();
    let mut prep = [const { MaybeUninit::<ActBlock>::uninit() }; GEMV_CHUNK];
    let act = fill_front(&mut prep, ab.iter().map(|blk| act_block(blk)));
    // Passes of four rows, one from each of the four parts RowStreams
    // interleaves; the last pass may repeat its last row.
    for (pass, n) in row_passes::<4>(out.len()) {
        for (&r, x) in pass.iter().zip(dot_rows4_pre(pass_rows(wb, per_row, &pass), act)).take(n) {
            out[r] = x;
        }
    }
}

/// [`dot_rows`] for two activation rows at once: `out[c][r]` is
/// bit-identical to `dot_rows(w, a[c])[r]` (same per-lane FMA chains with
/// the same scale products `d_w * d_a`, same `m * s` chains, same reduction);
/// the weight nibbles are unpacked once for both. The `m * s` chains of both
/// activations share one vector: lane `2r` for `a[0]`, lane `2r + 1` for `a[1]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows_pair<const R: usize>(w: [&[BlockQ4_1]; R], a: [&[BlockQ8_1]; 2]) -> [[f32; R]; 2] {
    const { assert!(R <= 4) };
    let n = a[0].len();
    let (a0, a1) = (&a[0][..n], &a[1][..n]);
    let w = trim(w, n);
    let ones = _mm256_set1_epi16(1);
    let mut acc0 = [_mm256_setzero_ps(); R];
    let mut acc1 = [_mm256_setzero_ps(); R];
    let mut acc_m = _mm256_setzero_ps();
    let ds_bits = |b: &BlockQ8_1| (b.d.to_bits() as u32 | (b.s.to_bits() as u32) << 16) as i32;
    for i in 0..n {
        // [d0, m0, d1, m1, ..] of the R rows' block i, and [m_r, m_r] pairs.
        let dm = f16_rows(scales(&w, i));
        let mrep = _mm256_permutevar8x32_ps(dm, _mm256_setr_epi32(1, 1, 3, 3, 5, 5, 7, 7));
        // [d_a0, s_a0, d_a1, s_a1], one conversion.
        let ds = _mm_cvtph_ps(_mm_set_epi32(0, 0, ds_bits(&a1[i]), ds_bits(&a0[i])));
        let s_pair = _mm_shuffle_ps::<0b11_01_11_01>(ds, ds);
        acc_m = _mm256_fmadd_ps(mrep, _mm256_set_m128(s_pair, s_pair), acc_m);
        let da0 = _mm256_broadcastss_ps(ds);
        let da1 = _mm256_broadcastss_ps(_mm_movehl_ps(ds, ds));
        let (qa0, qa1) = (load32(&a0[i].qs), load32(&a1[i].qs));
        for r in 0..R {
            let q = nibbles32(&w[r][i].qs);
            // lane 2r of `dm * da` as `dot_rows` computes it, one rounding
            let dr = lane(dm, 2 * r);
            let p0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(q, qa0), ones));
            acc0[r] = _mm256_fmadd_ps(_mm256_mul_ps(dr, da0), p0, acc0[r]);
            let p1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(q, qa1), ones));
            acc1[r] = _mm256_fmadd_ps(_mm256_mul_ps(dr, da1), p1, acc1[r]);
        }
    }
    let mut m = [0.0f32; 8];
    // SAFETY: `m` is 8 writable f32; storeu needs no alignment.
    unsafe { _mm256_storeu_ps(m.as_mut_ptr(), acc_m) };
    let (mut o0, mut o1) = (hsum_rows(acc0), hsum_rows(acc1));
    for r in 0..R {
        o0[r] += m[2 * r];
        o1[r] += m[2 * r + 1];
    }
    [o0, o1]
}

pairs_gemm!(
    /// Q4_1 matrix · several Q8_1 activation rows, activation rows in pairs
    /// and weight rows in fours ([`dot_rows_pair`]): [`gemm_q4_1_q8_1_avx2`]'s
    /// path for rows too long for its unpacked tile. Every output equals
    /// [`gemv_q4_1_q8_1_avx2`]'s.
    gemm_q4_1_q8_1_pairs_avx2,
    BlockQ4_1,
    BlockQ8_1,
    gemv_q4_1_q8_1_avx2
);

/// Blocks per row up to which [`gemm_q4_1_q8_1_avx2`] unpacks eight weight
/// rows once for the whole batch (a [`Tile8`] of 64 × 320 bytes = 20 KiB on
/// the stack; 64 blocks = 2048 columns).
const TILE_BLOCKS: usize = 64;

/// Eight weight rows, unpacked and transposed: dword `p` of `q[b][g]` holds
/// row `p`'s values `4g..4g + 4` (0..=15) of block `b`, so that one `maddubs`
/// with a broadcast 4-value group of an activation gives, in dword `p`, the
/// two pair sums of [`dot_rows`]' i32 lane `g` for row `p`; `d[b]` and `m[b]`
/// hold the rows' `d` and `m` as f32, lane `p`.
struct Tile8 {
    q: [[__m256i; 8]; TILE_BLOCKS],
    d: [__m256; TILE_BLOCKS],
    m: [__m256; TILE_BLOCKS],
}

/// Unpacks rows `w` (each `n <= TILE_BLOCKS` blocks) into `t`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack8(w: [&[BlockQ4_1]; 8], n: usize, t: &mut Tile8) {
    let w = trim(w, n.min(TILE_BLOCKS));
    for (b, ((q, d), m)) in t.q.iter_mut().zip(t.d.iter_mut()).zip(t.m.iter_mut()).enumerate().take(n) {
        let mut v = [_mm256_setzero_si256(); 8];
        for (vp, row) in v.iter_mut().zip(&w) {
            *vp = nibbles32(&row[b].qs);
        }
        // Group g of every row in dword p of vector g.
        *q = transpose8_epi32(v);
        let mut dh = [half::f16::ZERO; 8];
        let mut mh = [half::f16::ZERO; 8];
        for (r, row) in w.iter().enumerate() {
            dh[r] = row[b].d;
            mh[r] = row[b].m;
        }
        *d = f16_lanes(dh);
        *m = f16_lanes(mh);
    }
}

/// Entries (activation row × block) of an [`ActDs`]: 8 KiB of stack.
const ACT_CAP: usize = 1024;

/// Activation rows per group of [`gemm_q4_1_q8_1_avx2`] (each group's
/// [`ActDs`] is filled once, then every tile of weight rows passes over it).
const ACT_ROWS: usize = 64;

/// The activation blocks' `d` and `s` as f32 (entry `i * n + b`: row `i`, block `b`).
struct ActDs {
    d: [f32; ACT_CAP],
    s: [f32; ACT_CAP],
}

/// The eight rows of `t` times one activation row `a` (`d`, `s`: its
/// blocks' scales as f32): lane `p` of the result is bit-identical to
/// `dot_rows(w, a)[p]`. Lane `g` of [`dot_rows`]' accumulator for row `p`
/// is lane `p` of `acc[g]` here, with the same chain (`fma(d_w * d_a,
/// f32(lane sum), acc)`), and lane `p` of `acc_m` is row `p`'s `m * s`
/// chain; the eight lanes are added in [`hsum_ps`]' order, then `acc_m`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_tile8(t: &Tile8, a: &[BlockQ8_1], d: &[f32], s: &[f32]) -> __m256 {
    let n = a.len().min(d.len()).min(s.len()).min(TILE_BLOCKS);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut acc_m = _mm256_setzero_ps();
    for b in 0..n {
        // m * s with one rounding, as dot_rows.
        acc_m = _mm256_fmadd_ps(t.m[b], _mm256_set1_ps(s[b]), acc_m);
        // lane p: f32(d_w[p]) * f32(d_a), as dot_rows' `d`.
        let db = _mm256_mul_ps(t.d[b], _mm256_set1_ps(d[b]));
        let qs = &a[b].qs;
        for (g, acc_g) in acc.iter_mut().enumerate() {
            let c = &qs[4 * g..4 * g + 4];
            let ag = _mm256_set1_epi32(i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]));
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(t.q[b][g], ag), ones);
            *acc_g = _mm256_fmadd_ps(db, _mm256_cvtepi32_ps(p), *acc_g);
        }
    }
    // hsum_ps per output, then + m * s.
    _mm256_add_ps(sum_lanes8(acc), acc_m)
}

/// [`tile8_gemm`]'s Q4_1 format: [`Tile8`], [`ActDs`], [`dot_tile8`].
struct Q4_1Tile;

impl Tile8Format for Q4_1Tile {
    type W = BlockQ4_1;
    type A = BlockQ8_1;
    type Tile = Tile8;
    type Terms = ActDs;
    const TILE_BLOCKS: usize = TILE_BLOCKS;
    const CAP: usize = ACT_CAP;
    const ACT_ROWS: usize = ACT_ROWS;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new() -> (Tile8, ActDs) {
        let zf = _mm256_setzero_ps();
        let t = Tile8 { q: [[_mm256_setzero_si256(); 8]; TILE_BLOCKS], d: [zf; TILE_BLOCKS], m: [zf; TILE_BLOCKS] };
        (t, ActDs { d: [0.0; ACT_CAP], s: [0.0; ACT_CAP] })
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack8(w: [&[BlockQ4_1]; 8], n: usize, t: &mut Tile8) {
        unpack8(w, n, t)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn fill(terms: &mut ActDs, k: usize, a: &[BlockQ8_1]) {
        for (b, ab) in a.iter().enumerate() {
            terms.d[k + b] = f16_to_f32(ab.d);
            terms.s[k + b] = f16_to_f32(ab.s);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot(t: &Tile8, a: &[BlockQ8_1], terms: &ActDs, k: usize) -> __m256 {
        let e = k..k + a.len();
        dot_tile8(t, a, &terms.d[e.clone()], &terms.s[e])
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn long_rows(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], stride: usize) {
        // SAFETY: same CPU and buffer contract.
        unsafe { gemm_q4_1_q8_1_pairs_avx2(w, row_bytes, acts, act_row_bytes, out, stride) }
    }
}

/// Q4_1 matrix · several Q8_1 activation rows ([`crate::kernels::GemmFn`]):
/// eight weight rows are unpacked and transposed once into an L1-resident
/// [`Tile8`], then every activation row runs over the tile ([`dot_tile8`];
/// the driver is [`tile8_gemm`]). Every output equals
/// [`gemv_q4_1_q8_1_avx2`]'s; rows of more than [`TILE_BLOCKS`] blocks go
/// through [`gemm_q4_1_q8_1_pairs_avx2`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q4_1_q8_1_avx2(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    // SAFETY: same CPU and buffer contract.
    unsafe { tile8_gemm::<Q4_1Tile>(w, row_bytes, acts, act_row_bytes, out, out_stride) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random Q4_1 rows and Q8_1 activations from raw bytes with finite scales.
    fn blocks<T: bytemuck::Pod>(n: usize, seed: &mut u64) -> std::vec::Vec<T> {
        let mut v = std::vec![T::zeroed(); n];
        for b in bytemuck::cast_slice_mut::<T, u8>(&mut v).iter_mut() {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *b = (*seed >> 24) as u8;
        }
        v
    }

    /// A finite f16 from random bits (subnormals and both signs included).
    fn finite(bits: u16) -> half::f16 {
        let h = half::f16::from_bits(bits);
        if h.is_finite() {
            h
        } else {
            half::f16::from_bits(bits & 0xbbff)
        }
    }

    /// The four-row gemv (and its padded last pass, and the older
    /// four-row path for rows over [`GEMV_CHUNK`] blocks) equals the
    /// one-row kernel ([`vec_dot_q4_1_q8_1_avx2`], ggml's order) bit for
    /// bit, on random blocks with random finite scales. The block counts
    /// cover one block, odd counts (a last block after the block pairs of
    /// [`dot_rows4_pre`]: 1, 3, 17) and even ones; the row counts cover
    /// fewer rows than streams (1-3), whole passes of one row per stream
    /// (4, 8, 12, 16, 28) and one to three rows left over after them (5, 7,
    /// 9, 13, 15, 21, 37, 70): every output lands in its own row's slot.
    #[test]
    fn gemv_equals_vec_dot_bit_for_bit() {
        if !crate::arch::x86_64::tier_available(crate::Tier::Avx2) {
            panic!("this test needs AVX2/FMA/F16C, which this x86_64 CPU lacks");
        }
        let mut seed = 0x0f1e_2d3c_4b5a_6978u64;
        let mut checked = 0;
        for nb in [1usize, 2, 3, 17, 18, 48, GEMV_CHUNK, GEMV_CHUNK + 1] {
            let row_counts: &[usize] =
                if nb > 48 { &[1, 9, 13] } else { &[1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 21, 28, 37, 70] };
            for &rows in row_counts {
                let mut w: std::vec::Vec<BlockQ4_1> = blocks(rows * nb, &mut seed);
                let mut a: std::vec::Vec<BlockQ8_1> = blocks(nb, &mut seed);
                for b in w.iter_mut() {
                    (b.d, b.m) = (finite(b.d.to_bits()), finite(b.m.to_bits()));
                }
                for b in a.iter_mut() {
                    (b.d, b.s) = (finite(b.d.to_bits()), finite(b.s.to_bits()));
                    for q in b.qs.iter_mut() {
                        *q = (*q).max(-127);
                    }
                }
                let (wb, ab): (&[u8], &[u8]) = (bytemuck::cast_slice(&w), bytemuck::cast_slice(&a));
                let mut got = std::vec![f32::NAN; rows];
                // SAFETY: AVX2 checked above; whole blocks, one output per row.
                unsafe { gemv_q4_1_q8_1_avx2(wb, nb * core::mem::size_of::<BlockQ4_1>(), ab, &mut got) };
                for (r, g) in got.iter().enumerate() {
                    // SAFETY: as above; row r and the activation hold nb blocks each.
                    let want = unsafe { vec_dot_q4_1_q8_1_avx2(&w[r * nb..(r + 1) * nb], &a) };
                    assert_eq!(g.to_bits(), want.to_bits(), "blocks={nb} rows={rows} row {r}: {g} vs {want}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 1552, "outputs compared");
    }

    #[test]
    fn gemm_equals_gemv_bit_for_bit() {
        if !crate::arch::x86_64::tier_available(crate::Tier::Avx2) {
            panic!("this test needs AVX2/FMA/F16C, which this x86_64 CPU lacks");
        }
        let mut seed = 0x1234_5678_9abc_def0u64;
        // (13, 61, 18): more activation rows than one group of the tiled gemm
        // (1024 / 18 = 56); (3, 3, 70): rows longer than its tile (64 blocks).
        for (rows, m, nb) in [
            (9usize, 5usize, 18usize),
            (4, 2, 1),
            (1, 1, 3),
            (7, 3, 48),
            (0, 2, 2),
            (5, 0, 2),
            (13, 61, 18),
            (3, 3, 70),
        ] {
            let mut w: std::vec::Vec<BlockQ4_1> = blocks(rows * nb, &mut seed);
            let mut a: std::vec::Vec<BlockQ8_1> = blocks(m * nb, &mut seed);
            // finite scales; activation int8 lanes other than -128 (the quantizer's range)
            for (k, b) in w.iter_mut().enumerate() {
                b.d = half::f16::from_f32(0.01 * (k % 7) as f32 + 0.001);
                b.m = half::f16::from_f32(-0.02 * (k % 5) as f32);
            }
            for (k, b) in a.iter_mut().enumerate() {
                b.d = half::f16::from_f32(0.003 * (k % 11) as f32 + 0.0005);
                b.s = half::f16::from_f32(0.5 - 0.1 * (k % 9) as f32);
                for q in b.qs.iter_mut() {
                    *q = (*q).max(-127);
                }
            }
            let (wb, ab): (&[u8], &[u8]) = (bytemuck::cast_slice(&w), bytemuck::cast_slice(&a));
            let (rb, arb) = (nb * core::mem::size_of::<BlockQ4_1>(), nb * core::mem::size_of::<BlockQ8_1>());
            let stride = rows + 3;
            let mut got = std::vec![f32::NAN; m * stride];
            // SAFETY: AVX2 checked above; whole blocks; `got` holds m rows of `stride`.
            unsafe { gemm_q4_1_q8_1_avx2(wb, rb, ab, arb, &mut got, stride) };
            for i in 0..m {
                let mut want = std::vec![0.0f32; rows];
                // SAFETY: as above, one activation row.
                unsafe { gemv_q4_1_q8_1_avx2(wb, rb, &ab[i * arb..(i + 1) * arb], &mut want) };
                let g: std::vec::Vec<u32> = got[i * stride..i * stride + rows].iter().map(|x| x.to_bits()).collect();
                let e: std::vec::Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
                assert_eq!(g, e, "rows={rows} m={m} blocks={nb} act row {i}");
            }
        }
    }
}
