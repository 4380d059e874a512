//! The kernel table: one function pointer per weight format (and per
//! activation quantizer), chosen once at run time from the CPU's features.
//!
//! The table starts with every `*_generic` kernel and is upgraded tier by tier
//! (`plug_avx2`, then `plug_avx512`; `plug_neon`, then `plug_dotprod`), the way
//! tract-linalg's `Ops` is. SIMD functions are `#[target_feature] unsafe fn`s and
//! are reachable only through this table, so a table that was built after
//! detection is proof that calling them is sound. On `no_std` targets the
//! tiers come from compile-time target features instead.
//!
//! `EMBER_KERNELS=generic|avx2|avx512|neon|dotprod` (with the `std` feature)
//! selects the table of the tier named (lower tiers fill the formats it has
//! no kernel for). Without it, [`Kernels::best`]: the highest tier, except
//! that on x86_64 the whole AVX-512 table is opt-in (`EMBER_KERNELS=avx512`),
//! because on the one AVX-512 CPU measured it lost to the AVX2 table; the
//! default takes only the AVX-512 kernels that won there.

use crate::{arch, bf16, f16, floats, q2_k, q3_k, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, q8_1, q8_k};
use crate::{iq4_nl, Error, GgmlType};
use core::fmt;

/// An instruction-set tier, from the portable fallback upward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Portable scalar Rust: the reference every other tier is tested against.
    Generic,
    /// x86_64 AVX2 + FMA + F16C.
    Avx2,
    /// x86_64 AVX-512 F/BW/VL (+VNNI where it pays).
    Avx512,
    /// aarch64 Advanced SIMD (every aarch64 CPU; a Pi 4's Cortex-A72).
    Neon,
    /// aarch64 NEON + the dot-product extension (SDOT; a Pi 5's Cortex-A76).
    Dotprod,
}

