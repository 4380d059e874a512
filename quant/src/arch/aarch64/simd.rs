//! NEON building blocks shared by the aarch64 kernels: bounds-checked loads,
//! the plain-NEON int8 dot step (`vmull_s8` + `vpadalq_s16`, what a Pi 4's
//! Cortex-A72 has), the SDOT step as a macro, and f16 → f32 conversion with
//! the base-ARMv8 `fcvt`/`fcvtl` instructions (no FEAT_FP16 needed).
//!
//! The helpers are safe `#[target_feature(enable = "neon")]` functions: the
//! kernels that call them are NEON functions themselves, so they inline and
//! the calls need no `unsafe`.

use core::arch::aarch64::*;
use half::{bf16, f16};

/// Loads 16 bytes from the start of `s`.
///
/// # Panics
/// If `s` holds fewer than 16 bytes (kernels pass fixed-size block fields, so
/// the check folds away).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_u8(s: &[u8]) -> uint8x16_t {
    assert!(s.len() >= 16);
    // SAFETY: 16 readable bytes checked above; `vld1q_u8` has no alignment requirement.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// Loads 16 signed bytes from the start of `s` (panics if fewer).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_s8(s: &[i8]) -> int8x16_t {
    assert!(s.len() >= 16);
    // SAFETY: 16 readable bytes checked above; no alignment requirement.
    unsafe { vld1q_s8(s.as_ptr()) }
}

/// Loads 8 `i16` from the start of `s` (panics if fewer).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_s16(s: &[i16]) -> int16x8_t {
    assert!(s.len() >= 8);
    // SAFETY: 8 readable `i16` checked above; `s` is a `&[i16]`, so aligned.
    unsafe { vld1q_s16(s.as_ptr()) }
}

/// Loads 4 `f32` from the start of `s` (panics if fewer).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_f32(s: &[f32]) -> float32x4_t {
    assert!(s.len() >= 4);
    // SAFETY: 4 readable `f32` checked above; `s` is a `&[f32]`, so aligned.
    unsafe { vld1q_f32(s.as_ptr()) }
}

/// Stores 4 `f32` at the start of `s` (panics if fewer).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn st_f32(s: &mut [f32], v: float32x4_t) {
    assert!(s.len() >= 4);
    // SAFETY: 4 writable `f32` checked above; `s` is a `&mut [f32]`, so aligned.
    unsafe { vst1q_f32(s.as_mut_ptr(), v) }
}

/// Loads 8 f16 values (as their bit patterns) from the start of `s` (panics if fewer).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_f16_bits(s: &[f16]) -> uint16x8_t {
    assert!(s.len() >= 8);
    // SAFETY: 8 readable values checked above; `f16` is `repr(transparent)`
    // over `u16`, so the pointer is a valid, aligned `*const u16`.
    unsafe { vld1q_u16(s.as_ptr().cast::<u16>()) }
}

/// Loads 8 bf16 values (as their bit patterns) from the start of `s` (panics if fewer).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_bf16_bits(s: &[bf16]) -> uint16x8_t {
    assert!(s.len() >= 8);
    // SAFETY: 8 readable values checked above; `bf16` is `repr(transparent)`
    // over `u16`, so the pointer is a valid, aligned `*const u16`.
    unsafe { vld1q_u16(s.as_ptr().cast::<u16>()) }
}

/// Loads 8 bytes from the start of `s` (panics if fewer).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn ld_u8x8(s: &[u8]) -> uint8x8_t {
    assert!(s.len() >= 8);
    // SAFETY: 8 readable bytes checked above; no alignment requirement.
    unsafe { vld1_u8(s.as_ptr()) }
}

/// Stores 16 signed bytes at the start of `s` (panics if `s` is shorter).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn st_s8(s: &mut [i8], v: int8x16_t) {
    assert!(s.len() >= 16);
    // SAFETY: 16 writable bytes checked above (exclusive borrow); no alignment requirement.
    unsafe { vst1q_s8(s.as_mut_ptr(), v) }
}

/// Narrows 16 `i32` lanes (4 vectors, in order) to 16 `i8` by truncation,
/// as C's assignment of an `int` to an `int8_t` does.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn narrow_i32x16(v: [int32x4_t; 4]) -> int8x16_t {
    let lo = vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1]));
    let hi = vcombine_s16(vmovn_s32(v[2]), vmovn_s32(v[3]));
    vcombine_s8(vmovn_s16(lo), vmovn_s16(hi))
}

/// `acc + Σ a·b` over 16 int8 lanes, folded into 4 `i32` lanes, with plain
/// NEON: widening multiplies to `i16` (|product| ≤ 16384, so exact) then
/// widening pairwise adds into `acc` (exact in `i32`).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn dot_i8(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    let hi = vmull_high_s8(a, b);
    vpadalq_s16(vpadalq_s16(acc, lo), hi)
}

/// Converts one f16 to f32 with the scalar `fcvt` of base ARMv8 (exact, like
/// `f16::to_f32`, without `half`'s software path on targets lacking FEAT_FP16).
#[inline(always)]
pub(super) fn h2f(h: f16) -> f32 {
    let r: f32;
    // SAFETY: `fcvt s, h` is part of the base ARMv8-A floating point unit every
    // aarch64 CPU has; it only reads and writes the named registers.
    unsafe {
        core::arch::asm!(
            "fcvt {r:s}, {h:h}",
            r = lateout(vreg) r,
            h = in(vreg) h.to_bits() as u32,
            options(pure, nomem, nostack)
        )
    };
    r
}

