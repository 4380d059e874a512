//! ISA-specific kernels, one folder per architecture and one file per format
//! and ISA inside it. Nothing here is public except through [`crate::Kernels`].

use crate::{Kernels, Tier};

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) mod streams;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;

/// Whether an x86_64 tier can run here.
pub(crate) fn x86_64_tier_available(tier: Tier) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::tier_available(tier)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = tier;
        false
    }
}

/// Whether an aarch64 tier can run here.
pub(crate) fn aarch64_tier_available(tier: Tier) -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        aarch64::tier_available(tier)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = tier;
        false
    }
}

/// Plugs every tier this CPU has, up to `max` if given, lowest first; on
/// x86_64 the whole AVX-512 table only when `max` names it, and otherwise
/// only its kernels that measured faster than AVX2 (see
/// [`crate::Kernels::best`]).
pub(crate) fn plug_available(k: &mut Kernels, max: Option<Tier>) {
    let allowed = |t: Tier| t.is_available() && max.is_none_or(|m| t <= m);
    #[cfg(target_arch = "x86_64")]
    {
        if allowed(Tier::Avx2) {
            // SAFETY: `is_available` checked AVX2, FMA and F16C on this CPU.
            unsafe { x86_64::plug_avx2(k) };
        }
        if allowed(Tier::Avx512) {
            // Without `std`, `allowed` means "compiled for": such a build asked for AVX-512.
            if max == Some(Tier::Avx512) || !cfg!(feature = "std") {
                // SAFETY: `is_available` checked AVX-512 F/BW/VL on this CPU.
                unsafe { x86_64::plug_avx512(k) };
            } else {
                // SAFETY: as above.
                unsafe { x86_64::plug_avx512_measured(k) };
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if allowed(Tier::Neon) {
            // SAFETY: `is_available` checked NEON on this CPU.
            unsafe { aarch64::plug_neon(k) };
        }
        if allowed(Tier::Dotprod) {
            // SAFETY: `is_available` checked the dot-product extension on this CPU.
            unsafe { aarch64::plug_dotprod(k) };
        }
    }
    let _ = (k, allowed);
}

/// Plugs the tiers enabled at compile time (`-C target-feature`), the no_std path.
pub(crate) fn plug_compile_time(k: &mut Kernels) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma", target_feature = "f16c"))]
    // SAFETY: the binary was compiled for these features, so every CPU running it has them.
    unsafe {
        x86_64::plug_avx2(k)
    };
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vl"
    ))]
    // SAFETY: as above.
    unsafe {
        x86_64::plug_avx512(k)
    };
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    // SAFETY: as above.
    unsafe {
        aarch64::plug_neon(k)
    };
    #[cfg(all(target_arch = "aarch64", target_feature = "dotprod"))]
    // SAFETY: as above.
    unsafe {
        aarch64::plug_dotprod(k)
    };
    let _ = k;
}