impl Tier {
    /// The name used by `EMBER_KERNELS` and printed by `describe`.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Generic => "generic",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
            Tier::Neon => "neon",
            Tier::Dotprod => "dotprod",
        }
    }

    /// Parses a tier name as `EMBER_KERNELS` spells it.
    pub fn from_name(s: &str) -> Option<Tier> {
        [Tier::Generic, Tier::Avx2, Tier::Avx512, Tier::Neon, Tier::Dotprod]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this CPU (or, without `std` detection, this build's target
    /// features) can run kernels of this tier.
    pub fn is_available(self) -> bool {
        match self {
            Tier::Generic => true,
            Tier::Avx2 | Tier::Avx512 => arch::x86_64_tier_available(self),
            Tier::Neon | Tier::Dotprod => arch::aarch64_tier_available(self),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Dot product of one weight row with one activation row, both as raw block
/// bytes holding the same number of values.
///
/// # Safety
/// The CPU must support the tier the function was registered under, and the
/// slices must be whole, aligned blocks of the entry's types (the safe methods
/// of [`Kernels`] check this before calling).
pub type VecDotFn = unsafe fn(w: &[u8], a: &[u8]) -> f32;

/// Matrix-vector product: `out[r] = dot(w row r, a)` for `out.len()` rows of
/// `row_bytes` bytes each. Multi-row SIMD versions reuse the activation across
/// several weight rows. Same safety contract as [`VecDotFn`].
pub type GemvFn = unsafe fn(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]);

/// Matrix-matrix product: `out[i * out_stride + r] = dot(w row r, act row i)`
/// for every weight row `r < w.len() / row_bytes` and activation row
/// `i < acts.len() / act_row_bytes`. Kernels that follow a multi-activation
/// float order (ggml's repacked gemm takes activation rows four at a time)
/// live here; the default loops the entry's `gemv` over the activation rows.
///
/// # Safety
/// As [`VecDotFn`], and `out` must hold at least
/// `(m - 1) * out_stride + rows` values when `m` and `rows` are non-zero
/// ([`Kernels::gemm_strided`] checks all of it).
pub type GemmFn =
    unsafe fn(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], out_stride: usize);

/// Quantizes one activation row of f32 into the paired format's blocks (as
/// bytes). Same safety contract as [`VecDotFn`].
pub type QuantizeFn = unsafe fn(x: &[f32], out: &mut [u8]);

/// The dot-product kernels of one weight format.
#[derive(Clone, Copy)]
pub struct DotEntry {
    /// Tier of `vec_dot`.
    pub tier: Tier,
    /// One row · one activation.
    pub vec_dot: VecDotFn,
    /// Tier of `gemv` (may differ, e.g. a multi-row kernel only in one tier).
    pub gemv_tier: Tier,
    /// Many rows · one activation.
    pub gemv: GemvFn,
    /// Tier of `gemm`.
    pub gemm_tier: Tier,
    /// Many rows · many activations.
    pub gemm: GemmFn,
}

/// An activation quantizer.
#[derive(Clone, Copy)]
pub struct QuantizeEntry {
    /// Tier of the function.
    pub tier: Tier,
    /// The quantizer.
    pub quantize: QuantizeFn,
}

/// Builds a [`DotEntry`] from a typed kernel `fn(&[W], &[A]) -> f32` (safe or
/// `unsafe`): the byte-level wrappers cast with `bytemuck::cast_slice`, which
/// cannot fail because the safe methods of [`Kernels`] checked the buffers.
#[macro_export]
#[doc(hidden)]
macro_rules! dot_entry {
    ($tier:expr, $W:ty, $A:ty, $f:path) => {{
        #[allow(unused_unsafe)]
        unsafe fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            let w: &[$W] = bytemuck::cast_slice(w);
            let a: &[$A] = bytemuck::cast_slice(a);
            // SAFETY: the caller upholds `VecDotFn`'s contract, which is `$f`'s.
            unsafe { $f(w, a) }
        }
        #[allow(unused_unsafe)]
        unsafe fn gemv(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
            let a: &[$A] = bytemuck::cast_slice(a);
            for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
                // SAFETY: as above; each row is whole blocks of `$W`.
                *o = unsafe { $f(bytemuck::cast_slice(row), a) };
            }
        }
        $crate::kernels::DotEntry {
            tier: $tier,
            vec_dot,
            gemv_tier: $tier,
            gemv,
            gemm_tier: $tier,
            gemm: $crate::gemm_by_rows!(gemv),
        }
    }};
}

/// A [`GemmFn`] that calls the [`GemvFn`] `$gemv` once per activation row:
/// the default `gemm` of an entry, with the entry's one-activation order.
#[macro_export]
#[doc(hidden)]
macro_rules! gemm_by_rows {
    ($gemv:path) => {{
        unsafe fn gemm(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], stride: usize) {
            let rows = w.len() / row_bytes;
            for (i, a) in acts.chunks_exact(act_row_bytes).enumerate() {
                // SAFETY: the caller upholds `GemmFn`'s contract: the CPU runs
                // the tier, the buffers are whole aligned blocks, and `out`
                // holds `rows` values from `i * stride` for every row `i`.
                unsafe { $gemv(w, row_bytes, a, &mut out[i * stride..i * stride + rows]) };
            }
        }
        gemm as $crate::kernels::GemmFn
    }};
}

/// Builds a [`QuantizeEntry`] from a typed quantizer `fn(&[f32], &mut [A])`.
#[macro_export]
#[doc(hidden)]
macro_rules! quantize_entry {
    ($tier:expr, $A:ty, $f:path) => {{
        #[allow(unused_unsafe)]
        unsafe fn quantize(x: &[f32], out: &mut [u8]) {
            let out: &mut [$A] = bytemuck::cast_slice_mut(out);
            // SAFETY: the caller upholds `QuantizeFn`'s contract, which is `$f`'s.
            unsafe { $f(x, out) }
        }
        $crate::kernels::QuantizeEntry { tier: $tier, quantize }
    }};
}

