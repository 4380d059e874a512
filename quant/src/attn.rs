//! The inner loops of attention over an f16 KV cache, in the float order of
//! ggml's one-row CPU flash attention
//! (`ggml_compute_forward_flash_attn_ext_f16_one_chunk`, which llama.cpp runs
//! for batches under 64 tokens):
//! - [`dot_f16_generic`]: `k · q` with `k` an f16 cache row and `q` a query
//!   already rounded to f16, summed in the order of `ggml_vec_dot_f16` in an
//!   AVX-512 build (the build llama.cpp's reference outputs came from);
//! - [`mad_f16_ph_generic`]: `acc = f16(v·s + acc)` rounded once, the
//!   `_mm512_fmadd_ph` of `ggml_vec_mad_f16` in an AVX512-FP16 build (the
//!   value accumulator kept in f16), for whole 128-value steps;
//! - [`mad_f16_generic`]: `acc = f16(fma(v, s, acc))`, rounded through f32
//!   (the scalar tail of `ggml_vec_mad_f16`);
//! - [`scale_f16_generic`]: `acc = f16(acc * s)` (`ggml_vec_scale_f16`).
//!
//! and the helpers of the f32-accumulating path ember takes for larger
//! batches: [`widen_f16_generic`] (an f16 row to f32),
//! [`dot_f32_x4_generic`] (four scores at once, each summed in f64 in order),
//! and [`mad_f32_generic`] (`acc = fma(v, s, acc)`).
//!
//! The accumulators are f32 slices holding f16 values. The SIMD versions
//! (AVX2 + F16C, NEON) compute bit-identical results; they are reached through
//! [`Kernels::attn`](crate::Kernels).

use half::f16;

/// `k · q` (see the module docs). `k.len() == q.len()`.
pub type DotF16Fn = unsafe fn(k: &[f16], q: &[f32]) -> f32;
/// `acc[i] = f16(fma(v[i], s, acc[i]))` ([`mad_f16_generic`]) or, for
/// [`AttnEntry::mad_f16_ph`], the same rounded once ([`mad_f16_ph_generic`]).
/// `acc.len() == v.len()`.
pub type MadF16Fn = unsafe fn(acc: &mut [f32], v: &[f16], s: f32);
/// `acc[i] = f16(acc[i] * s)`.
pub type ScaleF16Fn = unsafe fn(acc: &mut [f32], s: f32);
/// Scores of several cached key rows: `out[j] = dot(rows[j], q)` as
/// [`DotF16Fn`]. `out.len() == rows.len()`, every `rows[j].len() == q.len()`.
pub type DotsF16Fn = unsafe fn(rows: &[&[f16]], q: &[f32], out: &mut [f32]);
/// One head's value accumulation over several positions, in order: for each
/// `j`, `acc` rescaled by `ms[j]` unless it is 1.0 (`ggml_vec_scale_f16`),
/// then `rows[j]` times `vs[j]` added (`ggml_vec_mad_f16`), each split at
/// [`F16_STEP`] as [`crate::Kernels::attn_scale_f16`] and
/// [`crate::Kernels::attn_mad_f16`] split it ([`mads_f16_generic`]).
/// `ms.len() == vs.len() == rows.len()`, every `rows[j].len() == acc.len()`.
pub type MadsF16Fn = unsafe fn(acc: &mut [f32], rows: &[&[f16]], ms: &[f32], vs: &[f32]);
/// `dst[i] = src[i]` widened to f32. `dst.len() == src.len()`.
pub type WidenF16Fn = unsafe fn(src: &[f16], dst: &mut [f32]);
/// Four dot products of `k` with the columns of `qt` (`[k.len()][4]`, four
/// queries interleaved): `out[h] = sum_d f64(k[d] * qt[4d + h])`, summed in
/// order of `d` from 0, then rounded to f32. `qt.len() == 4 * k.len()`.
pub type DotF32x4Fn = unsafe fn(k: &[f32], qt: &[f32], out: &mut [f32; 4]);
/// [`DotF32x4Fn`] for two key rows of the same length: `out[j]` is the
/// result for `k[j]`. `qt.len() == 4 * k[0].len()`, `k[1].len() == k[0].len()`.
pub type DotF32x4PairFn = unsafe fn(k0: &[f32], k1: &[f32], qt: &[f32], out: &mut [[f32; 4]; 2]);
/// `acc[i] = fma(v[i], s, acc[i])` (`ggml_vec_mad_f32`). `acc.len() == v.len()`.
pub type MadF32Fn = unsafe fn(acc: &mut [f32], v: &[f32], s: f32);

