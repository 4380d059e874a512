//! Q5_0 · Q8_0 with AVX2, in ggml's x86 float order.
//!
//! As Q4_0 (one vector per block in ggml's lane layout, `fma(d_w*d_a, sum_l,
//! acc_l)` per block, ggml's `hsum_float_8`: bit-identical to llama.cpp's
//! AVX2 `ggml_vec_dot_q5_0_q8_0`, and to its tinyBLAS prompt path, whose
//! per-output order is the same), with the fifth bits spread from `qh` to
//! bytes: the values (0..=31) multiply the activations with `maddubs` and
//! the `-16` offset is `16 * sum(a)` per pair of values. Four rows share each
//! activation block, its offsets and scale ([`dot_rows`] converts each row
//! block's scale from an f16 broadcast, [`f16_splat`]); in
//! [`gemm_q5_0_q8_0_avx2`] (prompt batches) eight weight rows are unpacked
//! and transposed once for every activation row, each output's eight lane
//! chains sitting in lane `p` of eight vectors (no per-output scale
//! broadcast or horizontal sum).
//!
//! The gemv ([`gemv_q5_0_q8_0_avx2`], four adjacent rows per pass in
//! address order, a 4 KiB prefetch per row block) prepares the activation
//! once per call ([`GemvAct`]: values, offsets, scales as f32; rows up to
//! 64 blocks, longer ones and `vec_dot` through [`dot_rows`]); per block it
//! converts the four rows' scales together, multiplies them by the
//! activation's and stores them, and each row broadcasts its product from
//! memory ([`dot_rows_pre`]) instead of permuting it out of a vector; the
//! fifth bits are isolated with one mask ([`bit4_from_bits32`]: AND and
//! compare with it). Bit for bit as before. Instructions per row block (32
//! values; cachegrind, 40-row calls as the decode's chunks / whole matrix):
//! 640 columns 22.81 / 22.68 → 22.10 / 21.70, 2048 columns 22.04 → 21.06.
//! Time (Zen 3 VM, loaded, old and new alternated in one process, 100–200
//! rounds, 640×2048 in 40-row calls, medians): L2/L3-hot 1.01–1.04×, from
//! DRAM 1.01–1.05×. Gemma 3 tg64 -t 1 cannot resolve that (Q5_0 is 44 of
//! the 253 MB read per token; `ember bench -r 3`, 16 runs in ABBA order,
//! for the variant below with f16 broadcasts: median 42.3 → 42.5 t/s,
//! 36.8–44.9 and 37.7–47.6).
//!
//! The kernel is bound by its vector ports (about 17 vector operations per
//! row block; `llvm-mca` puts the shuffle/shift pipes highest), not by its
//! instruction count. Tried and dropped: each row block's scale as an f16
//! broadcast, converted and multiplied ([`f16_splat`], kept for
//! [`dot_rows`]): 21.58 / 21.18 instructions but 0.97–1.02× (three vector
//! operations per row block instead of about two); each row's scales
//! converted eight blocks at a time and broadcast from memory (the inserts
//! cost more than they save: 21.0–21.7 instructions, no faster); the
//! scales combined in general-purpose registers (22.9, slower); a prefetch
//! every other block (slower from DRAM); the rows as four interleaved
//! streams with the 512-byte prefetch (`row_passes::<4>`: 0.87–0.94× from
//! DRAM and hot, as session 6 found, figures at [`rows4_gemv`]).

use super::avx2::*;
use crate::q5_0::BlockQ5_0;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

/// Scale `d` of block `i` of each row (a plain loop, see [`trim`]).
#[inline(always)]
pub(super) fn scales<const R: usize>(w: &[&[BlockQ5_0]; R], i: usize) -> [half::f16; R] {
    let mut out = [half::f16::ZERO; R];
    for r in 0..R {
        out[r] = w[r][i].d;
    }
    out
}

