//! Element-wise activations over f32 slices: e^x ([`expf_ggml`]), SiLU and
//! SwiGLU, in the float order of ggml's `ggml_v_expf` / `ggml_v_silu` as an
//! AVX-512 build of llama.cpp computes them (`ggml-cpu/vec.h`; the reference
//! outputs in `../shared/reference` came from such a build); and GeGLU with
//! ggml's f16 GELU table (`GGML_GELU_FP16`).
//!
//! The `*_generic` functions are the scalar reference; the SIMD versions
//! (AVX2 + FMA, NEON) compute bit-identical results and are reached through
//! [`Kernels::act`](crate::Kernels::act).

/// `x[i] = f(x[i])` in place.
pub type MapFn = unsafe fn(x: &mut [f32]);
/// `gate[i] = silu(gate[i]) * up[i]`. `gate.len() == up.len()`.
pub type SwigluFn = unsafe fn(gate: &mut [f32], up: &[f32]);
/// `gate[i] = gelu(gate[i]) * up[i]` with GELU looked up in `table`
/// ([`geglu_generic`]). `gate.len() == up.len()`, `table.len() == 65536`.
pub type GegluFn = unsafe fn(gate: &mut [f32], up: &[f32], table: &[u16]);

/// The activation kernels of one tier.
///
/// # Safety of the pointers
/// Each function may be called only on a CPU that supports `tier`, with the
/// lengths its type alias states (the safe methods of [`crate::Kernels`]
/// check them).
#[derive(Clone, Copy)]
pub struct ActEntry {
    /// Tier of the functions.
    pub tier: crate::Tier,
    /// `x[i] = expf_ggml(x[i])`.
    pub exp: MapFn,
    /// `x[i] = silu(x[i])`.
    pub silu: MapFn,
    /// `gate[i] = silu(gate[i]) * up[i]`.
    pub swiglu: SwigluFn,
    /// `gate[i] = gelu(gate[i]) * up[i]`, GELU from ggml's f16 table.
    pub geglu: GegluFn,
}

impl ActEntry {
    /// The portable versions.
    pub const fn generic() -> ActEntry {
        ActEntry {
            tier: crate::Tier::Generic,
            exp: exp_generic,
            silu: silu_generic,
            swiglu: swiglu_generic,
            geglu: geglu_generic,
        }
    }
}

/// `a * b + c` rounded once, as an FMA instruction computes it: the product
/// of two f32 is exact in f64, so only a double rounding of the f64 sum (when
/// it lands exactly halfway between two f32) could differ from the FMA; for
/// the operands [`expf_ggml`] feeds it, every f32 input was checked to give
/// the FMA's bits (`tests/act_vs_generic.rs`, the exhaustive test).
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    (a as f64 * b as f64 + c as f64) as f32
}

/// 2^e as f64 for |e| <= 1000.
#[inline(always)]
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// Constants of [`expf_ggml`], as bit patterns (ARM's optimized-routines
/// `expf`, as ggml copied them).
pub(crate) mod consts {
    /// 0x1.8p23: adding it rounds to an integer.
    pub const SHIFT: u32 = 0x4b40_0000;
    /// 0x1.715476p+0 = 1/ln 2.
    pub const INV_LN2: u32 = 0x3fb8_aa3b;
    /// 0x1.62e4p-1: ln 2, high part.
    pub const LN2_HI: u32 = 0x3f31_7200;
    /// 0x1.7f7d1cp-20: ln 2, low part.
    pub const LN2_LO: u32 = 0x35bf_be8e;
    /// 0x1.0e4020p-7, 0x1.573e2ep-5, 0x1.555e66p-3, 0x1.fffdb6p-2, 0x1.ffffecp-1:
    /// the polynomial's coefficients of degree 5 down to 1.
    pub const P: [u32; 5] = [0x3c07_2010, 0x3d2b_9f17, 0x3e2a_af33, 0x3eff_fedb, 0x3f7f_fff6];
}

