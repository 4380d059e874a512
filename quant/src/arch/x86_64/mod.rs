//! x86_64 kernels: AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL; VNNI where it pays).
//! One file per format and ISA, e.g. `q4_0_avx2.rs`.

use crate::{Kernels, Tier};

/// Whether this CPU runs `tier` (run-time detection with `std`, compile-time
/// target features without).
pub(crate) fn tier_available(tier: Tier) -> bool {
    #[cfg(feature = "std")]
    {
        match tier {
            Tier::Generic => true,
            Tier::Avx2 => {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c")
            }
            Tier::Avx512 => {
                tier_available(Tier::Avx2)
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            _ => false,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        match tier {
            Tier::Generic => true,
            Tier::Avx2 => cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c")),
            Tier::Avx512 => {
                cfg!(all(target_feature = "avx512f", target_feature = "avx512bw", target_feature = "avx512vl"))
            }
            _ => false,
        }
    }
}

/// Replaces table entries with their AVX2 versions.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
pub(crate) unsafe fn plug_avx2(k: &mut Kernels) {
    k.tier = Tier::Avx2;
}

/// Replaces table entries with their AVX-512 versions.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL (and AVX2, FMA, F16C).
pub(crate) unsafe fn plug_avx512(k: &mut Kernels) {
    k.tier = Tier::Avx512;
}