/// The f16 attention kernels of one tier.
///
/// # Safety of the pointers
/// Each function may be called only on a CPU that supports `tier`, with the
/// lengths its type alias states (the safe methods of [`crate::Kernels`]
/// check them).
#[derive(Clone, Copy)]
pub struct AttnEntry {
    /// Tier of the functions.
    pub tier: crate::Tier,
    /// Score of one cached key row.
    pub dot_f16: DotF16Fn,
    /// Accumulation of one cached value row, rounded through f32 (the
    /// scalar tail of `ggml_vec_mad_f16`).
    pub mad_f16: MadF16Fn,
    /// Accumulation of one cached value row in f16 arithmetic, rounded once
    /// (`_mm512_fmadd_ph`, the whole 128-value steps of an AVX512-FP16 build).
    pub mad_f16_ph: MadF16Fn,
    /// Rescaling of an accumulator.
    pub scale_f16: ScaleF16Fn,
    /// Scores of several cached key rows (one call per block of positions).
    pub dots_f16: DotsF16Fn,
    /// Rescaling and accumulation of several cached value rows.
    pub mads_f16: MadsF16Fn,
    /// f16 → f32 of a cache row.
    pub widen_f16: WidenF16Fn,
    /// Four f32 scores of one cached key row.
    pub dot_f32_x4: DotF32x4Fn,
    /// Four f32 scores of each of two cached key rows.
    pub dot_f32_x4_pair: DotF32x4PairFn,
    /// Accumulation of one value row in f32.
    pub mad_f32: MadF32Fn,
}

impl AttnEntry {
    /// The portable versions.
    pub const fn generic() -> AttnEntry {
        AttnEntry {
            tier: crate::Tier::Generic,
            dot_f16: dot_f16_generic,
            mad_f16: mad_f16_generic,
            mad_f16_ph: mad_f16_ph_generic,
            scale_f16: scale_f16_generic,
            dots_f16: dots_f16_generic,
            mads_f16: mads_f16_generic,
            widen_f16: widen_f16_generic,
            dot_f32_x4: dot_f32_x4_generic,
            dot_f32_x4_pair: dot_f32_x4_pair_generic,
            mad_f32: mad_f32_generic,
        }
    }
}

/// Values per SIMD step of `ggml_vec_mad_f16` and `ggml_vec_scale_f16` in
/// llama.cpp's reference build (`GGML_F16_STEP` with AVX512-FP16). That
/// build's CPU had AVX512-FP16, so those loops run on `__m512h`: the scale
/// is broadcast as an f16 (`_mm512_set1_ph`) and `_mm512_fmadd_ph` /
/// `_mm512_mul_ph` round once to f16 ([`mad_f16_ph_generic`]). The values
/// past the last whole step (all of them for head dims under 128, like
/// SmolLM2's 64) go through the scalar tail with the f32 scale, an f32 FMA
/// and then the f16 rounding ([`mad_f16_generic`]). Found on Gemma 3 (head
/// dim 256): with the f16 scale and the f16 FMA rounded once all 6 of its
/// reference prompts match; with the f16 scale but the FMA rounded through
/// f32, 5; with neither, 1.
pub const F16_STEP: usize = 128;