/// `f32(h)` in all eight lanes: `h` broadcast as f16, then converted (no
/// scalar conversion and no lane permute).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_splat(h: half::f16) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi16(h.to_bits() as i16))
}

/// `R` rows · `a`, block by block: per block the activation's values, their
/// `16 * sum(a)` pair offsets and scale are loaded or computed once for the
/// `R` rows; each row's 32 values (0..=31) go through `maddubs`, the offset
/// is subtracted, and its lane sums are added as `fma(d_w * d_a, sum_l,
/// acc_l)`, `d_w * d_a` the product of the two scales as f32, rounded once.
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
        let da = f16_splat(ab.d);
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa), off);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(f16_splat(wb.d), da), p, acc[r]);
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
    /// Q5_0 matrix · Q8_0 activation row, four adjacent rows per pass over
    /// the activation (the rest singly) through [`dot_rows`]:
    /// [`gemv_q5_0_q8_0_avx2`]'s path for rows longer than [`GEMV_CAP`]
    /// blocks, the same results.
    gemv_q5_0_q8_0_rows4_avx2,
    BlockQ5_0,
    BlockQ8_0
);

/// Activation blocks (2048 columns) whose terms ([`GemvAct`])
/// [`gemv_q5_0_q8_0_avx2`] prepares once per call (4.25 KiB of stack);
/// longer rows take [`dot_rows`] four rows at a time.
pub(super) const GEMV_CAP: usize = 64;

/// Rows per pass of [`gemv_q5_0_q8_0_avx2`].
pub(super) const GEMV_ROWS: usize = 4;

/// The activation blocks as [`dot_rows_pre`] reads them, prepared once per
/// call and shared by every row: `qo[i]` block `i`'s values and `16 *` each
/// pair's sum (the `maddubs` of 16 and the values: [`dot_rows`]' `off`),
/// `d[i]` its scale as f32.
#[derive(Clone, Copy)]
struct GemvAct<'a> {
    qo: &'a [[__m256i; 2]],
    d: &'a [f32],
}

/// `R` (at most 4) Q5_0 rows · the activation blocks `a` ([`GemvAct`]),
/// each row bit for bit as [`dot_rows`] (per block `acc = fma(d_w * d_a,
/// f32(lane sums), acc)` from block 0, then [`hsum_rows`]). The `R` weight
/// scales of a block are converted and multiplied by the activation's at
/// once, one block ahead, and each row's product is broadcast from memory
/// ([`scale_products_ahead`]). In cache (`kernel-table --hot`, Zen 4 VM,
/// 640×2048 and 640×1024) that took 14.8 to 16.1 GB/s from the products
/// made in the block that used them, their four scales inserted word by
/// word (`vpinsrw`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows_pre<const R: usize>(w: [&[BlockQ5_0]; R], a: GemvAct) -> [f32; R] {
    let n = a.qo.len().min(a.d.len()).min(w.iter().map(|r| r.len()).min().unwrap_or(0));
    let (w, qo, da) = (trim(w, n), &a.qo[..n], &a.d[..n]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut ahead = [[0.0f32; 4]; 2];
    for i in 0..n {
        // SAFETY: this function's target features include AVX2, FMA and F16C.
        let d = unsafe { scale_products_ahead(&w, da, i, &mut ahead) };
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            // |maddubs pair sums| <= 31*127*2, |off| <= 16*127*2: the i16 difference is exact.
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qo[i][0]), qo[i][1]);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d[r]), p, acc[r]);
        }
    }
    hsum_rows(acc)
}

/// The products `d_w * d_a` of block `i` of the `R` (at most 4) rows with
/// the activation scale `da`, lane `r` row `r`, stored into `d`. The four
/// f16 scales are gathered in a general register ([`f16_lanes`]), not
/// inserted into a vector word by word.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_products<const R: usize>(w: &[&[BlockQ5_0]; R], i: usize, da: f32, d: &mut [f32; 4]) {
    const { assert!(R <= 4) };
    let dw = _mm256_castps256_ps128(f16_lanes(scales(w, i)));
    // SAFETY: `d` is 4 writable f32; `storeu` needs no alignment.
    unsafe { _mm_storeu_ps(d.as_mut_ptr(), _mm_mul_ps(dw, _mm_set1_ps(da))) };
}

