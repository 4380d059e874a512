//! Building blocks shared by the AVX2 kernels: loads from block fields,
//! nibble and bit unpacking, the int8 dot-product idioms and horizontal sums.
//!
//! Every function is `#[target_feature(enable = "avx2,fma,f16c")]`: callable
//! without `unsafe` only from functions compiled for the same features (the
//! kernels), where they inline. Loads take references to fixed-size arrays,
//! so the only `unsafe` is the unaligned load itself, whose bounds the array
//! type proves.

use core::arch::x86_64::*;
use half::f16;

/// Horizontal sum of 8 f32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Horizontal sums of `R` 8-lane f32 vectors, as `[sum(v[0]), .., sum(v[R - 1])]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_rows<const R: usize>(v: [__m256; R]) -> [f32; R] {
    let mut out = [0.0; R];
    for (o, x) in out.iter_mut().zip(v) {
        *o = hsum_ps(x);
    }
    out
}

/// Horizontal sum of 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// One f16 to f32 with F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_to_f32(h: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
}

/// 32 bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load32<T: bytemuck::Pod>(q: &[T; 32]) -> __m256i {
    const { assert!(core::mem::size_of::<T>() == 1) };
    // SAFETY: `q` is 32 readable bytes (T is one byte); `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// 32 bytes at `q[off..off + 32]`, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load32_at<T: bytemuck::Pod, const N: usize>(q: &[T; N], off: usize) -> __m256i {
    const { assert!(core::mem::size_of::<T>() == 1) };
    let s: &[T; 32] = q[off..off + 32].try_into().unwrap();
    load32(s)
}

/// 16 bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load16<T: bytemuck::Pod>(q: &[T; 16]) -> __m128i {
    const { assert!(core::mem::size_of::<T>() == 1) };
    // SAFETY: `q` is 16 readable bytes; `loadu` needs no alignment.
    unsafe { _mm_loadu_si128(q.as_ptr().cast()) }
}

/// Signed int8 · signed int8: `x` and `y` as 32 i8 lanes, the products summed
/// in groups of four into 8 i32 lanes. Exact when `y` has no -128 lane
/// (activations from ember's quantizers lie in -127..=127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_i8(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
}

/// 16 i16, unaligned (the `bsums` of a Q8_K block).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_i16x16(q: &[i16; 16]) -> __m256i {
    // SAFETY: `q` is 32 readable bytes; `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// 8 bytes into the low half of a 128-bit vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load8(q: [u8; 8]) -> __m128i {
    _mm_cvtsi64_si128(i64::from_le_bytes(q))
}

/// A `shuffle_epi8` pattern that broadcasts i16 lane `lo` of each 128-bit
/// half into the low half and i16 lane `hi` into the high half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn i16_pick(lo: usize, hi: usize) -> __m256i {
    let p = |k: usize| ((2 * k + 1) << 8 | 2 * k) as i16;
    _mm256_set_m128i(_mm_set1_epi16(p(hi)), _mm_set1_epi16(p(lo)))
}

/// The eight 6-bit scales and eight 6-bit minimums of a Q4_K/Q5_K block,
/// unpacked from their 12 bytes (ggml's `get_scale_min_k4` for all eight).
#[inline]
pub(super) fn k4_scales_mins(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let w = |k: usize| u32::from_le_bytes([s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]]);
    let (u0, u1, u2) = (w(0), w(1), w(2));
    let sc_lo = u0 & KMASK1;
    let sc_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let mn_lo = u1 & KMASK1;
    let mn_hi = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let join = |a: u32, b: u32| (a as u64 | (b as u64) << 32).to_le_bytes();
    (join(sc_lo, sc_hi), join(mn_lo, mn_hi))
}

/// Two 16-byte halves into one vector: `lo` in lanes 0..16, `hi` in 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load16x2<T: bytemuck::Pod>(lo: &[T; 16], hi: &[T; 16]) -> __m256i {
    _mm256_set_m128i(load16(hi), load16(lo))
}

/// `[x ×4 | y ×4]` from two f16 scales.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16x2_halves(x: f16, y: f16) -> __m256 {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128((x.to_bits() as u32 | (y.to_bits() as u32) << 16) as i32));
    _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1))
}