/// `x` rounded to the nearest f16 (ties to even), as an f32.
#[inline(always)]
pub(crate) fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// `a * b + c` with one rounding for `a`, `b` f32 widened from f16 or f32:
/// the product is exact in f64, so only a double rounding of the f64 sum
/// (probability about 2^-29 per call, then hidden by the f16 rounding that
/// follows in almost every case) can differ from an FMA instruction.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    (a as f64 * b as f64 + c as f64) as f32
}

/// `k · q` in `ggml_vec_dot_f16`'s AVX-512 order: four accumulators of 16
/// lanes over steps of 64 values, reduced `(a0+a2) + (a1+a3)`, then the
/// halving tree of `_mm512_reduce_add_ps`; values past a multiple of 64 are
/// added in f64. Products of two f16 are exact in f32.
pub fn dot_f16_generic(k: &[f16], q: &[f32]) -> f32 {
    let n = q.len().min(k.len());
    let np = n & !63;
    let mut acc = [[0.0f32; 16]; 4];
    for (kc, qc) in k[..np].chunks_exact(64).zip(q[..np].chunks_exact(64)) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, v) in a.iter_mut().enumerate() {
                *v += kc[16 * j + l].to_f32() * qc[16 * j + l];
            }
        }
    }
    let mut a = [0.0f32; 16];
    for l in 0..16 {
        a[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    }
    let mut t3 = [0.0f32; 8];
    for i in 0..8 {
        t3[i] = a[i + 8] + a[i];
    }
    let mut t6 = [0.0f32; 4];
    for i in 0..4 {
        t6[i] = t3[i + 4] + t3[i];
    }
    let mut sum = ((t6[0] + t6[2]) + (t6[1] + t6[3])) as f64;
    for i in np..n {
        sum += (k[i].to_f32() * q[i]) as f64;
    }
    sum as f32
}

/// `acc[i] = f16(fma(v[i], s, acc[i]))` (`ggml_vec_mad_f16`).
pub fn mad_f16_generic(acc: &mut [f32], v: &[f16], s: f32) {
    for (x, &y) in acc.iter_mut().zip(v) {
        *x = round_f16(fma(y.to_f32(), s, *x));
    }
}

/// `a · b + c` for f16 values `a`, `b` and `c` (held in f32), rounded once
/// to f16 as `vfmadd231ph` does. The product is exact in f32 (22
/// significant bits) and the sum's rounding error `err` is exact (TwoSum), so
/// rounding the f32 sum to odd (stepping one f32 ulp toward the exact value
/// when it is inexact and even) keeps every bit that decides the f16
/// rounding: f32 has 13 more bits than f16, and round-to-odd needs 2. Non-finite
/// sums are kept as they are.
#[inline(always)]
pub fn fma_f16_once(a: f32, b: f32, c: f32) -> f32 {
    let p = a * b;
    let sum = p + c;
    let bb = sum - p;
    let err = (p - (sum - bb)) + (c - bb);
    let bits = sum.to_bits();
    let odd = if err != 0.0 && bits & 1 == 0 && sum.is_finite() {
        if (err > 0.0) == (sum > 0.0) {
            bits + 1
        } else {
            bits - 1
        }
    } else {
        bits
    };
    round_f16(f32::from_bits(odd))
}

/// `acc[i] = f16(v[i] · s + acc[i])` rounded once ([`fma_f16_once`]): the
/// `_mm512_fmadd_ph` of `ggml_vec_mad_f16` in an AVX512-FP16 build. `s` and
/// `acc` must hold f16 values.
pub fn mad_f16_ph_generic(acc: &mut [f32], v: &[f16], s: f32) {
    for (x, &y) in acc.iter_mut().zip(v) {
        *x = fma_f16_once(y.to_f32(), s, *x);
    }
}

/// `acc[i] = f16(acc[i] * s)` (`ggml_vec_scale_f16`).
pub fn scale_f16_generic(acc: &mut [f32], s: f32) {
    for x in acc.iter_mut() {
        *x = round_f16(*x * s);
    }
}