/// The scale products ([`scale_products`]) of block `i` of the `R` rows for
/// a gemv's block loop, `da[k]` block `k`'s activation scale: at `i = 0`
/// those of block 0 are made, and at every `i` those of block `i + 1`, one
/// block ahead, into the other half of `d`. Returns block `i`'s, which the
/// rows broadcast from memory ([`in_memory`]): a load-port uop each, where
/// picking lanes out of a register takes a shuffle and a broadcast. Made
/// one block ahead because loads right behind their store stalled: in the
/// 256-bit VNNI gemv a fifth of the `perf` samples sat on the first
/// broadcast, and 640×2048 in cache (`kernel-table --hot`, Zen 4 VM) went
/// from 21.2 to 23.0 GB/s (with the ternary logic there).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[inline(always)]
pub(super) unsafe fn scale_products_ahead<'d, const R: usize>(
    w: &[&[BlockQ5_0]; R],
    da: &[f32],
    i: usize,
    d: &'d mut [[f32; 4]; 2],
) -> &'d [f32; 4] {
    if i == 0 && !da.is_empty() {
        // SAFETY: the CPU has AVX2, FMA and F16C (this function's contract).
        unsafe { scale_products(w, 0, da[0], &mut d[0]) };
    }
    if i + 1 < da.len() {
        // SAFETY: as above.
        unsafe { scale_products(w, i + 1, da[i + 1], &mut d[(i + 1) % 2]) };
    }
    // SAFETY: as above.
    unsafe { in_memory(d) };
    &d[i % 2]
}

