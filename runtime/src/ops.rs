//! The layers the decoder forward is made of: RMSNorm, RoPE, softmax,
//! attention over the KV cache, the gated activations, and matrix products of
//! GGUF weights (in place, in their block format) with f32 activations.
//!
//! Numerics follow ggml's CPU backend (`ggml-cpu/ops.cpp`, `vec.h`), because
//! the end-to-end tests compare greedy token ids with llama.cpp's:
//! - RMSNorm sums squares in f64 and scales in f32 (`ggml_compute_forward_rms_norm_f32`);
//! - RoPE builds its cos/sin cache with `theta *= powf(base, -2/n_rot)` per pair
//!   (`ggml_rope_cache_init`), "normal" style rotating adjacent pairs and NeoX
//!   style rotating `(i, i + n_rot/2)`;
//! - attention is ggml's CPU flash attention (`ggml_compute_forward_flash_attn_ext_f16_one_chunk`):
//!   an online softmax over the cached positions; with an f16 cache the query is
//!   rounded to f16 and the value accumulator is kept in f16, exactly as there;
//!   batches of 64+ tokens take ggml's tiled flash attention instead
//!   ([`attend_tiled`]: f32 queries and accumulators, tiles of 64 positions,
//!   the float chain written out in [`ember_quant::attn_tile`]);
//! - GELU uses ggml's f16 lookup (`GGML_GELU_FP16`): the input rounded to f16,
//!   the tanh approximation, the result rounded to f16;
//! - activations are quantized once per matrix input to the weight's
//!   `vec_dot_type` (Q8_0, Q8_1, Q8_K, F16, F32), then every weight row is an
//!   integer dot product through [`Kernels`].

use crate::kv_cache::KvType;
use crate::threads::{FirstError, Parallel, SharedMut};
use crate::Error;
use ember_quant::{GgmlType, Kernels};

/// libm functions: the platform's (glibc's, like llama.cpp) with `std`, the
/// `libm` crate's without.
pub mod math {
    #[cfg(feature = "std")]
    mod imp {
        /// e^x.
        pub fn expf(x: f32) -> f32 {
            x.exp()
        }
        /// Square root.
        pub fn sqrtf(x: f32) -> f32 {
            x.sqrt()
        }
        /// x^y.
        pub fn powf(x: f32, y: f32) -> f32 {
            x.powf(y)
        }
        /// Sine.
        pub fn sinf(x: f32) -> f32 {
            x.sin()
        }
        /// Cosine.
        pub fn cosf(x: f32) -> f32 {
            x.cos()
        }
        /// Hyperbolic tangent.
        pub fn tanhf(x: f32) -> f32 {
            x.tanh()
        }
        /// Natural logarithm.
        pub fn logf(x: f32) -> f32 {
            x.ln()
        }
    }
    #[cfg(not(feature = "std"))]
    mod imp {
        pub use libm::{cosf, expf, logf, powf, sinf, sqrtf, tanhf};
    }
    pub use imp::*;
}

/// A weight matrix used in place: `rows` rows of `cols` values (ggml's
/// `ne0 = cols`, `ne1 = rows`), each row `ty.row_bytes(cols)` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    /// Block format of the rows.
    pub ty: GgmlType,
    /// Values per row (the input width).
    pub cols: usize,
    /// Number of rows (the output width).
    pub rows: usize,
    /// The rows, back to back.
    pub data: &'a [u8],
}

impl Mat<'_> {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.cols).unwrap_or(0)
    }

    /// The activation format this matrix multiplies with.
    pub fn act_type(&self) -> GgmlType {
        self.ty.vec_dot_type().unwrap_or(GgmlType::F32)
    }
}

/// f16 bits → f32, exact for every input (subnormals, infinities, NaN).
/// Branch-light so loops over it vectorize.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    // Scaling the shifted exponent+mantissa by 2^112 rebias the exponent
    // (15 → 127) and turns f16 subnormals into the right f32 normals.
    let finite = (f32::from_bits(em << 13) * f32::from_bits(0x7780_0000)).to_bits();
    let bits = if em >= 0x7c00 { (em << 13) | 0x7f80_0000 } else { finite };
    f32::from_bits(bits | sign)
}

/// f32 → f16 bits, round to nearest even, as F16C's `vcvtps2ph` (ggml's
/// `GGML_FP32_TO_FP16`) does; NaN becomes the quiet NaN 0x7e00 (sign kept).
/// Integer and float operations only (F. Giesen's `float_to_half_fast3_rtne`),
/// so loops over it vectorize without F16C.
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = (b >> 16) & 0x8000;
    let a = b & 0x7fff_ffff;
    // Normal f16: rebias the exponent (-112 << 23), add the rounding bias
    // 0xfff plus the lowest kept mantissa bit (ties to even), keep 15 bits.
    let normal = a.wrapping_add(0xc800_0fff).wrapping_add((a >> 13) & 1) >> 13;
    // Subnormal f16: adding 0.5 puts the 10 kept bits at the bottom of the
    // mantissa, rounded to nearest even by the addition itself.
    let sub = (f32::from_bits(a) + 0.5).to_bits().wrapping_sub(0x3f00_0000);
    let big = if a > 0x7f80_0000 { 0x7e00 } else { 0x7c00 };
    let r = if a >= 0x4780_0000 {
        big
    } else if a < 0x3880_0000 {
        sub
    } else {
        normal
    };
    (r | sign) as u16
}

/// `x` rounded to the nearest f16 (ties to even), as an f32.
#[inline(always)]
pub fn round_f16(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

/// RMSNorm as ggml computes it: `out = x * (1/sqrt(mean(x²) + eps)) * w`,
/// the sum of squares in f64.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    debug_assert!(out.len() == x.len() && w.len() == x.len());
    let scale = rms_scale(x, eps);
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// [`rmsnorm`] in place.
pub fn rmsnorm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    debug_assert!(w.len() == x.len());
    let scale = rms_scale(x, eps);
    for (v, &g) in x.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let mut sum = 0.0f64;
    for &v in x {
        sum += (v * v) as f64;
    }
    let mean = (sum / x.len().max(1) as f64) as f32;
    1.0 / math::sqrtf(mean + eps)
}

/// Which elements RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)`: ggml's `GGML_ROPE_TYPE_NORMAL`, used for
    /// `llama` (whose GGUF q/k weights the converter permuted to match).
    Normal,
    /// Halves `(i, i + n_rot/2)`: ggml's `GGML_ROPE_TYPE_NEOX` (qwen2, gemma3).
    Neox,
}

/// Fills `cache` (`n_rot` floats: cos, sin per pair) for position `pos`:
/// ggml's `ggml_rope_cache_init` without YaRN (`ext_factor = 0`, `mscale = 1`).
/// `freq_scale` is 1 / the linear scaling factor; `freq_factors` (llama 3's
/// `rope_freqs.weight`) divide each pair's angle.
pub fn rope_cache(cache: &mut [f32], pos: usize, base: f32, freq_scale: f32, freq_factors: Option<&[f32]>) {
    let n_rot = cache.len();
    let theta_scale = math::powf(base, -2.0 / n_rot as f32);
    let mut theta = pos as f32;
    for i in 0..n_rot / 2 {
        let ff = freq_factors.and_then(|f| f.get(i).copied()).unwrap_or(1.0);
        let t = freq_scale * (theta / ff);
        cache[2 * i] = math::cosf(t);
        cache[2 * i + 1] = math::sinf(t);
        theta *= theta_scale;
    }
}

/// Rotates the first `cache.len()` elements of one head `x` by the angles in
/// `cache` (from [`rope_cache`]).
pub fn rope_apply(x: &mut [f32], cache: &[f32], style: RopeStyle) {
    let n_rot = cache.len();
    debug_assert!(n_rot <= x.len() && n_rot.is_multiple_of(2));
    let half = n_rot / 2;
    for i in 0..half {
        let (c, s) = (cache[2 * i], cache[2 * i + 1]);
        let (a, b) = match style {
            RopeStyle::Normal => (2 * i, 2 * i + 1),
            RopeStyle::Neox => (i, i + half),
        };
        let (x0, x1) = (x[a], x[b]);
        // ggml's C++ is compiled with FMA contraction: the first product of
        // each line is fused with the subtraction/addition.
        x[a] = fma(x0, c, -(x1 * s));
        x[b] = fma(x0, s, x1 * c);
    }
}

/// Softmax in place (max subtracted, f32 throughout). An empty slice is left alone.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = math::expf(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `a * b + c` rounded once, as an FMA instruction computes it. The product
/// of two f32 is exact in f64, so the only difference from a true FMA is a
/// double rounding when the f64 sum lands exactly halfway between two f32
/// (probability about 2^-29 per call); in exchange it vectorizes and needs
/// no FMA hardware or libm call.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    (a as f64 * b as f64 + c as f64) as f32
}

/// e^x as ggml's `ggml_v_expf` computes it in llama.cpp's AVX-512 builds,
/// and SiLU from it (`ggml_v_silu`): see [`ember_quant::act`], which also
/// holds their SIMD versions.
pub use ember_quant::act::{expf_ggml, silu};

/// SwiGLU in place: `gate[i] = silu(gate[i]) * up[i]`, through the kernel
/// table (8 lanes at a time on AVX2, bit-identical to [`silu`]). `gate` and
/// `up` must have the same length.
pub fn swiglu(kernels: &Kernels, gate: &mut [f32], up: &[f32]) -> Result<(), Error> {
    Ok(kernels.act_swiglu(gate, up)?)
}

const GELU_COEF_A: f32 = 0.044715;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// GELU, tanh approximation, in f32 (ggml's `ggml_gelu_f32`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + math::tanhf(SQRT_2_OVER_PI * x * fma(GELU_COEF_A * x, x, 1.0)))
}

/// Fills ggml's GELU table: for every f16 bit pattern `h`, the f16 bits of
/// `gelu_tanh(h)`. `table` must hold 65536 entries.
pub fn gelu_table(table: &mut [u16]) {
    for (h, t) in table.iter_mut().enumerate() {
        *t = f32_to_f16(gelu_tanh(f16_to_f32(h as u16)));
    }
}

/// GeGLU in place, as ggml computes it with `GGML_GELU_FP16`: `gate[i] =
/// gelu(gate[i]) * up[i]`, GELU looked up in `table` (from [`gelu_table`]) at
/// the f16 rounding of the input, with ggml's ±10 cut-offs
/// (`ember_quant::act::geglu_generic`, through the kernel table).
pub fn geglu(kernels: &Kernels, gate: &mut [f32], up: &[f32], table: &[u16]) -> Result<(), Error> {
    Ok(kernels.act_geglu(gate, up, table)?)
}

/// One attention head's view of a layer's K or V cache: `cells` rows of
/// `row_bytes`, this head's `dim` values starting `offset` bytes into a row.
/// Position `p` lives in row `p % cells` (a ring for sliding-window layers).
#[derive(Clone, Copy, Debug)]
pub struct KvHead<'a> {
    /// The layer's whole K (or V) cache.
    pub data: &'a [u8],
    /// Element type of the cache.
    pub ty: KvType,
    /// Bytes per cached position (all heads).
    pub row_bytes: usize,
    /// Byte offset of this head inside a row.
    pub offset: usize,
    /// Values per head.
    pub dim: usize,
    /// Rows in the cache.
    pub cells: usize,
}

impl<'a> KvHead<'a> {
    /// The cache row holding position `pos` (a ring of `cells` rows); no
    /// division for the positions below `cells`, every one in a cache that
    /// is not a sliding window.
    #[inline(always)]
    fn cell(&self, pos: usize) -> usize {
        if pos < self.cells {
            pos
        } else {
            pos % self.cells.max(1)
        }
    }