/// See [`DotsF16Fn`]: [`dot_f16_generic`] of each row.
pub fn dots_f16_generic(rows: &[&[f16]], q: &[f32], out: &mut [f32]) {
    for (o, k) in out.iter_mut().zip(rows) {
        *o = dot_f16_generic(k, q);
    }
}

/// See [`MadsF16Fn`]: position by position, [`scale_f16_generic`] (unless
/// `ms[j]` is 1.0) and then the value row added, the first `len &
/// !(F16_STEP - 1)` values with the scale rounded to f16 and
/// [`mad_f16_ph_generic`], the rest with [`mad_f16_generic`]. Skipping a
/// rescaling by 1.0 changes no bit: the accumulator holds f16 values, which
/// `f16(x * 1.0)` returns unchanged.
pub fn mads_f16_generic(acc: &mut [f32], rows: &[&[f16]], ms: &[f32], vs: &[f32]) {
    // SAFETY: the generic functions run on any CPU and take any lengths.
    unsafe { mads_f16_by_steps(acc, rows, ms, vs, scale_f16_generic, mad_f16_ph_generic, mad_f16_generic) }
}

/// [`mads_f16_generic`]'s order through one tier's one-row kernels: per
/// position `scale` (unless `ms[j]` is 1.0), then `mad_ph` on the first
/// `len & !(F16_STEP - 1)` values with the scales rounded to f16 and `mad`
/// on the rest.
///
/// # Safety
/// The CPU supports the kernels' tier; every row has `acc.len()` values.
pub(crate) unsafe fn mads_f16_by_steps(
    acc: &mut [f32],
    rows: &[&[f16]],
    ms: &[f32],
    vs: &[f32],
    scale: ScaleF16Fn,
    mad_ph: MadF16Fn,
    mad: MadF16Fn,
) {
    let np = acc.len() & !(F16_STEP - 1);
    let (a0, a1) = acc.split_at_mut(np);
    for ((v, &m), &s) in rows.iter().zip(ms).zip(vs) {
        // SAFETY: the caller's; the halves and the row are split alike.
        unsafe {
            if m != 1.0 {
                scale(a0, round_f16(m));
                scale(a1, m);
            }
            mad_ph(a0, &v[..np], round_f16(s));
            mad(a1, &v[np..], s);
        }
    }
}

/// `dst[i] = src[i]` as f32 (exact).
pub fn widen_f16_generic(src: &[f16], dst: &mut [f32]) {
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = x.to_f32();
    }
}

/// See [`DotF32x4Fn`].
pub fn dot_f32_x4_generic(k: &[f32], qt: &[f32], out: &mut [f32; 4]) {
    let mut sum = [0.0f64; 4];
    for (&kd, q) in k.iter().zip(qt.chunks_exact(4)) {
        for h in 0..4 {
            sum[h] += (kd * q[h]) as f64;
        }
    }
    *out = sum.map(|x| x as f32);
}

/// See [`DotF32x4PairFn`]: [`dot_f32_x4_generic`] of each row.
pub fn dot_f32_x4_pair_generic(k0: &[f32], k1: &[f32], qt: &[f32], out: &mut [[f32; 4]; 2]) {
    dot_f32_x4_generic(k0, qt, &mut out[0]);
    dot_f32_x4_generic(k1, qt, &mut out[1]);
}

/// `acc[i] = fma(v[i], s, acc[i])` (`ggml_vec_mad_f32`; the FMA through
/// f64 as in [`mad_f16_generic`]).
pub fn mad_f32_generic(acc: &mut [f32], v: &[f32], s: f32) {
    for (x, &y) in acc.iter_mut().zip(v) {
        *x = fma(y, s, *x);
    }
}