/// The Q5_0 gemvs' passes over the `out.len()` rows of `per_row` blocks in
/// `w`: [`GEMV_ROWS`] adjacent rows at a time in address order (`four`),
/// then the rows left over one at a time (`one`).
#[inline(always)]
pub(super) fn adjacent_passes<'w>(
    w: &'w [BlockQ5_0],
    per_row: usize,
    out: &mut [f32],
    four: impl Fn([&'w [BlockQ5_0]; GEMV_ROWS]) -> [f32; GEMV_ROWS],
    one: impl Fn([&'w [BlockQ5_0]; 1]) -> [f32; 1],
) {
    let row = |r: usize| &w[r * per_row..(r + 1) * per_row];
    let mut r = 0;
    while r + GEMV_ROWS <= out.len() {
        out[r..r + GEMV_ROWS].copy_from_slice(&four([row(r), row(r + 1), row(r + 2), row(r + 3)]));
        r += GEMV_ROWS;
    }
    for (k, o) in out[r..].iter_mut().enumerate() {
        *o = one([row(r + k)])[0];
    }
}

/// Q5_0 matrix · Q8_0 activation row ([`crate::kernels::GemvFn`]):
/// `out.len()` rows of `row_bytes` bytes, [`GEMV_ROWS`] adjacent rows per
/// pass in address order ([`dot_rows_pre`]), the rest singly; every output
/// is bit for bit [`vec_dot_q5_0_q8_0_avx2`]'s. The activation's terms
/// ([`GemvAct`]) are prepared once per call for rows of up to
/// [`GEMV_CAP`] blocks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q5_0_q8_0_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    use core::mem::MaybeUninit;
    let ab: &[BlockQ8_0] = bytemuck::cast_slice(a);
    if ab.len() > GEMV_CAP {
        // SAFETY: same CPU and buffer contract.
        unsafe { gemv_q5_0_q8_0_rows4_avx2(w, row_bytes, a, out) };
        return;
    }
    let a = ab;
    let w: &[BlockQ5_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ5_0>();
    let sixteen = _mm256_set1_epi8(16);
    let mut qo = [const { MaybeUninit::<[__m256i; 2]>::uninit() }; GEMV_CAP];
    let mut da = [const { MaybeUninit::<f32>::uninit() }; GEMV_CAP];
    let act = GemvAct {
        qo: fill_front(
            &mut qo,
            a.iter().map(|ab| {
                let qa = load32(&ab.qs);
                [qa, _mm256_maddubs_epi16(sixteen, qa)]
            }),
        ),
        d: fill_front(&mut da, a.iter().map(|ab| f16_to_f32(ab.d))),
    };
    adjacent_passes(w, per_row, out, |rows| dot_rows_pre(rows, act), |rows| dot_rows_pre(rows, act));
}

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
    /// long for its unpacked tile.
    gemm_q5_0_q8_0_pairs_avx2,
    BlockQ5_0,
    BlockQ8_0,
    gemv_q5_0_q8_0_avx2
);

/// Blocks per row up to which [`gemm_q5_0_q8_0_avx2`] unpacks eight weight
/// rows once for the whole batch (a [`Tile8`] of 64 × 8 × 64 bytes = 34 KiB
/// on the stack, of which a row of `n` blocks touches `n / 64`; 64 blocks =
/// 2048 columns).
pub(super) const TILE_BLOCKS: usize = 64;

/// Eight weight rows, unpacked and transposed: dword `p` of `w[b][g]` holds
/// row `p`'s values `4g..4g + 4` of block `b` as signed bytes `q - 16`
/// (-16..=15), and `corr[b][g]` holds, in the same i16 lanes as a `maddubs`
/// of them, `128 ×` each pair's sum; `d[b]` holds the rows' scales as f32,
/// lane `p`. With an activation group `a + 128` (unsigned), `maddubs - corr`
/// is, in dword `p`, the two exact pair sums of `(q - 16) * a` that make
/// [`dot_rows`]' i32 lane `g` for row `p`.
struct Tile8 {
    w: [[__m256i; 8]; TILE_BLOCKS],
    corr: [[__m256i; 8]; TILE_BLOCKS],
    d: [__m256; TILE_BLOCKS],
}

/// Unpacks rows `w` (each `n <= TILE_BLOCKS` blocks) into `t`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack8(w: [&[BlockQ5_0]; 8], n: usize, t: &mut Tile8) {
    let w = trim(w, n.min(TILE_BLOCKS));
    let sixteen = _mm256_set1_epi8(16);
    let u128 = _mm256_set1_epi8(-128);
    for (b, ((tw, corr), d)) in t.w.iter_mut().zip(t.corr.iter_mut()).zip(t.d.iter_mut()).enumerate().take(n) {
        let mut v = [_mm256_setzero_si256(); 8];
        for (vp, row) in v.iter_mut().zip(&w) {
            let wb = &row[b];
            *vp = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
        }
        // Group g of every row in dword p of vector g ([`transpose8_epi32`]).
        for ((wg, cg), z) in tw.iter_mut().zip(corr.iter_mut()).zip(transpose8_epi32(v)) {
            let s = _mm256_sub_epi8(z, sixteen);
            *wg = s;
            // 128 (unsigned) × each pair's sum, |.| <= 128 * 32: exact in i16.
            *cg = _mm256_maddubs_epi16(u128, s);
        }
        *d = f16_lanes(scales(&w, b));
    }
}

/// Entries (activation row × block) of an [`ActU`]: 18 KiB of stack.
pub(super) const ACT_CAP: usize = 512;

/// Activation rows per group of [`gemm_q5_0_q8_0_avx2`] (each group's
/// [`ActU`] is filled once, then every tile of weight rows passes over it).
pub(super) const ACT_ROWS: usize = 64;

/// Activation blocks as [`dot_tile8`] reads them: `q[k]` the values plus 128
/// (unsigned bytes: `a ^ 0x80`), `d[k]` the scale as f32.
pub(super) struct ActU {
    pub(super) q: [[u8; 32]; ACT_CAP],
    pub(super) d: [f32; ACT_CAP],
}

impl ActU {
    /// All zero.
    pub(super) fn new() -> ActU {
        ActU { q: [[0; 32]; ACT_CAP], d: [0.0; ACT_CAP] }
    }

    /// Entries `k + b`: block `b`'s values plus 128 and its scale as f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn fill(&mut self, k: usize, a: &[BlockQ8_0]) {
        let flip = _mm256_set1_epi8(-128);
        for (b, ab) in a.iter().enumerate() {
            let u = _mm256_xor_si256(load32(&ab.qs), flip);
            let q = &mut self.q[k + b];
            // SAFETY: `q` is 32 writable bytes; `storeu` needs no alignment.
            unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast(), u) };
            self.d[k + b] = f16_to_f32(ab.d);
        }
    }
}

