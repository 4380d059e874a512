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

/// The 32 nibbles of a Q4_0-style `qs` as bytes 0..=15: value `j` (low nibble of
/// byte `j`) in lane `j`, value `j + 16` (high nibble) in lane `j + 16`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn nibbles32(qs: &[u8; 16]) -> __m256i {
    let lo = load16(qs);
    let hi = _mm_srli_epi16::<4>(lo);
    _mm256_and_si256(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(0x0f))
}

/// The 32 bits of `qh` (little-endian) spread to bytes: lane `j` is `0x10`
/// where bit `j` is set, else 0 (the fifth bit of Q5_0/Q5_1 values).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn bit4_from_bits32(qh: &[u8; 4]) -> __m256i {
    let bits = _mm256_set1_epi32(i32::from_le_bytes(*qh));
    // Byte j of the result takes byte j / 8 of the word...
    let shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    let bytes = _mm256_shuffle_epi8(bits, shuf);
    // ...and keeps bit j % 8 of it: set every other bit, compare with all-ones.
    let m = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    _mm256_and_si256(_mm256_cmpeq_epi8(m, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10))
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

/// Unsigned · signed int8 (`u` in 0..=127 per lane keeps the pairwise i16
/// sums exact), summed in groups of four into 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_u8i8(u: __m256i, s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
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
