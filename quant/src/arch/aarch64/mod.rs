//! aarch64 kernels: NEON (every aarch64 CPU, e.g. a Pi 4's Cortex-A72) and
//! dotprod (SDOT, e.g. a Pi 5's Cortex-A76, through a small `asm!` wrapper
//! because `vdotq_s32` is unstable on the pinned toolchain). SDOT is never
//! gated on `neon` alone: the `sdot!` macro only assembles inside functions
//! enabled for `dotprod`, and those are plugged only after detecting it.
//! One file per format and ISA; the model is ggml's `arch/arm/quants.c`.
//!
//! | format | NEON | dotprod |
//! |---|---|---|
//! | F32, F16, BF16 | yes | (NEON) |
//! | Q4_0, Q4_1, Q5_0, Q8_0 | yes | yes |
//! | Q5_1, IQ4_NL | yes | (NEON) |
//! | Q2_K, Q3_K, Q5_K | yes | (NEON) |
//! | Q4_K, Q6_K | yes | yes |
//! | quantize Q8_0, Q8_1, Q8_K | yes | (NEON) |
//! | attention (`attn`), activations (`act`) | yes | (NEON) |
//!
//! Every quantized format has a one-row kernel (`vec_dot_*`) and a four-row
//! one (`vec_dot4_*`) that loads each activation block once for four weight
//! rows and gives each row the same bits as the one-row kernel; see
//! `rows_entry!`. F32, F16 and BF16 go row by row.
//!
//! "(NEON)" means the dotprod table keeps the NEON kernel for that format
//! (the quantizers have no dot product to speed up).

use crate::kernels::DotEntry;
use crate::{dot_entry, f16, quantize_entry, Kernels, Tier};
use crate::{iq4_nl, q2_k, q3_k, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, q8_1, q8_k};

mod simd;

mod act_neon;
mod attn_neon;
mod attn_tile_neon;
mod floats_neon;
mod iq4_nl_neon;
mod q2_k_neon;
mod q3_k_neon;
mod q4_0_dotprod;
mod q4_0_neon;
mod q4_1_dotprod;
mod q4_1_neon;
mod q4_k_dotprod;
mod q4_k_neon;
mod q5_0_dotprod;
mod q5_0_neon;
mod q5_1_neon;
mod q5_k_neon;
mod q6_k_dotprod;
mod q6_k_neon;
mod q8_0_dotprod;
mod q8_0_neon;
mod q8_1_neon;
mod q8_k_neon;

#[cfg(test)]
mod tests;

/// A [`DotEntry`] from a one-row kernel `$one(&[W], &[A]) -> f32` and a
/// four-row kernel `$four([&[W]; 4], &[A]) -> [f32; 4]` giving the same bits
/// per row: `gemv` takes rows four at a time (one pass over the activation
/// per four rows) and the last one to three singly, so a row's value does not
/// depend on how rows are grouped or split across threads.
macro_rules! rows_entry {
    ($tier:expr, $W:ty, $A:ty, $one:path, $four:path) => {{
        unsafe fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: the caller upholds `VecDotFn`'s contract (CPU tier, whole
            // aligned blocks, same count), which is `$one`'s.
            unsafe { $one(bytemuck::cast_slice(w), bytemuck::cast_slice(a)) }
        }
        unsafe fn gemv(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
            let a: &[$A] = bytemuck::cast_slice(a);
            let row = |r: usize| -> &[$W] { bytemuck::cast_slice(&w[r * row_bytes..(r + 1) * row_bytes]) };
            let mut r = 0;
            while r + 4 <= out.len() {
                // SAFETY: `GemvFn`'s contract: the CPU has the tier, every row is
                // `row_bytes` of whole aligned blocks, as many as `a` holds.
                let v = unsafe { $four([row(r), row(r + 1), row(r + 2), row(r + 3)], a) };
                out[r..r + 4].copy_from_slice(&v);
                r += 4;
            }
            while r < out.len() {
                // SAFETY: as above, for one row.
                out[r] = unsafe { $one(row(r), a) };
                r += 1;
            }
        }
        DotEntry { tier: $tier, vec_dot, gemv_tier: $tier, gemv, gemm_tier: $tier, gemm: crate::gemm_by_rows!(gemv) }
    }};
}