/// The kernel table. Build it with [`Kernels::detect`] (std) or
/// [`Kernels::from_target_features`] (no_std), then call its safe methods.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub(crate) tier: Tier,
    /// F32 weights · F32 activations.
    pub f32: DotEntry,
    /// F16 weights · F16 activations.
    pub f16: DotEntry,
    /// BF16 weights · BF16 activations.
    pub bf16: DotEntry,
    /// Q4_0 · Q8_0.
    pub q4_0: DotEntry,
    /// Q4_1 · Q8_1.
    pub q4_1: DotEntry,
    /// Q5_0 · Q8_0.
    pub q5_0: DotEntry,
    /// Q5_1 · Q8_1.
    pub q5_1: DotEntry,
    /// Q8_0 · Q8_0.
    pub q8_0: DotEntry,
    /// Q2_K · Q8_K.
    pub q2_k: DotEntry,
    /// Q3_K · Q8_K.
    pub q3_k: DotEntry,
    /// Q4_K · Q8_K.
    pub q4_k: DotEntry,
    /// Q5_K · Q8_K.
    pub q5_k: DotEntry,
    /// Q6_K · Q8_K.
    pub q6_k: DotEntry,
    /// IQ4_NL · Q8_0.
    pub iq4_nl: DotEntry,
    /// f32 → F16 activations.
    pub quantize_f16: QuantizeEntry,
    /// f32 → BF16 activations.
    pub quantize_bf16: QuantizeEntry,
    /// f32 → Q8_0 activations.
    pub quantize_q8_0: QuantizeEntry,
    /// f32 → Q8_1 activations.
    pub quantize_q8_1: QuantizeEntry,
    /// f32 → Q8_K activations.
    pub quantize_q8_k: QuantizeEntry,
    /// Attention over an f16 KV cache (see [`crate::attn`]).
    pub attn: crate::attn::AttnEntry,
    /// Element-wise activations: e^x, SiLU, SwiGLU (see [`crate::act`]).
    pub act: crate::act::ActEntry,
    /// Tiled attention for prompt batches (see [`crate::attn_tile`]).
    pub tile: crate::attn_tile::TileEntry,
}

impl Kernels {
    /// Every kernel in its portable `*_generic` version.
    pub fn generic() -> Kernels {
        use Tier::Generic as G;
        Kernels {
            tier: G,
            f32: dot_entry!(G, f32, f32, floats::vec_dot_f32_generic),
            f16: dot_entry!(G, f16, f16, floats::vec_dot_f16_generic),
            bf16: dot_entry!(G, bf16, bf16, floats::vec_dot_bf16_generic),
            q4_0: dot_entry!(G, q4_0::BlockQ4_0, q8_0::BlockQ8_0, q4_0::vec_dot_q4_0_q8_0_generic),
            q4_1: dot_entry!(G, q4_1::BlockQ4_1, q8_1::BlockQ8_1, q4_1::vec_dot_q4_1_q8_1_generic),
            q5_0: dot_entry!(G, q5_0::BlockQ5_0, q8_0::BlockQ8_0, q5_0::vec_dot_q5_0_q8_0_generic),
            q5_1: dot_entry!(G, q5_1::BlockQ5_1, q8_1::BlockQ8_1, q5_1::vec_dot_q5_1_q8_1_generic),
            q8_0: dot_entry!(G, q8_0::BlockQ8_0, q8_0::BlockQ8_0, q8_0::vec_dot_q8_0_q8_0_generic),
            q2_k: dot_entry!(G, q2_k::BlockQ2K, q8_k::BlockQ8K, q2_k::vec_dot_q2_k_q8_k_generic),
            q3_k: dot_entry!(G, q3_k::BlockQ3K, q8_k::BlockQ8K, q3_k::vec_dot_q3_k_q8_k_generic),
            q4_k: dot_entry!(G, q4_k::BlockQ4K, q8_k::BlockQ8K, q4_k::vec_dot_q4_k_q8_k_generic),
            q5_k: dot_entry!(G, q5_k::BlockQ5K, q8_k::BlockQ8K, q5_k::vec_dot_q5_k_q8_k_generic),
            q6_k: dot_entry!(G, q6_k::BlockQ6K, q8_k::BlockQ8K, q6_k::vec_dot_q6_k_q8_k_generic),
            iq4_nl: dot_entry!(G, iq4_nl::BlockIq4Nl, q8_0::BlockQ8_0, iq4_nl::vec_dot_iq4_nl_q8_0_generic),
            quantize_f16: quantize_entry!(G, f16, floats::quantize_f16),
            quantize_bf16: quantize_entry!(G, bf16, floats::quantize_bf16),
            quantize_q8_0: quantize_entry!(G, q8_0::BlockQ8_0, q8_0::quantize_ref),
            quantize_q8_1: quantize_entry!(G, q8_1::BlockQ8_1, q8_1::quantize_ref),
            quantize_q8_k: quantize_entry!(G, q8_k::BlockQ8K, q8_k::quantize_ref),
            attn: crate::attn::AttnEntry::generic(),
            act: crate::act::ActEntry::generic(),
            tile: crate::attn_tile::TileEntry::generic(),
        }
    }