/// Widens 8 f16 values (bit patterns) to two vectors of 4 f32 with `fcvtl` /
/// `fcvtl2`, base Advanced SIMD instructions (exact conversion).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f16x8_to_f32(v: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let lo: float32x4_t;
    let hi: float32x4_t;
    // SAFETY: FCVTL/FCVTL2 from half precision are base ARMv8 Advanced SIMD
    // (this function requires NEON); registers only. `lo` is an early `out`
    // so it cannot share `v`'s register before the second instruction reads it.
    unsafe {
        core::arch::asm!(
            "fcvtl {lo:v}.4s, {v:v}.4h",
            "fcvtl2 {hi:v}.4s, {v:v}.8h",
            v = in(vreg) v,
            lo = out(vreg) lo,
            hi = lateout(vreg) hi,
            options(pure, nomem, nostack)
        )
    };
    (lo, hi)
}

/// `acc + Σ a·b` over 16 int8 lanes with one SDOT (4 groups of 4 products per
/// `i32` lane). Expand it only inside `#[target_feature(enable = "neon,dotprod")]`
/// functions: the assembler rejects `sdot` anywhere else ("instruction
/// requires: dotprod"), so SDOT can never be gated on NEON alone.
macro_rules! sdot {
    ($acc:expr, $a:expr, $b:expr) => {{
        let mut acc: core::arch::aarch64::int32x4_t = $acc;
        let a: core::arch::aarch64::int8x16_t = $a;
        let b: core::arch::aarch64::int8x16_t = $b;
        // SAFETY: expanded only in functions enabled for `dotprod` (checked by
        // the assembler), which callers reach only after detecting it; the
        // instruction touches only these registers.
        unsafe {
            core::arch::asm!(
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        acc
    }};
}
pub(super) use sdot;

/// The loop shared by the 32-value block formats: blocks two at a time into
/// two independent `f32x4` accumulators through `$block(acc, &w, &a) -> acc`,
/// an odd last block through the generic kernel `$generic`, and the sum.
/// Only the common prefix of `$w` and `$a` is used.
macro_rules! two_block_sum {
    ($w:expr, $a:expr, $block:ident, $generic:path) => {{
        let (w, a) = ($w, $a);
        debug_assert_eq!(w.len(), a.len());
        let n = w.len().min(a.len());
        let even = n & !1;
        let (mut acc0, mut acc1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        for (x, y) in w[..even].chunks_exact(2).zip(a[..even].chunks_exact(2)) {
            acc0 = $block(acc0, &x[0], &y[0]);
            acc1 = $block(acc1, &x[1], &y[1]);
        }
        let mut sum = vaddvq_f32(vaddq_f32(acc0, acc1));
        if even < n {
            sum += $generic(&w[even..n], &a[even..n]);
        }
        sum
    }};
}
pub(super) use two_block_sum;

/// [`two_block_sum`] for four weight rows against one activation row, each
/// row's result bit-identical to `two_block_sum` on that row alone (same
/// accumulators, same order of operations), so a row's value never depends
/// on which rows share its `gemv` call (or thread). Each activation block is
/// loaded once for the four rows. Rows must hold at least `a.len()` blocks.
macro_rules! two_block_sum4 {
    ($rows:expr, $a:expr, $block:ident, $generic:path) => {{
        let a = $a;
        let n = a.len();
        let [w0, w1, w2, w3] = $rows.map(|r| &r[..n]);
        let even = n & !1;
        let z = vdupq_n_f32(0.0);
        // Written out for the four rows (a loop over an array of accumulators
        // is not unrolled by LLVM here and spills them to the stack).
        let (mut e0, mut e1, mut e2, mut e3) = (z, z, z, z);
        let (mut o0, mut o1, mut o2, mut o3) = (z, z, z, z);
        for i in (0..even).step_by(2) {
            let (ye, yo) = (&a[i], &a[i + 1]);
            e0 = $block(e0, &w0[i], ye);
            e1 = $block(e1, &w1[i], ye);
            e2 = $block(e2, &w2[i], ye);
            e3 = $block(e3, &w3[i], ye);
            o0 = $block(o0, &w0[i + 1], yo);
            o1 = $block(o1, &w1[i + 1], yo);
            o2 = $block(o2, &w2[i + 1], yo);
            o3 = $block(o3, &w3[i + 1], yo);
        }
        let finish = |e, o, w: &[_]| {
            let mut sum = vaddvq_f32(vaddq_f32(e, o));
            if even < n {
                sum += $generic(&w[even..n], &a[even..n]);
            }
            sum
        };
        [finish(e0, o0, w0), finish(e1, o1, w1), finish(e2, o2, w2), finish(e3, o3, w3)]
    }};
}
pub(super) use two_block_sum4;

/// The loop of the 256-value formats: `Σ $block(&w[i], &a[i]) -> f32` in
/// block order, over the common prefix of `$w` and `$a`.
macro_rules! block_sum {
    ($w:expr, $a:expr, $block:ident) => {{
        let (w, a) = ($w, $a);
        debug_assert_eq!(w.len(), a.len());
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            sum += $block(x, y);
        }
        sum
    }};
}
pub(super) use block_sum;

/// [`block_sum`] for four weight rows against one activation row, each row's
/// result bit-identical to `block_sum` on that row alone. Rows must hold at
/// least `a.len()` blocks.
macro_rules! block_sum4 {
    ($rows:expr, $a:expr, $block:ident) => {{
        let a = $a;
        let [w0, w1, w2, w3] = $rows.map(|r| &r[..a.len()]);
        let (mut s0, mut s1, mut s2, mut s3) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for (i, y) in a.iter().enumerate() {
            s0 += $block(&w0[i], y);
            s1 += $block(&w1[i], y);
            s2 += $block(&w2[i], y);
            s3 += $block(&w3[i], y);
        }
        [s0, s1, s2, s3]
    }};
}
pub(super) use block_sum4;