impl crate::Kernels {
    /// [`dot_f32_x4_pair_generic`] through the table. `qt` must hold
    /// `4 * k0.len()` values and `k1` as many as `k0`.
    pub fn attn_dot_f32_x4_pair(&self, k0: &[f32], k1: &[f32], qt: &[f32]) -> Result<[[f32; 4]; 2], crate::Error> {
        if qt.len() != 4 * k0.len() || k1.len() != k0.len() {
            return Err(crate::Error::Length { what: "interleaved queries", expected: 4 * k0.len(), got: qt.len() });
        }
        let mut out = [[0.0f32; 4]; 2];
        // SAFETY: the table holds the entry of a tier this CPU supports; lengths checked above.
        unsafe { (self.attn.dot_f32_x4_pair)(k0, k1, qt, &mut out) };
        Ok(out)
    }

    /// [`mad_f32_generic`] through the table. `acc` and `v` must have the same length.
    pub fn attn_mad_f32(&self, acc: &mut [f32], v: &[f32], s: f32) -> Result<(), crate::Error> {
        if acc.len() != v.len() {
            return Err(crate::Error::Length { what: "attention value row", expected: acc.len(), got: v.len() });
        }
        // SAFETY: the table holds the entry of a tier this CPU supports; lengths checked above.
        unsafe { (self.attn.mad_f32)(acc, v, s) };
        Ok(())
    }

    /// [`widen_f16_generic`] through the table. `src` and `dst` must have the same length.
    pub fn attn_widen_f16(&self, src: &[f16], dst: &mut [f32]) -> Result<(), crate::Error> {
        if src.len() != dst.len() {
            return Err(crate::Error::Length { what: "f16 row to widen", expected: dst.len(), got: src.len() });
        }
        // SAFETY: the table holds the entry of a tier this CPU supports; lengths checked above.
        unsafe { (self.attn.widen_f16)(src, dst) };
        Ok(())
    }

    /// [`dot_f32_x4_generic`] through the table. `qt` must hold `4 * k.len()` values.
    pub fn attn_dot_f32_x4(&self, k: &[f32], qt: &[f32]) -> Result<[f32; 4], crate::Error> {
        if qt.len() != 4 * k.len() {
            return Err(crate::Error::Length { what: "interleaved queries", expected: 4 * k.len(), got: qt.len() });
        }
        let mut out = [0.0f32; 4];
        // SAFETY: as in `attn_widen_f16`; lengths checked above.
        unsafe { (self.attn.dot_f32_x4)(k, qt, &mut out) };
        Ok(out)
    }

    /// [`dot_f16_generic`] through the table. `k` and `q` must have the same length.
    pub fn attn_dot_f16(&self, k: &[f16], q: &[f32]) -> Result<f32, crate::Error> {
        if k.len() != q.len() {
            return Err(crate::Error::Length { what: "attention key row", expected: q.len(), got: k.len() });
        }
        // SAFETY: the table holds the entry of a tier this CPU supports; lengths checked above.
        Ok(unsafe { (self.attn.dot_f16)(k, q) })
    }

    /// [`dot_f16_generic`] of each of `rows` with `q` through the table, into
    /// `out` (as many values as rows). Every row must have `q.len()` values.
    pub fn attn_dots_f16(&self, rows: &[&[f16]], q: &[f32], out: &mut [f32]) -> Result<(), crate::Error> {
        if out.len() != rows.len() {
            return Err(crate::Error::Length { what: "attention scores", expected: rows.len(), got: out.len() });
        }
        if let Some(k) = rows.iter().find(|k| k.len() != q.len()) {
            return Err(crate::Error::Length { what: "attention key row", expected: q.len(), got: k.len() });
        }
        // SAFETY: the table holds the entry of a tier this CPU supports; lengths checked above.
        unsafe { (self.attn.dots_f16)(rows, q, out) };
        Ok(())
    }