/// From two (scale, minimum) f16 pairs of consecutive blocks: `[d0 ×4 | d1 ×4]`
/// and `[m0 ×4 | m1 ×4]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16x2x2_halves(d0: f16, m0: f16, d1: f16, m1: f16) -> (__m256, __m256) {
    let lo = d0.to_bits() as u64 | (m0.to_bits() as u64) << 16;
    let hi = d1.to_bits() as u64 | (m1.to_bits() as u64) << 16;
    let v = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi64_si128((lo | hi << 32) as i64)));
    (
        _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2)),
        _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3)),
    )
}

/// `[x, 0, 0, 0 | y, 0, 0, 0]` from two f16 values: added into an
/// accumulator whose halves belong to two blocks, it counts each value once.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16x2_once(x: f16, y: f16) -> __m256 {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128((x.to_bits() as u32 | (y.to_bits() as u32) << 16) as i32));
    let spread = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    _mm256_blend_ps::<0b0001_0001>(_mm256_setzero_ps(), spread)
}

/// The fifth bits of two Q5_0/Q5_1 blocks (`qh`, value j at bit j), laid out
/// as [`nibbles_pair`] lays out the nibbles: `0x10` in each lane whose bit is set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn bit4_pair(qh0: &[u8; 4], qh1: &[u8; 4]) -> (__m256i, __m256i) {
    let (h0, h1) = (u32::from_le_bytes(*qh0), u32::from_le_bytes(*qh1));
    // lo: values 0..16 of both blocks; hi: values 16..32.
    let lo = (h0 & 0xffff) | (h1 << 16);
    let hi = (h0 >> 16) | (h1 & 0xffff_0000);
    let both = _mm256_set1_epi64x((lo as u64 | (hi as u64) << 32) as i64);
    let spread = |shuf: __m256i| {
        let m = _mm256_or_si256(_mm256_shuffle_epi8(both, shuf), _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
        _mm256_and_si256(_mm256_cmpeq_epi8(m, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10))
    };
    (
        spread(_mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0)),
        spread(_mm256_set_epi64x(0x0707070707070707, 0x0606060606060606, 0x0505050505050505, 0x0404040404040404)),
    )
}

/// The activations of two 32-value blocks arranged to meet two blocks of
/// nibbles loaded with one [`load16x2`]: `lo` holds values 0..16 of each block
/// (`[a0[0..16] | a1[0..16]]`), `hi` values 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn act_pair(a0: &[i8; 32], a1: &[i8; 32]) -> (__m256i, __m256i) {
    fn half(q: &[i8; 32], k: usize) -> &[i8; 16] {
        q[16 * k..16 * k + 16].try_into().unwrap()
    }
    (load16x2(half(a0, 0), half(a1, 0)), load16x2(half(a0, 1), half(a1, 1)))
}

/// The nibbles of two Q4_0-style blocks loaded with one [`load16x2`]: low
/// nibbles (values 0..16 of each block) and high nibbles (values 16..32), as
/// bytes 0..=15 laid out as [`act_pair`] lays out activations.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn nibbles_pair(q0: &[u8; 16], q1: &[u8; 16]) -> (__m256i, __m256i) {
    let v = load16x2(q0, q1);
    let m = _mm256_set1_epi8(0x0f);
    (_mm256_and_si256(v, m), _mm256_and_si256(_mm256_srli_epi16::<4>(v), m))
}

/// How far ahead of the current block the kernels prefetch each weight row.
/// Measured on an EPYC (Zen 3) streaming from DRAM on one thread: 256 bytes
/// took Q4_0 at 49152×576 from ~55% to ~80% of the plain-read bandwidth;
/// 512 and 1024 were slightly worse.
pub(super) const PREFETCH: usize = 256;

/// Prefetches the cache line `bytes` past `p` into all cache levels (a hint:
/// it never faults, so the address may lie past the end of the row).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn prefetch_ahead<T>(p: &T, bytes: usize) {
    let ptr = (p as *const T).cast::<i8>().wrapping_add(bytes);
    // A hint with no architectural effect that never faults, whatever the
    // address; `wrapping_add` keeps the pointer arithmetic defined.
    _mm_prefetch::<_MM_HINT_T0>(ptr)
}

/// Prefetches, [`PREFETCH`] bytes ahead of `p`, every cache line a block of
/// type `T` spans (for blocks larger than a line: the k-quants).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn prefetch_block<T>(p: &T) {
    let mut off = 0;
    while off < core::mem::size_of::<T>() {
        prefetch_ahead(p, PREFETCH + off);
        off += 64;
    }
}