    #[inline(always)]
    fn row(&self, pos: usize) -> &'a [u8] {
        let start = self.cell(pos) * self.row_bytes + self.offset;
        &self.data[start..start + self.dim * self.ty.elem_bytes()]
    }

    /// Asks the CPU to start loading position `pos`'s values into cache (a
    /// hint: no effect on results, nothing if `pos` is out of range).
    #[inline(always)]
    fn prefetch(&self, pos: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let start = self.cell(pos) * self.row_bytes + self.offset;
            let len = self.dim * self.ty.elem_bytes();
            if let Some(row) = self.data.get(start..start + len) {
                for line in row.chunks(64) {
                    // SAFETY: `_mm_prefetch` needs SSE, part of the x86_64
                    // baseline; a prefetch never faults and has no
                    // architectural effect (the address is in bounds anyway).
                    unsafe {
                        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast())
                    };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = pos;
    }

    /// Position `pos`'s values of an f16 cache, in place.
    #[inline(always)]
    fn row_f16(&self, pos: usize) -> Result<&'a [ember_quant::f16], Error> {
        bytemuck::try_cast_slice(self.row(pos)).map_err(|_| {
            Error::Quant(ember_quant::Error::Length { what: "f16 KV cache row", expected: self.dim, got: 0 })
        })
    }

    /// Position `pos`'s values, widened to f32 into `out` (`dim` values).
    #[inline]
    fn widen(&self, kernels: &Kernels, pos: usize, out: &mut [f32]) -> Result<(), Error> {
        match self.ty {
            KvType::F16 => kernels.attn_widen_f16(self.row_f16(pos)?, out)?,
            KvType::F32 => {
                let f: &[f32] = bytemuck::try_cast_slice(self.row(pos)).map_err(|_| {
                    Error::Quant(ember_quant::Error::Length { what: "f32 KV cache row", expected: self.dim, got: 0 })
                })?;
                out.copy_from_slice(f);
            }
        }
        Ok(())
    }

    fn check(&self, what: &'static str) -> Result<(), Error> {
        let need = self.offset + self.dim * self.ty.elem_bytes();
        let ok = self.cells > 0
            && need <= self.row_bytes
            && self.cells.checked_mul(self.row_bytes).is_some_and(|n| n <= self.data.len())
            && (self.data.as_ptr() as usize).is_multiple_of(self.ty.elem_bytes())
            && self.row_bytes.is_multiple_of(self.ty.elem_bytes())
            && self.offset.is_multiple_of(self.ty.elem_bytes());
        if ok {
            Ok(())
        } else {
            Err(Error::Quant(ember_quant::Error::Length { what, expected: need, got: self.row_bytes }))
        }
    }
}

/// How many positions ahead [`attend`] prefetches the cached rows.
const PREFETCH_POSITIONS: usize = 6;

/// Positions per block of the f16 one-row attention ([`attend`]): its
/// scores, softmax weights and row references live on the stack.
const ATTN_BLOCK: usize = 16;

/// Query heads per pass over a block in [`attend`] (the stack arrays'
/// other dimension).
const ATTN_HEADS: usize = 4;

/// Most query heads that share one KV head in [`attend`] (grouped-query
/// attention ratios in practice are 1 to 8).
pub const MAX_QUERY_GROUP: usize = 64;

/// Per-thread scratch of [`attend`] for a group of `g` query heads: `q`
/// holds `g * dim_k` f32, `acc` `g * dim_v` f32, `row` `max(dim_k, dim_v)` f32.
pub struct AttnScratch<'a> {
    /// The queries as the dot product sees them (rounded to f16 for an f16 cache).
    pub q: &'a mut [f32],
    /// The output accumulators.
    pub acc: &'a mut [f32],
    /// One cached K or V row widened to f32.
    pub row: &'a mut [f32],
}

/// How [`attend`] scores and accumulates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnParams {
    /// Factor applied to each score `q·k`.
    pub scale: f32,
    /// Score soft cap (0: none).
    pub softcap: f32,
    /// ggml's one-row flash attention with an f16 cache
    /// (`ggml_compute_forward_flash_attn_ext_f16_one_chunk`): the query rounded
    /// to f16, the value accumulator rounded to f16 after every update.
    /// llama.cpp takes that path for batches under 64 tokens and a tiled f32
    /// one for larger batches; `false` accumulates in f32 like the latter.
    pub half: bool,
}

/// One step of ggml's online softmax for score `s` against the running
/// maximum `m`: `(ms, vs)`, where `ms` is the factor that rescales what was
/// accumulated so far (`Some` only when `s` raises the maximum, which then
/// becomes `s`) and `vs` the weight of this position's value row.
#[inline]
fn online_softmax_step(s: f32, m: &mut f32) -> (Option<f32>, f32) {
    if s > *m {
        let m_old = *m;
        *m = s;
        (Some(math::expf(m_old - s)), 1.0)
    } else {
        (None, math::expf(s - *m))
    }
}

/// Attention of `g = q.len() / k.dim` query heads that share one KV head,
/// over the cached positions `positions` (in order), as ggml's CPU flash
/// attention computes it for each head: `s = (q·k) * scale`, optionally
/// soft-capped, online softmax, `out = Σ softmax(s)·v` (see
/// [`AttnParams::half`] for the f16 variant). Each cached row is widened once
/// for the whole group.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    kernels: &Kernels,
    q: &[f32],
    k: &KvHead<'_>,
    v: &KvHead<'_>,
    positions: core::ops::Range<usize>,
    params: AttnParams,
    scratch: &mut AttnScratch<'_>,
    out: &mut [f32],
) -> Result<(), Error> {
    let AttnParams { scale, softcap, half } = params;
    k.check("K cache row")?;
    v.check("V cache row")?;
    let (dk, dv) = (k.dim, v.dim);
    let g = q.len().checked_div(dk).unwrap_or(0);
    if g == 0
        || g > MAX_QUERY_GROUP
        || q.len() != g * dk
        || out.len() != g * dv
        || scratch.acc.len() < g * dv
        || scratch.q.len() < g.next_multiple_of(4) * dk
        || scratch.row.len() < dk.max(dv)
    {
        return Err(Error::Quant(ember_quant::Error::Length { what: "attention heads", expected: dk, got: q.len() }));
    }
    let acc = &mut scratch.acc[..g * dv];
    acc.fill(0.0);
    let mut s_sum = [0.0f32; MAX_QUERY_GROUP];
    let mut m = [f32::NEG_INFINITY; MAX_QUERY_GROUP];
    let scale = if softcap != 0.0 { scale / softcap } else { scale };
    let f16 = half && k.ty == KvType::F16 && v.ty == KvType::F16;
    if f16 {
        let qr = &mut scratch.q[..g * dk];
        for (o, &x) in qr.iter_mut().zip(q) {
            *o = round_f16(x);
        }
        // ggml's one-row path on the f16 rows in place, through the kernel
        // table (SIMD with F16C), [`ATTN_BLOCK`] positions at a time: the
        // scores of the block (one call per head), the online softmax
        // position by position, then each head's value rows (one call per
        // head, which keeps the accumulator in registers). Per head this is
        // the same sequence of operations as position by position; one call
        // per position and head cost more than the arithmetic at 64-value
        // heads.
        let end = positions.end;
        let mut p = positions.start;
        let mut krows: [&[ember_quant::f16]; ATTN_BLOCK] = [&[]; ATTN_BLOCK];
        let mut vrows: [&[ember_quant::f16]; ATTN_BLOCK] = [&[]; ATTN_BLOCK];
        // Heads are independent: a few at a time keeps the stack small.
        let mut scores = [[0.0f32; ATTN_BLOCK]; ATTN_HEADS];
        let mut rescale = [[1.0f32; ATTN_BLOCK]; ATTN_HEADS];
        while p < end {
            let nb = (end - p).min(ATTN_BLOCK);
            for j in 0..nb {
                // The rows of a later position, which the hardware prefetcher
                // (one short row every `row_bytes`) often does not fetch in time.
                if p + j + PREFETCH_POSITIONS < end {
                    k.prefetch(p + j + PREFETCH_POSITIONS);
                    v.prefetch(p + j + PREFETCH_POSITIONS);
                }
                krows[j] = k.row_f16(p + j)?;
                vrows[j] = v.row_f16(p + j)?;
            }
            for h0 in (0..g).step_by(ATTN_HEADS) {
                let heads = h0..(h0 + ATTN_HEADS).min(g);
                for (h, sc) in heads.clone().zip(&mut scores) {
                    kernels.attn_dots_f16(&krows[..nb], &qr[h * dk..(h + 1) * dk], &mut sc[..nb])?;
                }
                for ((h, sc), rs) in heads.clone().zip(&mut scores).zip(&mut rescale) {
                    for j in 0..nb {
                        let mut x = sc[j] * scale;
                        if softcap != 0.0 {
                            x = softcap * math::tanhf(x);
                        }
                        let (ms, vs) = online_softmax_step(x, &mut m[h]);
                        s_sum[h] = fma(s_sum[h], ms.unwrap_or(1.0), vs);
                        // No rescaling is a rescaling by 1.0 (see `attn_mads_f16`);
                        // the score is spent: its slot takes the weight.
                        rs[j] = ms.unwrap_or(1.0);
                        sc[j] = vs;
                    }
                }
                for ((h, sc), rs) in heads.zip(&scores).zip(&rescale) {
                    kernels.attn_mads_f16(&mut acc[h * dv..(h + 1) * dv], &vrows[..nb], &rs[..nb], &sc[..nb])?;
                }
            }
            p += nb;
        }
        for h in 0..g {
            let inv = if s_sum[h] == 0.0 { 0.0 } else { 1.0 / s_sum[h] };
            for (o, &a) in out[h * dv..(h + 1) * dv].iter_mut().zip(&acc[h * dv..(h + 1) * dv]) {
                *o = a * inv;
            }
        }
        return Ok(());
    }
    // f32 accumulation. The queries interleaved four at a time
    // (`[g/4][dk][4]`, zero-padded) so that one pass over a key row scores
    // four heads, each score's f32 products summed in f64 in order
    // (`ember_quant::attn::dot_f32_x4_generic`).
    let g4 = g.div_ceil(4);
    let qt = &mut scratch.q[..4 * g4 * dk];
    for (c, chunk) in qt.chunks_exact_mut(4 * dk).enumerate() {
        for (d, lanes) in chunk.chunks_exact_mut(4).enumerate() {
            for (l, x) in lanes.iter_mut().enumerate() {
                let h = 4 * c + l;
                *x = if h < g { q[h * dk + d] } else { 0.0 };
            }
        }
    }
    // Two positions per step where the scratch has room for two rows: their
    // scores are independent, and scoring them in one pass overlaps the two
    // f64 addition chains (each stays in order). The values are then taken
    // position by position, as before.
    let wide = dk.max(dv);
    let (r0, r1) = scratch.row.split_at_mut(wide);
    let two = r1.len() >= wide;
    let end = positions.end;
    let mut p = positions.start;
    let mut s2 = [[0.0f32; MAX_QUERY_GROUP]; 2];
    while p < end {
        let step = if two && p + 1 < end { 2 } else { 1 };
        for ahead in p + PREFETCH_POSITIONS..(p + PREFETCH_POSITIONS + step).min(end) {
            k.prefetch(ahead);
            v.prefetch(ahead);
        }
        k.widen(kernels, p, &mut r0[..dk])?;
        if step == 2 {
            k.widen(kernels, p + 1, &mut r1[..dk])?;
        }
        for (c, chunk) in qt.chunks_exact(4 * dk).enumerate() {
            let fours = if step == 2 {
                kernels.attn_dot_f32_x4_pair(&r0[..dk], &r1[..dk], chunk)?
            } else {
                [kernels.attn_dot_f32_x4(&r0[..dk], chunk)?, [0.0; 4]]
            };
            for (sj, four) in s2.iter_mut().zip(fours).take(step) {
                for (l, &d) in four.iter().enumerate().take(g - 4 * c) {
                    let mut x = d * scale;
                    if softcap != 0.0 {
                        x = softcap * math::tanhf(x);
                    }
                    sj[4 * c + l] = x;
                }
            }
        }
        for (j, s) in s2.iter().enumerate().take(step) {
            let vr = &mut r0[..dv];
            v.widen(kernels, p + j, vr)?;
            for h in 0..g {
                let a = &mut acc[h * dv..(h + 1) * dv];
                let (ms, vs) = online_softmax_step(s[h], &mut m[h]);
                if let Some(ms) = ms {
                    // ggml_vec_scale_f32: VKQ *= ms.
                    a.iter_mut().for_each(|x| *x *= ms);
                }
                // ggml_vec_mad_f32: VKQ += v * vs with one rounding (FMA).
                kernels.attn_mad_f32(a, vr, vs)?;
                s_sum[h] = fma(s_sum[h], ms.unwrap_or(1.0), vs);
            }
        }
        p += step;
    }
    for h in 0..g {
        let inv = if s_sum[h] == 0.0 { 0.0 } else { 1.0 / s_sum[h] };
        for (o, &a) in out[h * dv..(h + 1) * dv].iter_mut().zip(&acc[h * dv..(h + 1) * dv]) {
            *o = a * inv;
        }
    }
    Ok(())
}

/// Query rows (tokens × query heads of one KV head) per task of
/// [`attend_tiled`]: `GGML_FA_TILE_Q`.
pub const TILE_ROWS: usize = 64;

/// Query tokens per task of [`attend_tiled`] when `g` query heads share a
/// KV head: as many as fill [`TILE_ROWS`] rows, at least one.
pub fn tile_tokens(g: usize) -> usize {
    (TILE_ROWS / g.max(1)).max(1)
}