/// e^x as ggml's `ggml_v_expf` computes it in llama.cpp builds for
/// AVX-512 (ARM's optimized-routines algorithm: `n = round(x / ln 2)`,
/// a degree-5 polynomial in the remainder, then `scalef` by 2^n; at most
/// 1.5 ulp from the true value), one lane at a time. llama.cpp uses it in
/// SiLU; the reference outputs were made by an AVX-512 build, so ember
/// computes SiLU exactly this way on every CPU. (The AVX2 build's variant
/// ends with `k + k*j` instead of `scalef(1 + ...)` and differs in the last
/// bit for some inputs.)
#[inline]
pub fn expf_ggml(x: f32) -> f32 {
    use consts::*;
    let f = f32::from_bits;
    let r = f(SHIFT);
    let z = fma(x, f(INV_LN2), r);
    let n = z - r;
    let b = fma(-n, f(LN2_LO), fma(-n, f(LN2_HI), x));
    let u = b * b;
    let j = fma(fma(fma(f(P[0]), b, f(P[1])), u, fma(f(P[2]), b, f(P[3]))), u, fma(f(P[4]), b, 1.0));
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    if n.is_nan() {
        return n;
    }
    // scalef(j, n) = j * 2^n, rounded once: exact in f64, then one rounding to f32.
    (j as f64 * pow2(n as i32)) as f32
}

/// SiLU, `x / (1 + e^-x)`, with e^x from [`expf_ggml`] (ggml's `ggml_v_silu`).
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + expf_ggml(0.0 - x))
}

/// `x[i] = expf_ggml(x[i])`.
pub fn exp_generic(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = expf_ggml(*v);
    }
}

/// `x[i] = silu(x[i])`.
pub fn silu_generic(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = silu(*v);
    }
}

/// SwiGLU in place: `gate[i] = silu(gate[i]) * up[i]` (ggml's `ggml_vec_swiglu_f32`).
pub fn swiglu_generic(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// GeGLU in place, as ggml computes it with `GGML_GELU_FP16`: `gate[i] =
/// gelu(gate[i]) * up[i]`, GELU looked up in `table` (65536 entries: for
/// every f16 bit pattern, the f16 bits of its GELU) at the f16 rounding
/// (to nearest even, as F16C's) of the input, with ggml's cut-offs: 0 at
/// or below -10, `gate[i] * up[i]` at or above 10.
pub fn geglu_generic(gate: &mut [f32], up: &[f32], table: &[u16]) {
    use half::f16;
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            f16::from_bits(table[f16::from_f32(x).to_bits() as usize]).to_f32() * u
        };
    }
}

impl crate::Kernels {
    /// `x[i] = expf_ggml(x[i])` through the table.
    pub fn act_exp(&self, x: &mut [f32]) {
        // SAFETY: the table holds the entry of a tier this CPU supports; any length is allowed.
        unsafe { (self.act.exp)(x) }
    }

    /// `x[i] = silu(x[i])` through the table.
    pub fn act_silu(&self, x: &mut [f32]) {
        // SAFETY: as in `act_exp`.
        unsafe { (self.act.silu)(x) }
    }

    /// `gate[i] = silu(gate[i]) * up[i]` through the table. `gate` and `up`
    /// must have the same length.
    pub fn act_swiglu(&self, gate: &mut [f32], up: &[f32]) -> Result<(), crate::Error> {
        if gate.len() != up.len() {
            return Err(crate::Error::Length { what: "SwiGLU up row", expected: gate.len(), got: up.len() });
        }
        // SAFETY: as in `act_exp`; lengths checked above.
        unsafe { (self.act.swiglu)(gate, up) };
        Ok(())
    }

    /// `gate[i] = gelu(gate[i]) * up[i]` through the table, GELU looked up
    /// in `table` ([`geglu_generic`]). `gate` and `up` must have the same
    /// length, and `table` 65536 entries.
    pub fn act_geglu(&self, gate: &mut [f32], up: &[f32], table: &[u16]) -> Result<(), crate::Error> {
        if gate.len() != up.len() {
            return Err(crate::Error::Length { what: "GeGLU up row", expected: gate.len(), got: up.len() });
        }
        if table.len() != 1 << 16 {
            return Err(crate::Error::Length { what: "GELU table", expected: 1 << 16, got: table.len() });
        }
        // SAFETY: as in `act_exp`; lengths checked above.
        unsafe { (self.act.geglu)(gate, up, table) };
        Ok(())
    }
}