    /// The table ember runs: [`Kernels::best`], or, if `EMBER_KERNELS` is
    /// set, [`Kernels::with_tier`] of the tier it names (on an x86 CPU with
    /// AVX-512 VNNI, `best()` and `with_tier(Avx512)` are both of tier
    /// `avx512` but differ: the first is the AVX2 table with five VNNI
    /// kernels and the 512-bit attention accumulation, the second the whole
    /// AVX-512 table). Fails if
    /// `EMBER_KERNELS` names an unknown tier or one this CPU lacks.
    #[cfg(feature = "std")]
    pub fn detect() -> Result<Kernels, Error> {
        match std::env::var("EMBER_KERNELS") {
            Ok(name) if !name.trim().is_empty() => {
                let tier = Tier::from_name(&name)
                    .ok_or(Error::Tier("EMBER_KERNELS must be one of generic, avx2, avx512, neon, dotprod"))?;
                Kernels::with_tier(tier)
            }
            _ => Ok(Kernels::best()),
        }
    }

    /// The best table for this CPU (run-time detection with `std`, target
    /// features otherwise), ignoring `EMBER_KERNELS`.
    ///
    /// With `std` on x86_64 that is the AVX2 table even where the CPU has
    /// AVX-512, plus only the AVX-512 kernels that measured faster than their
    /// AVX2 twins: attention's f16 value accumulation (512-bit) and, where
    /// the CPU has VNNI, the Q8_0 and Q5_0 prompt gemms and gemvs and the
    /// Q4_0 prompt gemm with 256-bit VNNI (the table's tier is then `avx512`). On the one AVX-512
    /// CPU measured (a Zen 4 VM, which runs
    /// 512-bit instructions as two 256-bit halves) the AVX-512 table lost
    /// to the AVX2 one on every file of the performance issue (`ember
    /// bench`, 3 repetitions, AVX-512 / AVX2: tg64 -t 1 0.60-0.92, tg64 -t 2
    /// 0.75-0.97, pp512 0.44-1.06), and plugging single AVX-512 gemvs (Q6_K,
    /// Q4_K, Q8_0, Q5_0) into the AVX2 table changed Gemma 3's tg64 by less
    /// than the noise. [`Kernels::with_tier`]`(Tier::Avx512)` or
    /// `EMBER_KERNELS=avx512` selects it; a `no_std` build for AVX-512
    /// target features gets it from [`Kernels::from_target_features`].
    pub fn best() -> Kernels {
        let mut k = Kernels::generic();
        arch::plug_available(&mut k, None);
        k
    }