/// Per-thread scratch of [`attend_tiled`] for `rows` query rows (`rp` is
/// `rows` rounded up to a multiple of 8), all f32 except `sums`:
/// the queries transposed (`qt`, `[dk][rp]`), the scores of one tile by
/// position (`kq`, `[KV_TILE][rp]`), the output accumulators (`vkq`,
/// `[rows][dv]`), one widened K and V tile (`kt`, `[KV_TILE][dk]`; `vt`,
/// `[KV_TILE][dv]`), and per row the running maximum `m`, the sum `s`, the
/// tile maximum `tmax` and the tile's f64 sum `sums`.
pub struct TileScratch<'a> {
    /// `[dk][rp]`.
    pub qt: &'a mut [f32],
    /// `[KV_TILE][rp]`.
    pub kq: &'a mut [f32],
    /// `[rows][dv]`; the result after [`attend_tiled`].
    pub vkq: &'a mut [f32],
    /// `[KV_TILE][dk]`.
    pub kt: &'a mut [f32],
    /// `[KV_TILE][dv]`.
    pub vt: &'a mut [f32],
    /// `[rp]`.
    pub m: &'a mut [f32],
    /// `[rp]`.
    pub s: &'a mut [f32],
    /// `[rp]`.
    pub tmax: &'a mut [f32],
    /// `[rp]`.
    pub sums: &'a mut [f64],
}

impl<'a> TileScratch<'a> {
    /// The f32 (then f64) counts of each piece, in order.
    fn pieces(rows: usize, dk: usize, dv: usize) -> [usize; 8] {
        use ember_quant::attn_tile::KV_TILE;
        let rp = rows.next_multiple_of(8);
        [dk * rp, KV_TILE * rp, rows * dv, KV_TILE * dk, KV_TILE * dv, rp, rp, rp]
    }

    /// Bytes of the scratch for `rows` query rows, each piece 64-byte aligned.
    pub fn bytes(rows: usize, dk: usize, dv: usize) -> usize {
        let rp = rows.next_multiple_of(8);
        Self::pieces(rows, dk, dv).iter().map(|&n| (n * 4).next_multiple_of(64)).sum::<usize>()
            + (rp * 8).next_multiple_of(64)
    }

    /// Cuts the scratch for `rows` query rows out of `buf` (64-byte aligned,
    /// at least [`TileScratch::bytes`] long); `None` if it does not fit.
    pub fn carve(buf: &'a mut [u8], rows: usize, dk: usize, dv: usize) -> Option<TileScratch<'a>> {
        if buf.len() < Self::bytes(rows, dk, dv) {
            return None;
        }
        let mut rest = buf;
        let mut f32s = [const { None }; 8];
        for (slot, n) in f32s.iter_mut().zip(Self::pieces(rows, dk, dv)) {
            let (piece, tail) = core::mem::take(&mut rest).split_at_mut((n * 4).next_multiple_of(64));
            *slot = Some(bytemuck::try_cast_slice_mut::<u8, f32>(&mut piece[..n * 4]).ok()?);
            rest = tail;
        }
        let rp = rows.next_multiple_of(8);
        let sums = bytemuck::try_cast_slice_mut::<u8, f64>(&mut rest[..rp * 8]).ok()?;
        let [qt, kq, vkq, kt, vt, m, s, tmax] = f32s.map(|x| x.unwrap_or_default());
        Some(TileScratch { qt, kq, vkq, kt, vt, m, s, tmax, sums })
    }
}

/// Attention of `nt` consecutive query tokens at positions `pos0..pos0 + nt`,
/// each with `g` query heads sharing the KV head `k`/`v`, as ggml's tiled
/// flash attention computes each row (`ggml_compute_forward_flash_attn_ext_tiled`,
/// llama.cpp's path for batches of 64 tokens or more; the float chain is
/// written out in [`ember_quant::attn_tile`]): f32 queries, f32 scores and
/// accumulators, tiles of 64 positions aligned to multiples of 64.
///
/// Token `i`'s heads are `q[i * q_stride..][..g * dk]`. Position `p` sees the
/// cached positions `lo(p)..=p`, `lo(p) = p + 1 - window` (0 without a
/// window); every one of them must be in the cache (a ring of `k.cells`
/// rows). On return `scratch.vkq[..nt * g * dv]` holds the outputs, token by
/// token, head by head. Only `params.scale` and `params.softcap` are used.
#[allow(clippy::too_many_arguments)]
pub fn attend_tiled(
    kernels: &Kernels,
    q: &[f32],
    q_stride: usize,
    g: usize,
    nt: usize,
    k: &KvHead<'_>,
    v: &KvHead<'_>,
    pos0: usize,
    window: usize,
    params: AttnParams,
    scratch: &mut TileScratch<'_>,
) -> Result<(), Error> {
    use ember_quant::attn_tile::{GemmShape, KV_TILE};
    k.check("K cache row")?;
    v.check("V cache row")?;
    let (dk, dv) = (k.dim, v.dim);
    let rows = g.saturating_mul(nt);
    let rp = rows.next_multiple_of(8);
    let bad = |what| Err(Error::Quant(ember_quant::Error::Length { what, expected: rows, got: 0 }));
    let q_need = (nt.saturating_sub(1)).checked_mul(q_stride).and_then(|x| x.checked_add(g.checked_mul(dk)?));
    if g == 0 || nt == 0 || rows > usize::MAX / 64 || q_stride < g * dk || q_need.is_none_or(|need| q.len() < need) {
        return bad("tiled attention queries");
    }
    let TileScratch { qt, kq, vkq, kt, vt, m, s, tmax, sums } = scratch;
    let pieces = TileScratch::pieces(rows, dk, dv);
    let lens = [qt.len(), kq.len(), vkq.len(), kt.len(), vt.len(), m.len(), s.len(), tmax.len()];
    if lens.iter().zip(pieces).any(|(&have, need)| have < need) || sums.len() < rp {
        return bad("tiled attention scratch");
    }
    let last = pos0 + nt - 1;
    let lo_of = |p: usize| if window > 0 { (p + 1).saturating_sub(window) } else { 0 };
    if last - lo_of(pos0) >= k.cells.min(v.cells) {
        return bad("KV cache cells for the batch and its window");
    }
    let scale = if params.softcap != 0.0 { params.scale / params.softcap } else { params.scale };

    // Q^T, zero columns past `rows`.
    let qt = &mut qt[..dk * rp];
    for (d, col) in qt.chunks_exact_mut(rp).enumerate() {
        let (used, pad) = col.split_at_mut(rows);
        for (i, tok) in used.chunks_exact_mut(g).enumerate() {
            for (h, x) in tok.iter_mut().enumerate() {
                *x = q[i * q_stride + h * dk + d];
            }
        }
        pad.fill(0.0);
    }
    m[..rp].fill(f32::NEG_INFINITY);
    s[..rp].fill(0.0);
    let vkq = &mut vkq[..rows * dv];
    vkq.fill(0.0);
    let kq = &mut kq[..KV_TILE * rp];

    let first = lo_of(pos0);
    for tile in first / KV_TILE..=last / KV_TILE {
        let t0 = tile * KV_TILE;
        // Positions some row of the block sees, and the rows that see some
        // position of this tile (8-aligned, for whole vectors).
        let (ta, tb) = (t0.max(first), (t0 + KV_TILE).min(last + 1));
        let r_lo = ((ta.saturating_sub(pos0) * g) & !7).min(rp);
        let r_hi =
            if window > 0 { ((tb - 1 + window).saturating_sub(pos0).min(nt) * g).next_multiple_of(8) } else { rp };
        let r_hi = r_hi.min(rp);
        if r_lo >= r_hi {
            continue;
        }
        let (ja, jb) = (ta - t0, tb - t0);
        for p in ta..tb {
            k.widen(kernels, p, &mut kt[(p - t0) * dk..][..dk])?;
        }
        // Scores, by position: kq[t][r] = k_t · q_r, one FMA chain each.
        kq.fill(f32::NEG_INFINITY);
        for t in ja..jb {
            kq[t * rp + r_lo..t * rp + r_hi].fill(0.0);
        }
        let shape = GemmShape { m: jb - ja, k: dk, n: r_hi - r_lo, ldc: rp, a_rs: dk, a_cs: 1, ldb: rp };
        kernels.tile_gemm(shape, &mut kq[ja * rp + r_lo..], &kt[ja * dk..], &qt[r_lo..])?;
        // Scale, soft cap, mask; the tile maximum of each row.
        tmax[..rp].fill(f32::NEG_INFINITY);
        for t in ja..jb {
            let p = t0 + t;
            // rows whose token sees position p: tokens i with lo(pos0 + i) <= p <= pos0 + i
            let i_lo = p.saturating_sub(pos0);
            let i_hi = if window > 0 { (p + window).saturating_sub(pos0).min(nt) } else { nt };
            let (va, vb) =
                ((i_lo * g).clamp(r_lo, r_hi), (i_hi * g).clamp(r_lo, r_hi).max((i_lo * g).clamp(r_lo, r_hi)));
            let row = &mut kq[t * rp..(t + 1) * rp];
            row[r_lo..va].fill(f32::NEG_INFINITY);
            row[vb..r_hi].fill(f32::NEG_INFINITY);
            let vis = &mut row[va..vb];
            vis.iter_mut().for_each(|x| *x *= scale);
            if params.softcap != 0.0 {
                vis.iter_mut().for_each(|x| *x = params.softcap * math::tanhf(*x));
            }
            for (&x, mx) in vis.iter().zip(&mut tmax[va..vb]) {
                *mx = if x > *mx { x } else { *mx };
            }
        }
        // The running maximum; rescale what was accumulated when it grows.
        for r in r_lo..r_hi.min(rows) {
            if tmax[r] == f32::NEG_INFINITY {
                continue;
            }
            if tmax[r] > m[r] {
                let ms = math::expf(m[r] - tmax[r]);
                vkq[r * dv..(r + 1) * dv].iter_mut().for_each(|x| *x *= ms);
                s[r] *= ms;
                m[r] = tmax[r];
            }
        }
        kernels.tile_softmax(kq, rp, m, sums)?;
        for r in r_lo..r_hi.min(rows) {
            if tmax[r] != f32::NEG_INFINITY {
                s[r] = (s[r] as f64 + sums[r]) as f32;
            }
        }
        // Values: vkq[r] += Σ_t p[t][r] · v_t over the positions read
        // (the others have p = 0).
        for p in ta..tb {
            v.widen(kernels, p, &mut vt[(p - t0) * dv..][..dv])?;
        }
        let (ra, rb) = (r_lo.min(rows), r_hi.min(rows));
        let shape = GemmShape { m: rb - ra, k: jb - ja, n: dv, ldc: dv, a_rs: 1, a_cs: rp, ldb: dv };
        kernels.tile_gemm(shape, &mut vkq[ra * dv..], &kq[ja * rp + ra..], &vt[ja * dv..])?;
    }
    for r in 0..rows {
        let inv = if s[r] == 0.0 { 0.0 } else { 1.0 / s[r] };
        vkq[r * dv..(r + 1) * dv].iter_mut().for_each(|x| *x *= inv);
    }
    Ok(())
}

/// Scratch for quantized activations: `slots` regions of `slot_bytes` each
/// (64-byte aligned), one per distinct activation format in a group of
/// matrix products sharing an input.
pub struct ActScratch<'a> {
    /// The whole scratch.
    pub buf: &'a mut [u8],
    /// Bytes per slot (a multiple of 64).
    pub slot_bytes: usize,
}

/// Most matrices one [`matmul`] call multiplies with the same input.
pub const MAX_GROUP: usize = 3;