/// [`tile8_gemm`]'s Q5_0 format: [`Tile8`], [`ActU`], [`dot_tile8`].
struct Q5_0Tile;

impl Tile8Format for Q5_0Tile {
    type W = BlockQ5_0;
    type A = BlockQ8_0;
    type Tile = Tile8;
    type Terms = ActU;
    const TILE_BLOCKS: usize = TILE_BLOCKS;
    const CAP: usize = ACT_CAP;
    const ACT_ROWS: usize = ACT_ROWS;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new() -> (Tile8, ActU) {
        let z = _mm256_setzero_si256();
        let t = Tile8 { w: [[z; 8]; TILE_BLOCKS], corr: [[z; 8]; TILE_BLOCKS], d: [_mm256_setzero_ps(); TILE_BLOCKS] };
        (t, ActU::new())
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack8(w: [&[BlockQ5_0]; 8], n: usize, t: &mut Tile8) {
        unpack8(w, n, t)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn fill(terms: &mut ActU, k: usize, a: &[BlockQ8_0]) {
        terms.fill(k, a)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot(t: &Tile8, a: &[BlockQ8_0], terms: &ActU, k: usize) -> __m256 {
        let e = k..k + a.len();
        dot_tile8(t, &terms.q[e.clone()], &terms.d[e])
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn long_rows(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], stride: usize) {
        // SAFETY: same CPU and buffer contract.
        unsafe { gemm_q5_0_q8_0_pairs_avx2(w, row_bytes, acts, act_row_bytes, out, stride) }
    }
}

/// The eight rows of `t` times one activation row (`q`, `d`: its [`ActU`]
/// entries, one per block): lane `p` of the result is bit-identical to
/// `dot_rows(w, a)[p]`. Lane `g` of [`dot_rows`]' accumulator for row `p`
/// is lane `p` of `acc[g]` here, and runs the same chain (`fma(d_w * d_a,
/// f32(lane sum), acc)`, the lane sum being the exact `sum (q - 16) * a`
/// over values `4g..4g + 4`); the eight lanes are then added in
/// [`hsum_ps`]' order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_tile8(t: &Tile8, q: &[[u8; 32]], d: &[f32]) -> __m256 {
    let n = q.len().min(d.len()).min(TILE_BLOCKS);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); 8];
    for b in 0..n {
        // lane p: f32(d_w[p]) * f32(d_a), as dot_rows' `d`.
        let db = _mm256_mul_ps(t.d[b], _mm256_set1_ps(d[b]));
        for (g, acc_g) in acc.iter_mut().enumerate() {
            let c = &q[b][4 * g..4 * g + 4];
            let ag = _mm256_set1_epi32(i32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            // (a + 128) * (q - 16) pair sums, |.| <= 2 * 255 * 16, minus
            // 128 * (q - 16) pair sums: (q - 16) * a, exact in i16.
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(ag, t.w[b][g]), t.corr[b][g]);
            *acc_g = _mm256_fmadd_ps(db, _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones)), *acc_g);
        }
    }
    // hsum_ps per output.
    sum_lanes8(acc)
}