    /// A table using tiers no higher than `max` on `max`'s architecture
    /// (`avx512` also plugs AVX2 kernels for formats without an AVX-512 one).
    /// Fails if this CPU cannot run `max`.
    pub fn with_tier(max: Tier) -> Result<Kernels, Error> {
        if !max.is_available() {
            return Err(Error::Tier("the requested kernel tier is not available on this CPU"));
        }
        let mut k = Kernels::generic();
        arch::plug_available(&mut k, Some(max));
        Ok(k)
    }

    /// The table chosen from this build's compile-time target features (the
    /// no_std path): identical to [`Kernels::best`] without `std`. A build
    /// for AVX-512 target features gets the AVX-512 table: that build asked
    /// for it.
    pub fn from_target_features() -> Kernels {
        let mut k = Kernels::generic();
        arch::plug_compile_time(&mut k);
        k
    }

    /// The highest tier plugged into this table.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The dot-product entry for a weight type, if ember has one.
    pub fn dot(&self, ty: GgmlType) -> Option<&DotEntry> {
        use GgmlType::*;
        Some(match ty {
            F32 => &self.f32,
            F16 => &self.f16,
            BF16 => &self.bf16,
            Q4_0 => &self.q4_0,
            Q4_1 => &self.q4_1,
            Q5_0 => &self.q5_0,
            Q5_1 => &self.q5_1,
            Q8_0 => &self.q8_0,
            Q2_K => &self.q2_k,
            Q3_K => &self.q3_k,
            Q4_K => &self.q4_k,
            Q5_K => &self.q5_k,
            Q6_K => &self.q6_k,
            IQ4_NL => &self.iq4_nl,
            _ => return None,
        })
    }

    /// The activation quantizer producing `act` (`None` for F32, which is a copy).
    pub fn quantizer(&self, act: GgmlType) -> Option<&QuantizeEntry> {
        use GgmlType::*;
        Some(match act {
            F16 => &self.quantize_f16,
            BF16 => &self.quantize_bf16,
            Q8_0 => &self.quantize_q8_0,
            Q8_1 => &self.quantize_q8_1,
            Q8_K => &self.quantize_q8_k,
            _ => return None,
        })
    }

    /// A human-readable list of the tier used per format, e.g. for `ember info`.
    pub fn describe(&self) -> Describe<'_> {
        Describe(self)
    }
}

/// What [`Kernels::describe`] returns: displays `tier (q4_0=avx2 ...)`, per
/// format the gemv's tier, followed by `/gemm:TIER` where the prompt gemm's
/// differs (e.g. `q4_1=avx512/gemm:avx2` in the AVX-512 table).
pub struct Describe<'a>(&'a Kernels);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.0;
        write!(f, "{}", k.tier)?;
        let mut sep = " (";
        for ty in GgmlType::ALL {
            if let Some(e) = k.dot(ty) {
                write!(f, "{sep}{}={}", ty.name().to_ascii_lowercase_str(), e.gemv_tier)?;
                if e.gemm_tier != e.gemv_tier {
                    write!(f, "/gemm:{}", e.gemm_tier)?;
                }
                sep = " ";
            }
        }
        for act in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K] {
            if let Some(q) = k.quantizer(act) {
                write!(f, " quantize_{}={}", act.name().to_ascii_lowercase_str(), q.tier)?;
            }
        }
        f.write_str(")")
    }
}

/// Lower-casing a short ASCII name without allocating.
trait AsciiLower {
    fn to_ascii_lowercase_str(&self) -> LowerStr<'_>;
}
impl AsciiLower for str {
    fn to_ascii_lowercase_str(&self) -> LowerStr<'_> {
        LowerStr(self)
    }
}
struct LowerStr<'a>(&'a str);
impl fmt::Display for LowerStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            fmt::Write::write_char(f, c.to_ascii_lowercase())?;
        }
        Ok(())
    }
}