/// Computes, for every `(w, out)` in `jobs` and every input row `i < n`,
/// `out[i * w.rows + r] = W[r] · x[i]`, where `x` holds `n` rows of `cols`
/// values. Each input is quantized once per activation format the group
/// needs; output rows are split across `par`'s threads.
pub fn matmul(
    kernels: &Kernels,
    par: &dyn Parallel,
    x: &[f32],
    n: usize,
    cols: usize,
    jobs: &mut [(&Mat<'_>, &mut [f32])],
    scratch: &mut ActScratch<'_>,
) -> Result<(), Error> {
    matmul_then(kernels, par, x, n, cols, jobs, scratch, None)
}

/// A gated activation applied in place to a block of rows of a gate and an
/// up projection: `gate[r] = act(gate[r]) * up[r]` ([`swiglu`], [`geglu`]).
pub type Glu<'a> = &'a (dyn Fn(&mut [f32], &[f32]) -> Result<(), Error> + Sync);

/// For one input row `x` of `cols` values: `gate_out = W_gate · x`, `up_out =
/// W_up · x`, then `glu(gate_out, up_out)`. Each chunk of rows the threads
/// claim computes both products for its rows and applies `glu` to them, so
/// the activation needs no hand-off of its own and is split across the
/// threads. `glu` must be elementwise: the results are those of [`matmul`]
/// followed by `glu` over the whole rows.
#[allow(clippy::too_many_arguments)]
pub fn matvec_glu(
    kernels: &Kernels,
    par: &dyn Parallel,
    x: &[f32],
    cols: usize,
    gate: (&Mat<'_>, &mut [f32]),
    up: (&Mat<'_>, &mut [f32]),
    scratch: &mut ActScratch<'_>,
    glu: Glu<'_>,
) -> Result<(), Error> {
    if gate.0.rows != up.0.rows {
        return Err(Error::Quant(ember_quant::Error::Length {
            what: "up projection rows",
            expected: gate.0.rows,
            got: up.0.rows,
        }));
    }
    matmul_then(kernels, par, x, 1, cols, &mut [gate, up], scratch, Some(glu))
}

/// [`matmul`], and with `glu` (one input row, `jobs` = [gate, up] of equal
/// rows, checked by [`matvec_glu`]) the gated activation on each chunk.
#[allow(clippy::too_many_arguments)]
fn matmul_then(
    kernels: &Kernels,
    par: &dyn Parallel,
    x: &[f32],
    n: usize,
    cols: usize,
    jobs: &mut [(&Mat<'_>, &mut [f32])],
    scratch: &mut ActScratch<'_>,
    glu: Option<Glu<'_>>,
) -> Result<(), Error> {
    if jobs.len() > MAX_GROUP {
        return Err(Error::Quant(ember_quant::Error::Length {
            what: "matmul group",
            expected: MAX_GROUP,
            got: jobs.len(),
        }));
    }
    if x.len() < n * cols {
        return Err(Error::Quant(ember_quant::Error::Length {
            what: "matmul input",
            expected: n * cols,
            got: x.len(),
        }));
    }
    // Which slot holds which activation format.
    let mut formats: [Option<GgmlType>; MAX_GROUP] = [None; MAX_GROUP];
    let mut slot_of = [0usize; MAX_GROUP];
    for (j, (w, out)) in jobs.iter().enumerate() {
        if w.cols != cols {
            return Err(Error::Quant(ember_quant::Error::Length {
                what: "weight columns",
                expected: cols,
                got: w.cols,
            }));
        }
        if out.len() < n * w.rows {
            return Err(Error::Quant(ember_quant::Error::Length {
                what: "matmul output",
                expected: n * w.rows,
                got: out.len(),
            }));
        }
        let act = w.ty.vec_dot_type().ok_or(ember_quant::Error::Unsupported(w.ty))?;
        let slot = match formats.iter().position(|f| *f == Some(act)) {
            Some(s) => s,
            None => {
                let s = formats.iter().position(|f| f.is_none()).unwrap_or(0);
                formats[s] = Some(act);
                s
            }
        };
        slot_of[j] = slot;
        // Check the kernel's buffers once (sizes, alignment), with row 0.
        let rb = ember_quant::matmul::act_row_bytes(act, cols)?;
        if n * rb > scratch.slot_bytes || (slot + 1) * scratch.slot_bytes > scratch.buf.len() {
            return Err(Error::Quant(ember_quant::Error::Length {
                what: "activation scratch",
                expected: n * rb,
                got: scratch.slot_bytes,
            }));
        }
    }

    // Quantize the input once per format, rows split across threads.
    for (slot, fmt) in formats.iter().enumerate() {
        let Some(act) = *fmt else { continue };
        let rb = ember_quant::matmul::act_row_bytes(act, cols)?;
        let region = &mut scratch.buf[slot * scratch.slot_bytes..][..n * rb];
        if n == 1 {
            kernels.quantize_activations(act, &x[..cols], region)?;
        } else {
            let shared = SharedMut::new(region);
            let err = FirstError::new();
            let per = n.div_ceil(4 * par.threads()).max(1);
            par.run(n.div_ceil(per), &|c, _| {
                let rows = c * per..((c + 1) * per).min(n);
                // SAFETY: chunks are disjoint row ranges, each run once.
                let dst = unsafe { shared.slice(rows.start * rb..rows.end * rb) };
                for (k, i) in rows.enumerate() {
                    err.check(kernels.quantize_activations(
                        act,
                        &x[i * cols..(i + 1) * cols],
                        &mut dst[k * rb..(k + 1) * rb],
                    ));
                }
            });
            err.into_result()?;
        }
    }

    if n == 1 {
        return matvec(kernels, par, cols, jobs, scratch, &slot_of, glu);
    }

    // The products, in chunks of output rows claimed by the threads: tiles
    // of about 32 KiB of weights that stay in cache while every input row
    // passes (prompt batches).
    let scratch_ro: &[u8] = scratch.buf;
    let slot_bytes = scratch.slot_bytes;
    let mut outs: [Option<SharedMut<'_, f32>>; MAX_GROUP] = [None, None, None];
    let mut mats: [Option<Mat<'_>>; MAX_GROUP] = [None; MAX_GROUP];
    let mut block = [0usize; MAX_GROUP];
    let mut first_chunk = [0usize; MAX_GROUP + 1];
    let n_jobs = jobs.len();
    for (j, (w, out)) in jobs.iter_mut().enumerate() {
        mats[j] = Some(**w);
        outs[j] = Some(SharedMut::new(&mut out[..n * w.rows]));
        // A multiple of 8: the repacked Q4_0/Q4_K gemms take weight rows
        // eight at a time (a 4-row tail costs as much as 8 rows).
        block[j] = (32 * 1024 / w.row_bytes().max(1)).clamp(8, 256).next_multiple_of(8);
        first_chunk[j + 1] = first_chunk[j] + w.rows.div_ceil(block[j]);
    }
    for j in n_jobs..MAX_GROUP {
        first_chunk[j + 1] = first_chunk[j];
    }
    let err: FirstError<ember_quant::Error> = FirstError::new();
    let job = |c: usize, _thread: usize| {
        let j = (0..MAX_GROUP).find(|&j| c < first_chunk[j + 1]).unwrap_or(0);
        let (Some(w), Some(out)) = (mats[j].as_ref(), outs[j].as_ref()) else { return };
        let rb = match ember_quant::matmul::act_row_bytes(w.act_type(), cols) {
            Ok(rb) => rb,
            Err(e) => return err.set(e),
        };
        let acts = &scratch_ro[slot_of[j] * slot_bytes..][..n * rb];
        let wrb = w.row_bytes();
        let r0 = (c - first_chunk[j]) * block[j];
        let r1 = (r0 + block[j]).min(w.rows);
        let wt = &w.data[r0 * wrb..r1 * wrb];
        // The gemm entry writes a strided block; it goes through a local
        // buffer so that no two threads hold overlapping output slices. At
        // most TILE weight rows at a time, with as many input rows as `tmp`
        // holds for them, up to GROUP_MAX, in a multiple of 16 (a multiple
        // of 4 keeps each row in the float order llama.cpp gives it for the
        // whole batch; the repacked Q4_0 gemm transposes its weights once
        // for up to 16 rows): the gemms unpack each 8-row weight tile once
        // per call and spread that over its input rows.
        const TMP: usize = 4096;
        const TILE: usize = 256;
        const GROUP_MAX: usize = 64;
        let mut tmp = [0.0f32; TMP];
        let mut t0 = r0;
        while t0 < r1 {
            let t1 = (t0 + TILE).min(r1);
            let wt = &wt[(t0 - r0) * wrb..(t1 - r0) * wrb];
            let width = t1 - t0;
            let group = (TMP / width).min(GROUP_MAX) / 16 * 16;
            let mut i0 = 0;
            while i0 < n {
                let i1 = (i0 + group).min(n);
                let tb = &mut tmp[..(i1 - i0) * width];
                if let Err(e) = kernels.gemm_strided_batch(w.ty, cols, wt, &acts[i0 * rb..i1 * rb], tb, width, n) {
                    return err.set(e);
                }
                for (k, src) in tb.chunks_exact(width).enumerate() {
                    let i = i0 + k;
                    // SAFETY: each chunk is a distinct block of rows of one
                    // matrix, run once; these are its outputs for input row `i`.
                    unsafe { out.slice(i * w.rows + t0..i * w.rows + t1) }.copy_from_slice(src);
                }
                i0 = i1;
            }
            t0 = t1;
        }
    };
    par.run(first_chunk[MAX_GROUP], &job);
    err.into_result()?;
    Ok(())
}

/// Rows of one chunk of a one-row product start at a multiple of this: the
/// Q4_0 gemv takes eight rows per pass, and every gemv gives a row the same
/// bits whatever block of rows it is called on from such a start.
const ROW_ALIGN: usize = 8;

/// A chunk of a one-row product should hold at least this many weight bytes
/// (a few microseconds of work): claiming a chunk costs an atomic operation
/// on a line the other threads write too.
const MIN_CHUNK_BYTES: usize = 16 * 1024;

/// A chunk takes the rest of its region when it would leave fewer weight
/// bytes than this behind (a few microseconds of work at one thread's
/// bandwidth): so a region under about 8 × this (every SmolLM2 and Gemma 3
/// layer matrix, at 2 threads) is one chunk, one gemv call, and only long
/// products (the output head) keep guided chunks for a thread that is done
/// early to take from. Small tail chunks had cost more than they balanced:
/// each gemv call starts its four streams cold, and the matrices of a layer
/// are 0.2-1 MB per thread. On the 2-vCPU Zen 4 VM, `ember bench` tg64 -t 2
/// in rotated order against tails down to [`MIN_CHUNK_BYTES`], means of 5
/// rounds (mostly the VM's fast state) and of 6 (its slow state): SmolLM2
/// Q4_0 325 → 345 and 348 → 369 t/s, Q4_1 312 → 332 and 332 → 351, Q8_0
/// 243 → 265 and 239 → 244, Gemma 3 154 → 155 and 132 → 134 (faster in 22
/// of the 24 pairs of the second run). A replay of a SmolLM2 Q8_0 decode
/// step's products alone (`benches`' `decode-replay`: one gemv per thread
/// and matrix, a spin barrier after each job) had run 320-370 t/s in the
/// VM's fast periods, where ember ran 250-265.
const MIN_TAIL_BYTES: usize = 256 * 1024;

/// The share of a region's rows still ahead that its next chunk takes
/// (numerator, denominator; see [`RowPlan::new`]). Each chunk is a separate
/// gemv call, which starts its streams and their prefetches afresh: on the
/// 2-vCPU Zen 3 VM, tg64 -t 2 in 10 alternated pairs against halves, 7/8
/// was faster on SmolLM2 Q4_0 (median +7.5%, 8 of 10 pairs), Q4_1 (+7.9%,
/// 8/10) and Q8_0 (+5.8%, 7/10) and Gemma 3 (+1.3%, 5/8), and not slower
/// with a busy process on one core (Q4_0 +18%, Gemma 3 +9%, 6 pairs);
/// 31/32 was no clearer a gain than 7/8 (+3% and +6%, 6 and 7 of 10), and
/// leaves a thread less to take from a slower one. (Halves had measured
/// 1-4% faster than quarters, 24 pairs each on SmolLM2 Q8_0, Q4_0 and Q4_1.)
const CHUNK_SHARE: (usize, usize) = (7, 8);

/// Most chunks one one-row product is cut into.
const MAX_ROW_CHUNKS: usize = 128;

/// Most regions (one per thread) a one-row product is split into; with more
/// threads than this, threads share regions.
const MAX_REGIONS: usize = 16;

/// One chunk of a one-row product: rows `r0..r1` of matrix `j` of the group
/// (of every matrix of the group, for a gate/up pair).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RowChunk {
    j: usize,
    r0: usize,
    r1: usize,
}

/// How a one-row product is cut for the threads: chunks in address order
/// (matrix by matrix, rows in order), grouped into one run of consecutive
/// chunks per thread, its region: chunks `bounds[r]..bounds[r + 1]` are
/// region `r`'s, and the regions hold about equal weight bytes.
///
/// Thread `t` works through region `t` front to back, then helps in the
/// other regions (see [`RowPlan::claim`]). So each thread streams ONE
/// contiguous range of the weights, as a lone thread streams the whole
/// matrix: the kernels' software prefetch, which runs a few KiB ahead of
/// the row being read, stays useful across chunk boundaries, and the
/// hardware prefetchers see one long stream per core. A shared counter
/// over the whole job (the previous scheme) dealt consecutive chunks to
/// the two threads alternately, so that every chunk started on weights
/// nobody had prefetched and ended prefetching weights of the other
/// thread's next chunk.
struct RowPlan {
    chunks: [RowChunk; MAX_ROW_CHUNKS],
    count: usize,
    regions: usize,
    bounds: [usize; MAX_REGIONS + 1],
}

/// A claim counter on a cache line of its own (two, for the adjacent-line
/// prefetcher), so that the threads' claims in their own regions do not
/// invalidate each other's lines.
#[repr(align(128))]
#[derive(Default)]
struct Counter(core::sync::atomic::AtomicUsize);

impl RowPlan {
    /// Cuts a one-row product over matrices of `rows[j]` rows (of
    /// `row_bytes[j]` bytes each) for `threads` threads: one region per
    /// thread, each cut by guided self-scheduling into chunks of about
    /// [`CHUNK_SHARE`] of the region's bytes still ahead, so the first
    /// chunks are large (few claims) and the last ones smaller (a thread that
    /// helps in a region at its end takes less at a time), but at least
    /// [`MIN_CHUNK_BYTES`] and a multiple of [`ROW_ALIGN`] rows (except at a
    /// matrix's end), and the whole rest of the region when less than
    /// [`MIN_TAIL_BYTES`] would be left. One thread: one chunk per matrix.
    fn new(rows: &[usize], row_bytes: &[usize], threads: usize) -> RowPlan {
        let regions = threads.clamp(1, MAX_REGIONS);
        let total: usize = rows.iter().zip(row_bytes).map(|(r, b)| r * b.max(&1)).sum();
        // Byte offset where region `r` ends.
        let region_end = |r: usize| (total / regions) * (r + 1) + (total % regions) * (r + 1) / regions;
        let mut min_bytes = MIN_CHUNK_BYTES;
        loop {
            let mut plan = RowPlan {
                chunks: [RowChunk::default(); MAX_ROW_CHUNKS],
                count: 0,
                regions,
                bounds: [0; MAX_REGIONS + 1],
            };
            let (mut region, mut done) = (0usize, 0usize);
            let mut complete = true;
            'matrices: for (j, (&n, &rb)) in rows.iter().zip(row_bytes).enumerate() {
                let rb = rb.max(1);
                let min_rows = (min_bytes / rb).max(1).next_multiple_of(ROW_ALIGN);
                let mut r0 = 0;
                while r0 < n {
                    while region + 1 < regions && done >= region_end(region) {
                        region += 1;
                        plan.bounds[region] = plan.count;
                    }
                    if plan.count == MAX_ROW_CHUNKS {
                        complete = false;
                        break 'matrices;
                    }
                    let r1 = if threads <= 1 {
                        n
                    } else {
                        // Rows of this region still ahead (at least one), and
                        // the row (aligned up) where the region ends.
                        let left = region_end(region).saturating_sub(done).div_ceil(rb).max(1);
                        let mut want =
                            (left * CHUNK_SHARE.0).div_ceil(CHUNK_SHARE.1).max(min_rows).next_multiple_of(ROW_ALIGN);
                        if left.saturating_sub(want) * rb < MIN_TAIL_BYTES {
                            want = left.next_multiple_of(ROW_ALIGN);
                        }
                        (r0 + want).min((r0 + left).next_multiple_of(ROW_ALIGN)).min(n)
                    };
                    plan.chunks[plan.count] = RowChunk { j, r0, r1 };
                    plan.count += 1;
                    done += (r1 - r0) * rb;
                    r0 = r1;
                }
            }
            if complete {
                for b in &mut plan.bounds[region + 1..=regions] {
                    *b = plan.count;
                }
                return plan;
            }
            // Too many chunks (a huge matrix): fewer, larger ones.
            min_bytes *= 2;
        }
    }

    /// The index of the next chunk for thread `thread` to run, or `None`
    /// when every chunk is taken: the next one of its own region, else the
    /// next one of the following regions in turn (a thread done with its
    /// region helps the others, from where their owners have got to, so that
    /// one thread running alone still reads every region in address order).
    /// `next[r]` counts the claims in region `r`. Each call that returns
    /// `Some` takes a chunk no other call took; as many calls as there are
    /// chunks take them all, whichever threads make them.
    fn claim(&self, next: &[Counter], thread: usize) -> Option<usize> {
        use core::sync::atomic::Ordering::Relaxed;
        let home = thread % self.regions;
        for k in 0..self.regions {
            let r = (home + k) % self.regions;
            let (b0, b1) = (self.bounds[r], self.bounds[r + 1]);
            // A region seen exhausted stays so: skip it without a write to
            // its line.
            if next[r].0.load(Relaxed) >= b1 - b0 {
                continue;
            }
            let c = next[r].0.fetch_add(1, Relaxed);
            if c < b1 - b0 {
                return Some(b0 + c);
            }
        }
        None
    }
}

/// The one-input-row (decode) path of [`matmul_then`]: the activations are
/// quantized in `scratch` (slot `slot_of[j]` for matrix `j`); output rows are
/// cut by [`RowPlan::new`] and claimed by the threads.
fn matvec(
    kernels: &Kernels,
    par: &dyn Parallel,
    cols: usize,
    jobs: &mut [(&Mat<'_>, &mut [f32])],
    scratch: &ActScratch<'_>,
    slot_of: &[usize; MAX_GROUP],
    glu: Option<Glu<'_>>,
) -> Result<(), Error> {
    let n_jobs = jobs.len();
    let mut mats: [Option<Mat<'_>>; MAX_GROUP] = [None; MAX_GROUP];
    let mut acts: [&[u8]; MAX_GROUP] = [&[]; MAX_GROUP];
    let mut outs: [Option<SharedMut<'_, f32>>; MAX_GROUP] = [None, None, None];
    for (j, (w, out)) in jobs.iter_mut().enumerate() {
        let rb = ember_quant::matmul::act_row_bytes(w.act_type(), cols)?;
        mats[j] = Some(**w);
        acts[j] = &scratch.buf[slot_of[j] * scratch.slot_bytes..][..rb];
        outs[j] = Some(SharedMut::new(&mut out[..w.rows]));
    }
    // With `glu`, a chunk covers the same rows of the gate and the up
    // projection: plan it as one matrix whose rows hold both.
    let (mut rows, mut row_bytes) = ([0usize; MAX_GROUP], [0usize; MAX_GROUP]);
    let planned = if glu.is_some() {
        rows[0] = mats[0].map_or(0, |w| w.rows);
        row_bytes[0] = mats.iter().flatten().map(|w| w.row_bytes()).sum();
        1
    } else {
        for (j, w) in mats.iter().flatten().enumerate() {
            (rows[j], row_bytes[j]) = (w.rows, w.row_bytes());
        }
        n_jobs
    };
    // Cut for the threads the job will run on: on the caller alone (a pool
    // under contention), one chunk per matrix, as with one thread (cut for
    // two, SmolLM2 and Gemma 3 tg64 -t 2 under contention ran 7% slower
    // than -t 1). Any cut is correct with any number of threads.
    let plan = RowPlan::new(&rows[..planned], &row_bytes[..planned], par.active_threads());
    let next: [Counter; MAX_REGIONS] = Default::default();
    let err: FirstError<Error> = FirstError::new();
    let product = |j: usize, r0: usize, r1: usize| -> Result<&mut [f32], Error> {
        let (Some(w), Some(out)) = (mats[j].as_ref(), outs[j].as_ref()) else {
            return Err(Error::BadOption("matvec: no such matrix"));
        };
        let wrb = w.row_bytes();
        // SAFETY: each chunk is a distinct block of rows, run once; these are
        // its rows of matrix `j` (or of both matrices of a gate/up pair).
        let o = unsafe { out.slice(r0..r1) };
        kernels.gemm_strided(w.ty, cols, &w.data[r0 * wrb..r1 * wrb], acts[j], o, r1 - r0)?;
        Ok(o)
    };
    // As many calls as chunks, each claiming one chunk (see `RowPlan::claim`):
    // the pool's own chunk index only counts the calls.
    par.run(plan.count, &|_, thread| {
        let Some(c) = plan.claim(&next, thread) else { return };
        let RowChunk { j, r0, r1 } = plan.chunks[c];
        match glu {
            None => err.check(product(j, r0, r1).map(|_| ())),
            Some(glu) => err.check(product(0, r0, r1).and_then(|g| glu(g, product(1, r0, r1)?))),
        }
    });
    err.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_quant::f16;
    use std::vec;
    use std::vec::Vec;

    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    #[test]
    fn f16_conversion_is_exact_for_every_pattern() {
        for h in 0..=u16::MAX {
            let want = f16::from_bits(h).to_f32();
            let got = f16_to_f32(h);
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{h:#x}: {got} vs {want}");
        }
    }

    #[test]
    fn f32_to_f16_rounds_like_f16c() {
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        let check = |x: f32| {
            let want = f16::from_f32(x).to_bits();
            let got = f32_to_f16(x);
            if x.is_nan() {
                assert!(f16_to_f32(got).is_nan());
            } else {
                assert_eq!(got, want, "{x:e} ({:#x})", x.to_bits());
            }
        };
        for e in 90u32..160 {
            for _ in 0..2000 {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                let bits = (e << 23) | (r as u32 & 0x807f_ffff);
                check(f32::from_bits(bits));
            }
        }
        // ties in the normal and subnormal ranges, the overflow edge, specials
        for h in 0u32..0x7c00 {
            let x = f16_to_f32(h as u16);
            let next = f16_to_f32(h as u16 + 1);
            check(x);
            check((x + next) / 2.0);
            check(-(x + next) / 2.0);
        }
        for x in [65504.0f32, 65519.99, 65520.0, 65536.0, 1e9, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0, -0.0] {
            check(x);
        }
    }

    #[test]
    fn rmsnorm_matches_f64_reference() {
        let mut r = rng(1);
        for n in [1usize, 7, 64, 576] {
            let x: Vec<f32> = (0..n).map(|_| r() * 3.0).collect();
            let w: Vec<f32> = (0..n).map(|_| r()).collect();
            let mut out = vec![0.0; n];
            rmsnorm(&mut out, &x, &w, 1e-5);
            let ms = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / n as f64;
            let s = 1.0 / (ms + 1e-5).sqrt();
            for i in 0..n {
                let want = x[i] as f64 * s * w[i] as f64;
                assert!((out[i] as f64 - want).abs() <= 1e-5 * want.abs().max(1e-3), "n={n} i={i}");
            }
            let mut y = x.clone();
            rmsnorm_in_place(&mut y, &w, 1e-5);
            assert_eq!(y, out);
        }
    }

    fn rope_ref(x: &[f32], pos: usize, base: f64, n_rot: usize, neox: bool) -> Vec<f64> {
        let mut y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for i in 0..n_rot / 2 {
            let theta = pos as f64 * base.powf(-2.0 * i as f64 / n_rot as f64);
            let (a, b) = if neox { (i, i + n_rot / 2) } else { (2 * i, 2 * i + 1) };
            let (x0, x1) = (x[a] as f64, x[b] as f64);
            y[a] = x0 * theta.cos() - x1 * theta.sin();
            y[b] = x0 * theta.sin() + x1 * theta.cos();
        }
        y
    }

    #[test]
    fn rope_matches_f64_reference_both_styles() {
        let mut r = rng(2);
        for (hd, n_rot) in [(64usize, 64usize), (128, 64), (256, 256)] {
            let x: Vec<f32> = (0..hd).map(|_| r()).collect();
            for pos in [0usize, 1, 17, 300, 2000] {
                for neox in [false, true] {
                    let mut cache = vec![0.0f32; n_rot];
                    rope_cache(&mut cache, pos, 10000.0, 1.0, None);
                    let mut y = x.clone();
                    rope_apply(&mut y, &cache, if neox { RopeStyle::Neox } else { RopeStyle::Normal });
                    let want = rope_ref(&x, pos, 10000.0, n_rot, neox);
                    // theta accumulates f32 rounding over the pairs, as in ggml:
                    // the error grows with the angle, ~pos * 1e-7 relative.
                    let tol = 2e-4 + pos as f64 * 2e-6;
                    for i in 0..hd {
                        assert!((y[i] as f64 - want[i]).abs() < tol, "hd={hd} pos={pos} neox={neox} i={i}");
                    }
                    // rotation keeps the norm
                    let n0: f32 = x[..n_rot].iter().map(|v| v * v).sum();
                    let n1: f32 = y[..n_rot].iter().map(|v| v * v).sum();
                    assert!((n0 - n1).abs() < 1e-4 * n0.max(1.0));
                    assert_eq!(&y[n_rot..], &x[n_rot..]);
                }
            }
        }
    }

    #[test]
    fn rope_position_zero_is_identity() {
        let x: Vec<f32> = (0..64).map(|i| i as f32 * 0.1).collect();
        let mut cache = vec![0.0f32; 64];
        rope_cache(&mut cache, 0, 500000.0, 1.0, None);
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let mut y = x.clone();
            rope_apply(&mut y, &cache, style);
            assert_eq!(y, x);
        }
    }

    #[test]
    fn softmax_matches_f64_reference() {
        let mut r = rng(3);
        let x: Vec<f32> = (0..1000).map(|_| r() * 20.0).collect();
        let mut y = x.clone();
        softmax(&mut y);
        let max = x.iter().copied().fold(f64::MIN, |a, b| a.max(b as f64));
        let e: Vec<f64> = x.iter().map(|&v| (v as f64 - max).exp()).collect();
        let s: f64 = e.iter().sum();
        for i in 0..x.len() {
            assert!((y[i] as f64 - e[i] / s).abs() < 1e-6, "i={i}");
        }
        assert!((y.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn fma_rounds_once() {
        // 1 + 2^-24 is not representable; (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 rounds to
        // 1 + 2^-11 when the product is rounded first, and the FMA keeps the tail:
        let a = 1.0 + f32::EPSILON * 2048.0; // 1 + 2^-12
        let c = -(1.0 + f32::EPSILON * 4096.0); // -(1 + 2^-11)
        assert_eq!(a * a + c, 0.0);
        assert_eq!(fma(a, a, c), 2f32.powi(-24));
    }

    #[test]
    fn activations_match_formulas() {
        for &x in &[-12.0f32, -3.0, -0.5, 0.0, 0.25, 2.0, 9.9, 15.0] {
            let want = x as f64 / (1.0 + (-x as f64).exp());
            assert!((silu(x) as f64 - want).abs() < 1e-6 * want.abs().max(1.0));
            let g = 0.5
                * x as f64
                * (1.0 + ((2.0 / core::f64::consts::PI).sqrt() * (x as f64 + 0.044715 * (x as f64).powi(3))).tanh());
            assert!((gelu_tanh(x) as f64 - g).abs() < 1e-5 * g.abs().max(1.0), "x={x}");
        }
        let mut table = vec![0u16; 65536];
        gelu_table(&mut table);
        let gate = [-11.0f32, -1.0, 0.3, 1.7, 12.0];
        let up = [2.0f32, 3.0, -1.0, 0.5, 2.0];
        let mut out = gate;
        geglu(&Kernels::best(), &mut out, &up, &table).unwrap();
        assert_eq!(out[0], 0.0);
        assert_eq!(out[4], 24.0);
        for i in 1..4 {
            let want = gelu_tanh(gate[i]) * up[i];
            // the f16 rounding of the input and of GELU: ~1e-3 relative
            assert!((out[i] - want).abs() < 2e-3 * want.abs().max(0.1), "i={i}: {} vs {want}", out[i]);
        }
        let mut s = [1.0f32, -2.0];
        swiglu(&Kernels::best(), &mut s, &[3.0, 4.0]).unwrap();
        assert_eq!(s, [silu(1.0) * 3.0, silu(-2.0) * 4.0]);
    }

    /// f64 attention with a causal window, on values as the cache stores them.
    fn attention_ref(q: &[f32], ks: &[Vec<f32>], vs: &[Vec<f32>], scale: f64) -> Vec<f64> {
        let s: Vec<f64> =
            ks.iter().map(|k| k.iter().zip(q).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale).collect();
        let m = s.iter().copied().fold(f64::MIN, f64::max);
        let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        let mut out = vec![0.0f64; vs[0].len()];
        for (w, v) in e.iter().zip(vs) {
            for (o, &x) in out.iter_mut().zip(v) {
                *o += w / sum * x as f64;
            }
        }
        out
    }

    fn ks_all(vals: &[Vec<f32>], lo: usize, hi: usize, head: usize, d: usize) -> Vec<Vec<f32>> {
        (lo..hi).map(|p| vals[p][head * d..(head + 1) * d].to_vec()).collect()
    }

    fn check_attention(ty: KvType, tol: f64) {
        let mut r = rng(4);
        let (n_kv_heads, dk, dv, cells) = (2usize, 64usize, 64usize, 40usize);
        let eb = ty.elem_bytes();
        let row_k = n_kv_heads * dk * eb;
        let row_v = n_kv_heads * dv * eb;
        let mut kbuf = vec![0u32; cells * row_k / 4];
        let mut vbuf = vec![0u32; cells * row_v / 4];
        let kb: &mut [u8] = bytemuck::cast_slice_mut(&mut kbuf);
        let vb: &mut [u8] = bytemuck::cast_slice_mut(&mut vbuf);
        // positions 0..100 written into a ring of 40 cells: the last 40 stay.
        let n_pos = 100;
        let mut kvals = vec![vec![0.0f32; n_kv_heads * dk]; n_pos];
        let mut vvals = vec![vec![0.0f32; n_kv_heads * dv]; n_pos];
        for p in 0..n_pos {
            for i in 0..n_kv_heads * dk {
                kvals[p][i] = r() * 2.0;
                vvals[p][i] = r();
            }
            let c = p % cells;
            ty.store(&kvals[p], &mut kb[c * row_k..(c + 1) * row_k]);
            ty.store(&vvals[p], &mut vb[c * row_v..(c + 1) * row_v]);
            // what the cache holds, for the reference
            kvals[p] = ty.round_trip(&kvals[p]);
            vvals[p] = ty.round_trip(&vvals[p]);
        }
        let q: Vec<f32> = (0..dk).map(|_| r()).collect();
        let mut qs = vec![0.0f32; 4 * dk];
        let (mut acc, mut row) = (vec![0.0f32; dv], vec![0.0f32; dk.max(dv)]);
        for head in 0..n_kv_heads {
            for (lo, hi) in [(60usize, 100usize), (99, 100), (70, 85)] {
                let kh = KvHead { data: kb, ty, row_bytes: row_k, offset: head * dk * eb, dim: dk, cells };
                let vh = KvHead { data: vb, ty, row_bytes: row_v, offset: head * dv * eb, dim: dv, cells };
                let mut out = vec![0.0f32; dv];
                let mut scratch = AttnScratch { q: &mut qs, acc: &mut acc, row: &mut row };
                let half = AttnParams { scale: 0.125, softcap: 0.0, half: true };
                attend(&Kernels::best(), &q, &kh, &vh, lo..hi, half, &mut scratch, &mut out).unwrap();
                // the portable kernels give the same bits as the SIMD ones
                let mut out_generic = vec![0.0f32; dv];
                attend(&Kernels::generic(), &q, &kh, &vh, lo..hi, half, &mut scratch, &mut out_generic).unwrap();
                assert_eq!(out, out_generic, "{ty:?} head={head} {lo}..{hi}: SIMD vs generic kernels");
                let mut out32 = vec![0.0f32; dv];
                attend(
                    &Kernels::best(),
                    &q,
                    &kh,
                    &vh,
                    lo..hi,
                    AttnParams { half: false, ..half },
                    &mut scratch,
                    &mut out32,
                )
                .unwrap();
                let full = AttnParams { half: false, ..half };
                attend(&Kernels::generic(), &q, &kh, &vh, lo..hi, full, &mut scratch, &mut out_generic).unwrap();
                assert_eq!(out32, out_generic, "{ty:?} head={head} {lo}..{hi}: f32 path, SIMD vs generic kernels");
                let qr = ty.round_trip(&q);
                let want32 =
                    attention_ref(&q, &ks_all(&kvals, lo, hi, head, dk), &ks_all(&vvals, lo, hi, head, dv), 0.125);
                for i in 0..dv {
                    assert!((out32[i] as f64 - want32[i]).abs() < 1e-5, "{ty:?} f32 accumulation, i={i}");
                }
                let ks: Vec<Vec<f32>> = (lo..hi).map(|p| kvals[p][head * dk..(head + 1) * dk].to_vec()).collect();
                let vs: Vec<Vec<f32>> = (lo..hi).map(|p| vvals[p][head * dv..(head + 1) * dv].to_vec()).collect();
                let want = attention_ref(&qr, &ks, &vs, 0.125);
                for i in 0..dv {
                    assert!(
                        (out[i] as f64 - want[i]).abs() < tol,
                        "{ty:?} head={head} {lo}..{hi} i={i}: {} vs {}",
                        out[i],
                        want[i]
                    );
                }
            }
        }
    }

    #[test]
    fn a_query_group_gives_what_each_head_gives_alone() {
        let mut r = rng(9);
        let (dk, cells, g) = (64usize, 30usize, 3usize);
        for ty in [KvType::F16, KvType::F32] {
            let eb = ty.elem_bytes();
            let mut kbuf = vec![0u32; cells * dk * eb / 4];
            let mut vbuf = vec![0u32; cells * dk * eb / 4];
            for c in 0..cells {
                let kv: Vec<f32> = (0..dk).map(|_| r()).collect();
                let vv: Vec<f32> = (0..dk).map(|_| r()).collect();
                ty.store(&kv, &mut bytemuck::cast_slice_mut(&mut kbuf)[c * dk * eb..(c + 1) * dk * eb]);
                ty.store(&vv, &mut bytemuck::cast_slice_mut(&mut vbuf)[c * dk * eb..(c + 1) * dk * eb]);
            }
            let kh = KvHead { data: bytemuck::cast_slice(&kbuf), ty, row_bytes: dk * eb, offset: 0, dim: dk, cells };
            let vh = KvHead { data: bytemuck::cast_slice(&vbuf), ty, row_bytes: dk * eb, offset: 0, dim: dk, cells };
            let q: Vec<f32> = (0..g * dk).map(|_| r()).collect();
            let (mut qs, mut acc, mut row) = (vec![0.0; 4 * dk], vec![0.0; g * dk], vec![0.0; dk]);
            let mut together = vec![0.0f32; g * dk];
            let mut sc = AttnScratch { q: &mut qs, acc: &mut acc, row: &mut row };
            for half in [true, false] {
                let p = AttnParams { scale: 0.125, softcap: 0.0, half };
                attend(&Kernels::best(), &q, &kh, &vh, 0..cells, p, &mut sc, &mut together).unwrap();
                for h in 0..g {
                    let mut alone = vec![0.0f32; dk];
                    let qh = &q[h * dk..(h + 1) * dk];
                    attend(&Kernels::best(), qh, &kh, &vh, 0..cells, p, &mut sc, &mut alone).unwrap();
                    assert_eq!(&together[h * dk..(h + 1) * dk], &alone[..], "{ty:?} head {h} half={half}");
                }
            }
        }
    }

    #[test]
    fn attention_f32_cache_matches_f64_reference() {
        check_attention(KvType::F32, 1e-5);
    }

    #[test]
    fn attention_f16_cache_matches_f64_reference_within_f16_accumulation() {
        // the f16 accumulator adds ~2^-11 relative error per update
        check_attention(KvType::F16, 3e-3);
    }

    #[test]
    fn attention_with_one_position_returns_that_value() {
        let k = [0.5f32; 8];
        let v: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let (kb, vb): (&[u8], &[u8]) = (bytemuck::cast_slice(&k), bytemuck::cast_slice(&v));
        let kh = KvHead { data: kb, ty: KvType::F32, row_bytes: 32, offset: 0, dim: 8, cells: 1 };
        let vh = KvHead { data: vb, ty: KvType::F32, row_bytes: 32, offset: 0, dim: 8, cells: 1 };
        let (mut qs, mut acc, mut row) = ([0.0f32; 32], [0.0f32; 8], [0.0f32; 8]);
        let mut scratch = AttnScratch { q: &mut qs, acc: &mut acc, row: &mut row };
        let mut out = [0.0f32; 8];
        let p = AttnParams { scale: 1.0, softcap: 0.0, half: true };
        attend(&Kernels::best(), &[1.0; 8], &kh, &vh, 0..1, p, &mut scratch, &mut out).unwrap();
        assert_eq!(&out[..], &v[..]);
    }

    #[test]
    fn row_plans_cover_every_row_once_in_one_region_per_thread() {
        let cases: [&[(usize, usize)]; 9] = [
            &[(1, 18)],
            &[(7, 324)],
            &[(101, 612)],
            &[(576, 324), (192, 324), (192, 324)],
            &[(1536, 648)],
            &[(49152, 612)],
            &[(262_144, 680)],
            &[(5, 100), (0, 100), (3, 100)],
            &[(0, 64)],
        ];
        for case in cases {
            let rows: Vec<usize> = case.iter().map(|c| c.0).collect();
            let bytes: Vec<usize> = case.iter().map(|c| c.1).collect();
            let total: usize = case.iter().map(|c| c.0 * c.1).sum();
            for threads in 1..5 {
                let plan = RowPlan::new(&rows, &bytes, threads);
                let chunks = &plan.chunks[..plan.count];
                // in address order: matrix by matrix, rows in order, each once
                let mut at = (0usize, 0usize);
                for c in chunks {
                    while at.0 < c.j {
                        assert_eq!(at.1, rows[at.0], "{case:?} t={threads}: matrix {} not covered", at.0);
                        at = (at.0 + 1, 0);
                    }
                    assert_eq!((c.j, c.r0), at, "{case:?} t={threads}");
                    assert!(c.r1 > c.r0 && c.r1 <= rows[c.j]);
                    assert!(c.r1 % ROW_ALIGN == 0 || c.r1 == rows[c.j], "{case:?} t={threads}: {c:?}");
                    at.1 = c.r1;
                }
                while at.0 < rows.len() {
                    assert_eq!(at.1, rows[at.0], "{case:?} t={threads}: matrix {} not covered", at.0);
                    at = (at.0 + 1, 0);
                }
                // one region per thread, consecutive, covering every chunk
                assert_eq!(plan.regions, threads);
                assert_eq!(plan.bounds[0], 0);
                assert_eq!(plan.bounds[threads], plan.count);
                assert!(plan.bounds[..=threads].windows(2).all(|w| w[0] <= w[1]), "{case:?} t={threads}");
                if threads == 1 {
                    assert_eq!(plan.count, rows.iter().filter(|&&r| r > 0).count(), "one chunk per matrix");
                }
                let region_bytes = |r: usize| -> usize {
                    chunks[plan.bounds[r]..plan.bounds[r + 1]].iter().map(|c| (c.r1 - c.r0) * bytes[c.j]).sum()
                };
                if threads > 1 && total >= 4 * 1024 * 1024 {
                    for r in 0..threads {
                        // regions of equal bytes, give or take an aligned block of rows
                        let b = region_bytes(r) as f64;
                        let want = total as f64 / threads as f64;
                        assert!((b - want).abs() <= (ROW_ALIGN * 680) as f64, "{case:?} t={threads} r={r}: {b} bytes");
                        // guided chunks: a long region is several, the last
                        // of them under 8 × MIN_TAIL_BYTES (where 1/8 of the
                        // rest falls under MIN_TAIL_BYTES)
                        let last = chunks[plan.bounds[r + 1] - 1];
                        let lb = (last.r1 - last.r0) * bytes[last.j];
                        assert!(lb < 8 * MIN_TAIL_BYTES + ROW_ALIGN * bytes[last.j], "{case:?}: last chunk {lb} bytes");
                        if b >= (16 * MIN_TAIL_BYTES) as f64 {
                            assert!(plan.bounds[r + 1] - plan.bounds[r] >= 2, "{case:?}: region {r} has one chunk");
                        }
                    }
                }
                // no chunk leaves less than MIN_TAIL_BYTES of its region
                // behind it (a matrix's end may cut one short)
                if threads > 1 {
                    for r in 0..threads {
                        let (b0, b1) = (plan.bounds[r], plan.bounds[r + 1]);
                        for c in b0..b1 {
                            let after: usize = chunks[c + 1..b1].iter().map(|x| (x.r1 - x.r0) * bytes[x.j]).sum();
                            let cut_by_matrix = chunks[c].r1 == rows[chunks[c].j];
                            assert!(
                                after == 0 || after >= MIN_TAIL_BYTES || cut_by_matrix,
                                "{case:?} t={threads} r={r}: {after} bytes after chunk {c}"
                            );
                        }
                    }
                }
                // a region of a layer-sized product is one chunk per matrix
                if threads == 2 && case.len() == 1 && total <= 2 * 1024 * 1024 {
                    for r in 0..threads {
                        assert!(plan.bounds[r + 1] - plan.bounds[r] <= 1, "{case:?} r={r}: {plan:?}", plan = &chunks);
                    }
                }
            }
        }
    }

    #[test]
    fn row_plan_claims_give_each_chunk_once_and_own_regions_first() {
        let rows = [576usize, 192, 192];
        let bytes = [612usize; 3];
        for threads in 1..5 {
            let plan = RowPlan::new(&rows, &bytes, threads);
            // One thread making every call (a pool running the job alone):
            // every chunk, in address order, whatever its thread index.
            for t in 0..threads {
                let next: [Counter; MAX_REGIONS] = Default::default();
                let got: Vec<usize> = (0..plan.count).map(|_| plan.claim(&next, t).unwrap()).collect();
                // thread t starts in its region, then goes on to the next ones
                let mut order: Vec<usize> = Vec::new();
                for k in 0..threads {
                    let r = (t + k) % threads;
                    order.extend(plan.bounds[r]..plan.bounds[r + 1]);
                }
                assert_eq!(got, order, "t={t} of {threads}");
                assert_eq!(plan.claim(&next, t), None);
            }
            // Threads taking turns in a fixed pseudo-random order: each chunk
            // once; while a thread's region has chunks left it gets the
            // first of them, and otherwise the first one left in the next
            // region that has any.
            let next: [Counter; MAX_REGIONS] = Default::default();
            let mut taken = vec![false; plan.count];
            let mut state = 12345u64;
            for _ in 0..plan.count {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let t = (state >> 33) as usize % threads;
                let want = (0..threads)
                    .map(|k| (t + k) % threads)
                    .find_map(|r| (plan.bounds[r]..plan.bounds[r + 1]).find(|&c| !taken[c]))
                    .unwrap();
                let c = plan.claim(&next, t).unwrap();
                assert_eq!(c, want, "t={t} of {threads}");
                taken[c] = true;
            }
            assert!(taken.iter().all(|&x| x), "t={threads}");
            assert_eq!(plan.claim(&next, 0), None);
        }
    }

    /// Weights of `ty` (`rows` x `cols`, random) as a matrix.
    fn random_mat(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let mut r = rng(seed);
        let wf: Vec<f32> = (0..rows * cols).map(|_| r()).collect();
        let mut w = vec![0u8; ty.row_bytes(cols).unwrap() * rows];
        ember_quant::matmul::quantize(ty, &wf, &mut w).unwrap();
        w
    }

    /// `W · x` for one input row in one gemv call over every row: the
    /// reference the chunked one-row path must match bit for bit.
    fn one_gemv(kernels: &Kernels, m: &Mat<'_>, x: &[f32]) -> Vec<f32> {
        let act = m.act_type();
        let mut a = vec![0u64; ember_quant::matmul::act_row_bytes(act, m.cols).unwrap().div_ceil(8)];
        let a = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut a)
            [..ember_quant::matmul::act_row_bytes(act, m.cols).unwrap()];
        kernels.quantize_activations(act, x, a).unwrap();
        let mut out = vec![0.0f32; m.rows];
        kernels.gemm_strided(m.ty, m.cols, m.data, a, &mut out, m.rows).unwrap();
        out
    }

    #[cfg(feature = "std")]
    #[test]
    fn one_row_products_match_one_gemv_for_any_thread_count() {
        use crate::threads::{Serial, ThreadPool};
        /// A pool whose `active_threads` hint is wrong: work cut for
        /// `.1` threads runs on all of the pool's (as when a pool's time
        /// alone ends between the cut and the run).
        struct Hint<'a>(&'a ThreadPool, usize);
        impl Parallel for Hint<'_> {
            fn threads(&self) -> usize {
                self.0.threads()
            }
            fn active_threads(&self) -> usize {
                self.1
            }
            fn run(&self, chunks: usize, job: &(dyn Fn(usize, usize) + Sync)) {
                self.0.run(chunks, job)
            }
        }
        let pools: Vec<ThreadPool> = (2..4).map(ThreadPool::new).collect();
        let hints = [Hint(&pools[0], 1), Hint(&pools[1], 1), Hint(&pools[1], 2)];
        let mut pars: Vec<&dyn Parallel> = vec![&Serial];
        pars.extend(pools.iter().map(|p| p as &dyn Parallel));
        pars.extend(hints.iter().map(|h| h as &dyn Parallel));
        let cols = 256;
        let mut r = rng(7);
        let x: Vec<f32> = (0..cols).map(|_| r()).collect();
        let mut buf = vec![0u64; 3 * 1024];
        let mut scratch = ActScratch { buf: bytemuck::cast_slice_mut(&mut buf), slot_bytes: 8192 };
        let formats = [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K];
        for kernels in [Kernels::generic(), Kernels::best()] {
            for (f, &ty) in formats.iter().enumerate() {
                // rows not a multiple of the rows per pass, and enough rows
                // (900 · 144 bytes) for several chunks of MIN_CHUNK_BYTES
                for rows in [1usize, 7, 9, 37, 101, 900] {
                    let wa = random_mat(ty, rows, cols, 100 + f as u64);
                    let wb = random_mat(GgmlType::Q8_0, rows + 3, cols, 200 + f as u64);
                    let ma = Mat { ty, cols, rows, data: &wa };
                    let mb = Mat { ty: GgmlType::Q8_0, cols, rows: rows + 3, data: &wb };
                    let (want_a, want_b) = (one_gemv(&kernels, &ma, &x), one_gemv(&kernels, &mb, &x));
                    for par in &pars {
                        let (mut oa, mut ob) = (vec![0.0f32; rows], vec![0.0f32; rows + 3]);
                        matmul(&kernels, *par, &x, 1, cols, &mut [(&ma, &mut oa), (&mb, &mut ob)], &mut scratch)
                            .unwrap();
                        let (t, at) = (par.threads(), par.active_threads());
                        let same = |o: &[f32], w: &[f32]| o.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same(&oa, &want_a), "{ty:?} {rows} t={t}, cut for {at}");
                        assert!(same(&ob, &want_b), "{ty:?} {rows} t={t}, cut for {at}");
                    }
                }
            }
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn matvec_glu_matches_matmul_then_the_activation() {
        use crate::threads::{Serial, ThreadPool};
        let pools: Vec<ThreadPool> = (2..4).map(ThreadPool::new).collect();
        let mut pars: Vec<&dyn Parallel> = vec![&Serial];
        pars.extend(pools.iter().map(|p| p as &dyn Parallel));
        let mut table = vec![0u16; 65536];
        gelu_table(&mut table);
        let cols = 256;
        let mut r = rng(8);
        let x: Vec<f32> = (0..cols).map(|v| r() * (1 + v % 5) as f32).collect();
        let mut buf = vec![0u64; 3 * 1024];
        let mut scratch = ActScratch { buf: bytemuck::cast_slice_mut(&mut buf), slot_bytes: 8192 };
        for kernels in [Kernels::generic(), Kernels::best()] {
            for rows in [1usize, 13, 101, 1536] {
                for ty in [GgmlType::Q4_0, GgmlType::Q4_K] {
                    let wg = random_mat(ty, rows, cols, 300);
                    let wu = random_mat(ty, rows, cols, 301);
                    let mg = Mat { ty, cols, rows, data: &wg };
                    let mu = Mat { ty, cols, rows, data: &wu };
                    let (g0, u0) = (one_gemv(&kernels, &mg, &x), one_gemv(&kernels, &mu, &x));
                    for gelu in [false, true] {
                        let mut want = g0.clone();
                        if gelu {
                            geglu(&kernels, &mut want, &u0, &table).unwrap();
                        } else {
                            swiglu(&kernels, &mut want, &u0).unwrap();
                        }
                        let glu = |g: &mut [f32], u: &[f32]| {
                            if gelu {
                                geglu(&kernels, g, u, &table)
                            } else {
                                swiglu(&kernels, g, u)
                            }
                        };
                        for par in &pars {
                            let (mut g, mut u) = (vec![0.0f32; rows], vec![0.0f32; rows]);
                            matvec_glu(&kernels, *par, &x, cols, (&mg, &mut g), (&mu, &mut u), &mut scratch, &glu)
                                .unwrap();
                            let t = par.threads();
                            assert!(g.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{rows} t={t}");
                            assert!(u.iter().zip(&u0).all(|(a, b)| a.to_bits() == b.to_bits()), "{rows} t={t}");
                        }
                    }
                }
            }
        }
        // gate and up of different heights are an error, not a panic
        let w = random_mat(GgmlType::Q4_0, 9, cols, 302);
        let (mg, mu) =
            (Mat { ty: GgmlType::Q4_0, cols, rows: 9, data: &w }, Mat { ty: GgmlType::Q4_0, cols, rows: 8, data: &w });
        let (mut g, mut u) = (vec![0.0f32; 9], vec![0.0f32; 9]);
        let glu = |_: &mut [f32], _: &[f32]| Ok(());
        assert!(
            matvec_glu(&Kernels::best(), &Serial, &x, cols, (&mg, &mut g), (&mu, &mut u), &mut scratch, &glu).is_err()
        );
    }

    #[test]
    fn matmul_matches_f64_reference_for_q8_0_and_f32() {
        use crate::threads::Serial;
        let kernels = Kernels::generic();
        let mut r = rng(5);
        let (rows, cols, n) = (37usize, 96usize, 5usize);
        let wf: Vec<f32> = (0..rows * cols).map(|_| r()).collect();
        let x: Vec<f32> = (0..n * cols).map(|_| r()).collect();
        let mut w8 = vec![0u8; GgmlType::Q8_0.row_bytes(cols).unwrap() * rows];
        ember_quant::matmul::quantize(GgmlType::Q8_0, &wf, &mut w8).unwrap();
        let mut w32 = vec![0u32; rows * cols];
        ember_quant::matmul::quantize(GgmlType::F32, &wf, bytemuck::cast_slice_mut(&mut w32)).unwrap();
        let m8 = Mat { ty: GgmlType::Q8_0, cols, rows, data: &w8 };
        let m32 = Mat { ty: GgmlType::F32, cols, rows, data: bytemuck::cast_slice(&w32) };
        let mut buf = vec![0u64; 3 * 1024];
        let mut scratch = ActScratch { buf: bytemuck::cast_slice_mut(&mut buf), slot_bytes: 8192 };
        let (mut o8, mut o32) = (vec![0.0f32; n * rows], vec![0.0f32; n * rows]);
        matmul(&kernels, &Serial, &x, n, cols, &mut [(&m8, &mut o8), (&m32, &mut o32)], &mut scratch).unwrap();
        for i in 0..n {
            for rr in 0..rows {
                let want: f64 = (0..cols).map(|c| wf[rr * cols + c] as f64 * x[i * cols + c] as f64).sum();
                assert!((o32[i * rows + rr] as f64 - want).abs() < 1e-4, "f32 {i} {rr}");
                // Q8_0 on both sides: ~1% of the row's magnitude
                assert!((o8[i * rows + rr] as f64 - want).abs() < 0.05, "q8_0 {i} {rr}");
            }
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn matmul_is_identical_for_any_thread_count() {
        use crate::threads::{Serial, ThreadPool};
        let kernels = Kernels::generic();
        let mut r = rng(6);
        let (rows, cols, n) = (101usize, 64usize, 3usize);
        let wf: Vec<f32> = (0..rows * cols).map(|_| r()).collect();
        let x: Vec<f32> = (0..n * cols).map(|_| r()).collect();
        let mut w = vec![0u8; GgmlType::Q8_0.row_bytes(cols).unwrap() * rows];
        ember_quant::matmul::quantize(GgmlType::Q8_0, &wf, &mut w).unwrap();
        let m = Mat { ty: GgmlType::Q8_0, cols, rows, data: &w };
        let mut buf = vec![0u64; 3 * 1024];
        let mut scratch = ActScratch { buf: bytemuck::cast_slice_mut(&mut buf), slot_bytes: 8192 };
        let mut o1 = vec![0.0f32; n * rows];
        matmul(&kernels, &Serial, &x, n, cols, &mut [(&m, &mut o1)], &mut scratch).unwrap();
        for t in 2..4 {
            let pool = ThreadPool::new(t);
            let mut o = vec![0.0f32; n * rows];
            matmul(&kernels, &pool, &x, n, cols, &mut [(&m, &mut o)], &mut scratch).unwrap();
            assert_eq!(o, o1, "threads={t}");
        }
    }

    /// ggml's tiled flash attention for one query row, written out step by
    /// step from `ggml_compute_forward_flash_attn_ext_tiled` (build 0c1e570)
    /// with std's `mul_add` as the FMA and its own `ggml_v_expf`:
    /// independent of `attend_tiled` and of `ember_quant::attn_tile`.
    fn tiled_row_ref(
        q: &[f32],
        ks: &[Vec<f32>],
        vs: &[Vec<f32>],
        lo: usize,
        pos: usize,
        scale: f32,
        cap: f32,
    ) -> Vec<f32> {
        fn v_expf(x: f32) -> f32 {
            let r = f32::from_bits(0x4b40_0000);
            let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r);
            let n = z - r;
            let b = (-n).mul_add(f32::from_bits(0x35bf_be8e), (-n).mul_add(f32::from_bits(0x3f31_7200), x));
            let u = b * b;
            let j = f32::from_bits(0x3c07_2010)
                .mul_add(b, f32::from_bits(0x3d2b_9f17))
                .mul_add(u, f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)));
            let j = j.mul_add(u, f32::from_bits(0x3f7f_fff6).mul_add(b, 1.0));
            if n.abs() > 192.0 {
                return if n <= 0.0 { 0.0 } else { f32::INFINITY };
            }
            (j as f64 * 2f64.powi(n as i32)) as f32
        }
        let scale = if cap != 0.0 { scale / cap } else { scale };
        let dv = vs[0].len();
        let (mut m, mut s, mut vkq) = (f32::NEG_INFINITY, 0.0f32, vec![0.0f32; dv]);
        for tile in 0..=pos / 64 {
            let mut kq = [f32::NEG_INFINITY; 64];
            for (t, x) in kq.iter_mut().enumerate() {
                let p = 64 * tile + t;
                if p >= lo && p <= pos {
                    let mut acc = 0.0f32;
                    for (&qd, &kd) in q.iter().zip(&ks[p]) {
                        acc = qd.mul_add(kd, acc);
                    }
                    let mut y = acc * scale;
                    if cap != 0.0 {
                        y = cap * y.tanh();
                    }
                    *x = y;
                }
            }
            let tile_max = kq.iter().fold(f32::NEG_INFINITY, |a, &b| if a > b { a } else { b });
            if tile_max == f32::NEG_INFINITY {
                continue;
            }
            let m_new = if m > tile_max { m } else { tile_max };
            if m_new > m {
                let ms = (m - m_new).exp();
                vkq.iter_mut().for_each(|x| *x *= ms);
                s *= ms;
            }
            m = m_new;
            let mut sum = 0.0f64;
            for c in kq.chunks_exact_mut(16) {
                for x in c.iter_mut() {
                    *x = v_expf(*x - m);
                }
                let t: Vec<f32> = (0..8).map(|i| c[i + 8] + c[i]).collect();
                let u: Vec<f32> = (0..4).map(|i| t[i + 4] + t[i]).collect();
                sum += ((u[0] + u[2]) + (u[1] + u[3])) as f64;
            }
            s = (s as f64 + sum) as f32;
            for (c, o) in vkq.iter_mut().enumerate() {
                for (t, &p) in kq.iter().enumerate() {
                    if p != 0.0 {
                        *o = p.mul_add(vs[64 * tile + t][c], *o);
                    }
                }
            }
        }
        let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
        vkq.iter().map(|x| x * inv).collect()
    }

    /// `attend_tiled` for every (token, head) of blocks at several offsets,
    /// against [`tiled_row_ref`] bit for bit and the f64 softmax within a
    /// tolerance: causal and sliding-window masks (the cache a ring), f16 and
    /// f32 caches, 1, 3 and 4 heads per KV head, head dims 64 and 256.
    #[test]
    fn tiled_attention_is_ggmls_tiled_chain() {
        let mut r = rng(21);
        let mut cases = 0;
        for (ty, g, dk, dv, window, softcap) in [
            (KvType::F16, 3usize, 64usize, 64usize, 0usize, 0.0f32),
            (KvType::F32, 1, 64, 32, 0, 0.0),
            (KvType::F16, 4, 256, 256, 0, 0.0),
            (KvType::F16, 4, 64, 64, 70, 0.0),
            (KvType::F32, 3, 64, 64, 50, 30.0),
        ] {
            let n_kv = 2usize;
            let eb = ty.elem_bytes();
            let (row_k, row_v) = (n_kv * dk * eb, n_kv * dv * eb);
            for (pos0, nt) in [(0usize, 21usize), (37, 16), (100, 64 / g), (130, 5), (0, 1), (60, 9)] {
                let n_pos = pos0 + nt;
                let cells = if window > 0 { (window + nt - 1).min(n_pos) } else { n_pos };
                let mut kbuf = vec![0u32; cells * row_k / 4];
                let mut vbuf = vec![0u32; cells * row_v / 4];
                let kb: &mut [u8] = bytemuck::cast_slice_mut(&mut kbuf);
                let vb: &mut [u8] = bytemuck::cast_slice_mut(&mut vbuf);
                let (mut kvals, mut vvals) = (Vec::new(), Vec::new());
                for p in 0..n_pos {
                    let kv: Vec<f32> = (0..n_kv * dk).map(|_| r() * 2.0).collect();
                    let vv: Vec<f32> = (0..n_kv * dv).map(|_| r()).collect();
                    let c = p % cells;
                    ty.store(&kv, &mut kb[c * row_k..(c + 1) * row_k]);
                    ty.store(&vv, &mut vb[c * row_v..(c + 1) * row_v]);
                    kvals.push(ty.round_trip(&kv));
                    vvals.push(ty.round_trip(&vv));
                }
                let q_stride = n_kv * g * dk + 8;
                let q: Vec<f32> = (0..nt * q_stride).map(|_| r()).collect();
                let rows = g * nt;
                let mut buf = vec![0u64; TileScratch::bytes(rows, dk, dv) / 8];
                for kernels in [Kernels::best(), Kernels::generic()] {
                    for kvh in 0..n_kv {
                        let kh = KvHead { data: kb, ty, row_bytes: row_k, offset: kvh * dk * eb, dim: dk, cells };
                        let vh = KvHead { data: vb, ty, row_bytes: row_v, offset: kvh * dv * eb, dim: dv, cells };
                        let mut sc = TileScratch::carve(bytemuck::cast_slice_mut(&mut buf), rows, dk, dv).unwrap();
                        let params = AttnParams { scale: 0.125, softcap, half: false };
                        let qh = &q[kvh * g * dk..];
                        attend_tiled(&kernels, qh, q_stride, g, nt, &kh, &vh, pos0, window, params, &mut sc).unwrap();
                        for i in 0..nt {
                            let pos = pos0 + i;
                            let lo = if window > 0 { (pos + 1).saturating_sub(window) } else { 0 };
                            let ks: Vec<Vec<f32>> =
                                kvals.iter().map(|k| k[kvh * dk..(kvh + 1) * dk].to_vec()).collect();
                            let vs: Vec<Vec<f32>> =
                                vvals.iter().map(|v| v[kvh * dv..(kvh + 1) * dv].to_vec()).collect();
                            for h in 0..g {
                                let qr = &qh[i * q_stride + h * dk..][..dk];
                                let got = &sc.vkq[(i * g + h) * dv..][..dv];
                                let want = tiled_row_ref(qr, &ks, &vs, lo, pos, 0.125, softcap);
                                let what = format!(
                                    "{ty:?} g={g} dk={dk} w={window} pos0={pos0} nt={nt} kvh={kvh} i={i} h={h} {}",
                                    kernels.tier()
                                );
                                assert_eq!(got, &want[..], "{what}");
                                if softcap == 0.0 {
                                    let f64ref = attention_ref(qr, &ks[lo..=pos], &vs[lo..=pos], 0.125);
                                    for (a, b) in got.iter().zip(&f64ref) {
                                        assert!((*a as f64 - b).abs() < 2e-5, "{what}: {a} vs {b}");
                                    }
                                }
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(cases > 1000, "{cases}");
    }

    #[test]
    fn tiled_attention_rejects_bad_sizes() {
        let (dk, cells) = (64usize, 70usize);
        let kbuf = vec![0u32; cells * dk / 2];
        let kh =
            KvHead { data: bytemuck::cast_slice(&kbuf), ty: KvType::F16, row_bytes: dk * 2, offset: 0, dim: dk, cells };
        let q = vec![0.5f32; 8 * dk];
        let mut buf = vec![0u64; TileScratch::bytes(8, dk, dk) / 8];
        let p = AttnParams { scale: 0.125, softcap: 0.0, half: false };
        let k = Kernels::best();
        let mut sc = TileScratch::carve(bytemuck::cast_slice_mut(&mut buf), 8, dk, dk).unwrap();
        attend_tiled(&k, &q, dk, 1, 8, &kh, &kh, 60, 0, p, &mut sc).unwrap();
        // too few queries, a batch the cache cannot hold, too small a scratch
        assert!(attend_tiled(&k, &q[..8 * dk - 1], dk, 1, 8, &kh, &kh, 60, 0, p, &mut sc).is_err());
        assert!(attend_tiled(&k, &q, dk, 1, 8, &kh, &kh, 70, 0, p, &mut sc).is_err());
        let mut small = TileScratch::carve(bytemuck::cast_slice_mut(&mut buf), 4, dk, dk).unwrap();
        assert!(attend_tiled(&k, &q, dk, 1, 8, &kh, &kh, 0, 0, p, &mut small).is_err());
        assert!(TileScratch::carve(&mut [0u8; 64], 8, dk, dk).is_none());
    }
}