/// Q5_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]):
/// eight weight rows are unpacked and transposed once into an L1-resident
/// [`Tile8`], then every activation row runs over the tile ([`dot_tile8`];
/// the driver is [`tile8_gemm`]). Every output equals [`gemv_q5_0_q8_0_avx2`]'s; rows of more than
/// [`TILE_BLOCKS`] blocks go through [`gemm_q5_0_q8_0_pairs_avx2`].
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
    // SAFETY: same CPU and buffer contract.
    unsafe { tile8_gemm::<Q5_0Tile>(w, row_bytes, acts, act_row_bytes, out, out_stride) }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    /// The gemv (four rows per pass, then single rows) equals the one-row
    /// kernel and the two-activation path of the prompt gemm
    /// ([`dot_rows_pair`], which converts four rows' scales at once and
    /// permutes them out: another route to the same products) bit for bit,
    /// on row lengths of 1 to 64 blocks (20: Gemma 3's 640 columns) and
    /// row counts that leave 0 to 3 single rows.
    #[test]
    fn gemv_equals_vec_dot_bit_for_bit() {
        if !crate::Tier::Avx2.is_available() {
            panic!("this x86_64 CPU lacks AVX2/FMA/F16C: the AVX2 Q5_0 gemv could not be checked");
        }
        let mut next = xorshift32(0x2545_f491_u32);
        let scale = |x: u32| half::f16::from_f32((x % 1000) as f32 * 1e-4 - 0.05);
        for nb in [1usize, 2, 3, 7, 8, 9, 20, 63, 64, 65] {
            for rows in [1usize, 3, 4, 6, 9, 37] {
                let w: Vec<BlockQ5_0> = (0..rows * nb)
                    .map(|_| BlockQ5_0 {
                        d: scale(next()),
                        qh: next().to_le_bytes(),
                        qs: core::array::from_fn(|_| next() as u8),
                    })
                    .collect();
                let a: Vec<BlockQ8_0> = (0..nb)
                    .map(|_| BlockQ8_0 {
                        d: scale(next()),
                        qs: core::array::from_fn(|_| ((next() % 255) as i32 - 127) as i8),
                    })
                    .collect();
                let row_bytes = nb * core::mem::size_of::<BlockQ5_0>();
                let (wb, ab): (&[u8], &[u8]) = (bytemuck::cast_slice(&w), bytemuck::cast_slice(&a));
                let mut out = vec![f32::NAN; rows];
                // SAFETY: AVX2/FMA/F16C checked above; whole blocks, `rows` rows of `nb` blocks.
                unsafe { gemv_q5_0_q8_0_avx2(wb, row_bytes, ab, &mut out) };
                let a2: Vec<u8> = [ab, ab].concat();
                let mut pair = vec![f32::NAN; 2 * rows];
                // SAFETY: as above; two activation rows of `nb` blocks, outputs `rows` apart.
                unsafe { gemm_q5_0_q8_0_pairs_avx2(wb, row_bytes, &a2, ab.len(), &mut pair, rows) };
                for (r, got) in out.iter().enumerate() {
                    // SAFETY: as above.
                    let want = unsafe { vec_dot_q5_0_q8_0_avx2(&w[r * nb..(r + 1) * nb], &a) };
                    assert_eq!(got.to_bits(), want.to_bits(), "nb={nb} rows={rows} row {r}: gemv vs vec_dot");
                    for c in 0..2 {
                        let p = pair[c * rows + r];
                        assert_eq!(got.to_bits(), p.to_bits(), "nb={nb} rows={rows} row {r}: gemv vs pair gemm {c}");
                    }
                }
            }
        }
    }
}
