//! aarch64 kernels: NEON (every aarch64 CPU, e.g. a Pi 4's Cortex-A72) and
//! dotprod (SDOT, e.g. a Pi 5's Cortex-A76, through a small `asm!` wrapper
//! because `vdotq_s32` is unstable on the pinned toolchain). SDOT is never
//! gated on `neon` alone. One file per format and ISA.

use crate::{Kernels, Tier};

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
    k.tier = Tier::Neon;
}

/// Replaces table entries with their dotprod (SDOT) versions.
///
/// # Safety
/// The CPU must support NEON and the dot-product extension.
pub(crate) unsafe fn plug_dotprod(k: &mut Kernels) {
    k.tier = Tier::Dotprod;
}