    /// One head's value accumulation over positions in order through the
    /// table ([`MadsF16Fn`]): for each `j`, [`Self::attn_scale_f16`] by
    /// `ms[j]` unless it is 1.0, then [`Self::attn_mad_f16`] of `rows[j]`
    /// and `vs[j]`, bit for bit. `ms` and `vs` hold one value per row, and
    /// every row has `acc.len()` values.
    pub fn attn_mads_f16(&self, acc: &mut [f32], rows: &[&[f16]], ms: &[f32], vs: &[f32]) -> Result<(), crate::Error> {
        if ms.len() != rows.len() || vs.len() != rows.len() {
            return Err(crate::Error::Length {
                what: "attention weights",
                expected: rows.len(),
                got: ms.len().min(vs.len()),
            });
        }
        if let Some(v) = rows.iter().find(|v| v.len() != acc.len()) {
            return Err(crate::Error::Length { what: "attention value row", expected: acc.len(), got: v.len() });
        }
        // SAFETY: the table holds the entry of a tier this CPU supports; lengths checked above.
        unsafe { (self.attn.mads_f16)(acc, rows, ms, vs) };
        Ok(())
    }

    /// `ggml_vec_mad_f16` of llama.cpp's reference build: for the first
    /// `len & !(F16_STEP - 1)` values (see [`F16_STEP`]) `s` rounded to f16
    /// and [`mad_f16_ph_generic`], for the rest [`mad_f16_generic`], both
    /// through the table. `acc` and `v` must have the same length.
    pub fn attn_mad_f16(&self, acc: &mut [f32], v: &[f16], s: f32) -> Result<(), crate::Error> {
        if acc.len() != v.len() {
            return Err(crate::Error::Length { what: "attention value row", expected: acc.len(), got: v.len() });
        }
        let np = acc.len() & !(F16_STEP - 1);
        let (a0, a1) = acc.split_at_mut(np);
        // SAFETY: as in `attn_dot_f16`; lengths checked above, split alike.
        unsafe {
            (self.attn.mad_f16_ph)(a0, &v[..np], round_f16(s));
            (self.attn.mad_f16)(a1, &v[np..], s);
        }
        Ok(())
    }