/// Whether this CPU runs `tier`.
pub(crate) fn tier_available(tier: Tier) -> bool {
    #[cfg(feature = "std")]
    {
        match tier {
            Tier::Generic => true,
            Tier::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            Tier::Dotprod => {
                std::arch::is_aarch64_feature_detected!("neon") && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            _ => false,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        match tier {
            Tier::Generic => true,
            Tier::Neon => cfg!(target_feature = "neon"),
            Tier::Dotprod => cfg!(all(target_feature = "neon", target_feature = "dotprod")),
            _ => false,
        }
    }
}

/// Replaces table entries with their NEON versions.
///
/// # Safety
/// The CPU must support NEON.
pub(crate) unsafe fn plug_neon(k: &mut Kernels) {
    use Tier::Neon as N;
    k.f32 = dot_entry!(N, f32, f32, floats_neon::vec_dot_f32_neon);
    k.f16 = dot_entry!(N, f16, f16, floats_neon::vec_dot_f16_neon);
    k.bf16 = dot_entry!(N, half::bf16, half::bf16, floats_neon::vec_dot_bf16_neon);
    k.q4_0 = rows_entry!(
        N,
        q4_0::BlockQ4_0,
        q8_0::BlockQ8_0,
        q4_0_neon::vec_dot_q4_0_q8_0_neon,
        q4_0_neon::vec_dot4_q4_0_q8_0_neon
    );
    k.q4_1 = rows_entry!(
        N,
        q4_1::BlockQ4_1,
        q8_1::BlockQ8_1,
        q4_1_neon::vec_dot_q4_1_q8_1_neon,
        q4_1_neon::vec_dot4_q4_1_q8_1_neon
    );
    k.q5_0 = rows_entry!(
        N,
        q5_0::BlockQ5_0,
        q8_0::BlockQ8_0,
        q5_0_neon::vec_dot_q5_0_q8_0_neon,
        q5_0_neon::vec_dot4_q5_0_q8_0_neon
    );
    k.q5_1 = rows_entry!(
        N,
        q5_1::BlockQ5_1,
        q8_1::BlockQ8_1,
        q5_1_neon::vec_dot_q5_1_q8_1_neon,
        q5_1_neon::vec_dot4_q5_1_q8_1_neon
    );
    k.q8_0 = rows_entry!(
        N,
        q8_0::BlockQ8_0,
        q8_0::BlockQ8_0,
        q8_0_neon::vec_dot_q8_0_q8_0_neon,
        q8_0_neon::vec_dot4_q8_0_q8_0_neon
    );
    k.iq4_nl = rows_entry!(
        N,
        iq4_nl::BlockIq4Nl,
        q8_0::BlockQ8_0,
        iq4_nl_neon::vec_dot_iq4_nl_q8_0_neon,
        iq4_nl_neon::vec_dot4_iq4_nl_q8_0_neon
    );
    k.q2_k = rows_entry!(
        N,
        q2_k::BlockQ2K,
        q8_k::BlockQ8K,
        q2_k_neon::vec_dot_q2_k_q8_k_neon,
        q2_k_neon::vec_dot4_q2_k_q8_k_neon
    );
    k.q3_k = rows_entry!(
        N,
        q3_k::BlockQ3K,
        q8_k::BlockQ8K,
        q3_k_neon::vec_dot_q3_k_q8_k_neon,
        q3_k_neon::vec_dot4_q3_k_q8_k_neon
    );
    k.q4_k = rows_entry!(
        N,
        q4_k::BlockQ4K,
        q8_k::BlockQ8K,
        q4_k_neon::vec_dot_q4_k_q8_k_neon,
        q4_k_neon::vec_dot4_q4_k_q8_k_neon
    );
    k.q5_k = rows_entry!(
        N,
        q5_k::BlockQ5K,
        q8_k::BlockQ8K,
        q5_k_neon::vec_dot_q5_k_q8_k_neon,
        q5_k_neon::vec_dot4_q5_k_q8_k_neon
    );
    k.q6_k = rows_entry!(
        N,
        q6_k::BlockQ6K,
        q8_k::BlockQ8K,
        q6_k_neon::vec_dot_q6_k_q8_k_neon,
        q6_k_neon::vec_dot4_q6_k_q8_k_neon
    );
    k.quantize_q8_0 = quantize_entry!(N, q8_0::BlockQ8_0, q8_0_neon::quantize_q8_0_neon);
    k.quantize_q8_1 = quantize_entry!(N, q8_1::BlockQ8_1, q8_1_neon::quantize_q8_1_neon);
    k.quantize_q8_k = quantize_entry!(N, q8_k::BlockQ8K, q8_k_neon::quantize_q8_k_neon);
    k.attn = crate::attn::AttnEntry {
        tier: N,
        dot_f16: attn_neon::attn_dot_f16_neon,
        mad_f16: attn_neon::attn_mad_f16_neon,
        mad_f16_ph: attn_neon::attn_mad_f16_ph_neon,
        scale_f16: attn_neon::attn_scale_f16_neon,
        dots_f16: attn_neon::attn_dots_f16_neon,
        mads_f16: attn_neon::attn_mads_f16_neon,
        widen_f16: attn_neon::attn_widen_f16_neon,
        dot_f32_x4: attn_neon::attn_dot_f32_x4_neon,
        dot_f32_x4_pair: attn_neon::attn_dot_f32_x4_pair_neon,
        mad_f32: attn_neon::attn_mad_f32_neon,
    };
    k.act = crate::act::ActEntry {
        tier: N,
        exp: act_neon::exp_neon,
        silu: act_neon::silu_neon,
        swiglu: act_neon::swiglu_neon,
        // GeGLU's table lookups and f16 conversions: the portable code.
        geglu: crate::act::geglu_generic,
    };
    // Tiled attention: the NEON gemm, the generic tile softmax.
    k.tile.tier = N;
    k.tile.gemm = attn_tile_neon::gemm_f32_neon;
    k.tier = N;
}

/// Replaces table entries with their dotprod (SDOT) versions.
///
/// # Safety
/// The CPU must support NEON and the dot-product extension.
pub(crate) unsafe fn plug_dotprod(k: &mut Kernels) {
    use Tier::Dotprod as D;
    k.q4_0 = rows_entry!(
        D,
        q4_0::BlockQ4_0,
        q8_0::BlockQ8_0,
        q4_0_dotprod::vec_dot_q4_0_q8_0_dotprod,
        q4_0_dotprod::vec_dot4_q4_0_q8_0_dotprod
    );
    k.q4_1 = rows_entry!(
        D,
        q4_1::BlockQ4_1,
        q8_1::BlockQ8_1,
        q4_1_dotprod::vec_dot_q4_1_q8_1_dotprod,
        q4_1_dotprod::vec_dot4_q4_1_q8_1_dotprod
    );
    k.q5_0 = rows_entry!(
        D,
        q5_0::BlockQ5_0,
        q8_0::BlockQ8_0,
        q5_0_dotprod::vec_dot_q5_0_q8_0_dotprod,
        q5_0_dotprod::vec_dot4_q5_0_q8_0_dotprod
    );
    k.q8_0 = rows_entry!(
        D,
        q8_0::BlockQ8_0,
        q8_0::BlockQ8_0,
        q8_0_dotprod::vec_dot_q8_0_q8_0_dotprod,
        q8_0_dotprod::vec_dot4_q8_0_q8_0_dotprod
    );
    k.q4_k = rows_entry!(
        D,
        q4_k::BlockQ4K,
        q8_k::BlockQ8K,
        q4_k_dotprod::vec_dot_q4_k_q8_k_dotprod,
        q4_k_dotprod::vec_dot4_q4_k_q8_k_dotprod
    );
    k.q6_k = rows_entry!(
        D,
        q6_k::BlockQ6K,
        q8_k::BlockQ8K,
        q6_k_dotprod::vec_dot_q6_k_q8_k_dotprod,
        q6_k_dotprod::vec_dot4_q6_k_q8_k_dotprod
    );
    k.tier = D;
}