    /// `ggml_vec_scale_f16` of llama.cpp's reference build: [`scale_f16_generic`]
    /// through the table, with `s` rounded to f16 for the first
    /// `len & !(F16_STEP - 1)` values (see [`F16_STEP`]).
    pub fn attn_scale_f16(&self, acc: &mut [f32], s: f32) {
        let np = acc.len() & !(F16_STEP - 1);
        let (a0, a1) = acc.split_at_mut(np);
        // SAFETY: the table holds the entry of a tier this CPU supports; any length is valid.
        unsafe {
            (self.attn.scale_f16)(a0, round_f16(s));
            (self.attn.scale_f16)(a1, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_sums_in_ggml_avx512_order() {
        // 64 values: lane l of accumulator j holds the single product of value 16j + l.
        let k: [f16; 64] = core::array::from_fn(|i| f16::from_f32(if i == 0 { 1.0 } else { 1.0 / 1024.0 }));
        let mut q = [1.0f32; 64];
        q[0] = 4096.0;
        // 4096 + 2^-10 + ... depends on the order of the sums: check against
        // the tree written out.
        let p: [f32; 64] = core::array::from_fn(|i| k[i].to_f32() * q[i]);
        let a: [f32; 16] = core::array::from_fn(|l| (p[l] + p[32 + l]) + (p[16 + l] + p[48 + l]));
        let t3: [f32; 8] = core::array::from_fn(|i| a[i + 8] + a[i]);
        let t6: [f32; 4] = core::array::from_fn(|i| t3[i + 4] + t3[i]);
        let want = (t6[0] + t6[2]) + (t6[1] + t6[3]);
        assert_eq!(dot_f16_generic(&k, &q).to_bits(), want.to_bits());
        // a 3-value tail is summed in f64 after the block
        let k3 = [f16::from_f32(0.5); 3];
        assert_eq!(dot_f16_generic(&k3, &[2.0, 4.0, 8.0]), 7.0);
        assert_eq!(dot_f16_generic(&[], &[]), 0.0);
    }

    /// `x` rounded once to the nearest f16 (ties to even) by scaling to the
    /// f16 ulp in f64: written independently of [`fma_f16_once`].
    fn f16_of_f64(x: f64) -> f32 {
        if x == 0.0 {
            return x as f32;
        }
        let mut e = 0i32;
        while x.abs() >= 2f64.powi(e + 1) {
            e += 1;
        }
        while x.abs() < 2f64.powi(e) {
            e -= 1;
        }
        let ulp = 2f64.powi(e.max(-14) - 10);
        let r = (x / ulp).round_ties_even() * ulp;
        if r.abs() >= 65520.0 {
            f32::INFINITY.copysign(x as f32)
        } else {
            r as f32
        }
    }

    #[test]
    fn f16_fma_rounds_once() {
        // exact: 1 + 2^-11 + 2^-31, just above the midpoint of 1 and
        // 1 + 2^-10. Through f32 it becomes the midpoint and ties to 1.0.
        let (a, b, c) = (1.0 + 2f32.powi(-10), -(2f32.powi(-11) * (1.0 - 2f32.powi(-10))), 1.0 + 2f32.powi(-10));
        for x in [a, b, c] {
            assert_eq!(f16::from_f32(x).to_f32(), x, "{x} is an f16 value");
        }
        assert_eq!(fma_f16_once(a, b, c), 1.0 + 2f32.powi(-10));
        let mut acc = [c];
        mad_f16_generic(&mut acc, &[f16::from_f32(a)], b);
        assert_eq!(acc[0], 1.0, "the f32 path rounds twice");
        // the same mirrored, and against the f64 reference
        assert_eq!(fma_f16_once(-a, b, -c), -(1.0 + 2f32.powi(-10)));
        assert_eq!(fma_f16_once(a, b, c), f16_of_f64(a as f64 * b as f64 + c as f64));
        // overflow and non-finite inputs
        assert_eq!(fma_f16_once(256.0, 256.0, 0.0), f32::INFINITY);
        assert_eq!(fma_f16_once(1.0, 1.0, f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert_eq!(fma_f16_once(1.0, -1.0, 1.0).to_bits(), 0.0f32.to_bits());
    }

    #[test]
    fn f16_fma_matches_exact_rounding_on_random_values() {
        // xorshift, so the test needs no generator crate
        let mut st = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st
        };
        let f16v = |next: &mut dyn FnMut() -> u64| loop {
            let h = f16::from_bits(next() as u16);
            if h.is_finite() {
                return h.to_f32();
            }
        };
        let mut differ = 0;
        for _ in 0..400_000 {
            let (a, b, c) = (f16v(&mut next), f16v(&mut next), f16v(&mut next));
            let want = f16_of_f64(a as f64 * b as f64 + c as f64);
            let got = fma_f16_once(a, b, c);
            assert!(got.to_bits() == want.to_bits() || (got == 0.0 && want == 0.0), "{a} * {b} + {c}: {got} vs {want}");
            let mut acc = [c];
            mad_f16_generic(&mut acc, &[f16::from_f32(a)], b);
            differ += usize::from(acc[0] != got);
        }
        // random f16 triples rarely hit a double-rounding case, but some do
        assert!(differ > 0, "no case where rounding through f32 differs");
    }

    #[test]
    fn mad_and_scale_round_to_f16() {
        let mut acc = [1.0f32, 0.0, -2.0];
        let v = [f16::from_f32(1.0 / 4096.0), f16::from_f32(0.1), f16::from_f32(3.0)];
        mad_f16_generic(&mut acc, &v, 1.0);
        // 1 + 2^-12 rounds to 1 in f16 (ulp 2^-10)
        assert_eq!(acc[0], 1.0);
        assert_eq!(acc[1], f16::from_f32(0.1).to_f32());
        assert_eq!(acc[2], 1.0);
        scale_f16_generic(&mut acc, 1.0 / 3.0);
        assert_eq!(acc[0], f16::from_f32(1.0 / 3.0).to_f32());
    }
}
