//! x86_64 kernels: AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL; VNNI where it pays).
//! One file per format and ISA, e.g. `q4_0_avx2.rs`.
//!
//! Each format has a one-row kernel (`vec_dot_*`) and a `gemv` that passes over
//! the activation once for several weight rows where that measured faster:
//! - the 32-value formats with AVX2 (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL): the
//!   activation is prepared once per product and shared by all rows, four
//!   rows per pass (`gemv_*`, [`gemv_entry!`]);
//! - Q8_0: two rows per pass (`gemv_*`, [`gemv_entry!`]);
//! - k-quants and floats: one row per pass ([`crate::dot_entry!`]);
//! - AVX-512: the 32-value formats four rows per pass (`vec_dot4_*`), k-quants
//!   one, following the AVX2 measurements (no AVX-512 CPU was available to
//!   measure on).

use crate::kernels::{DotEntry, Tier};
use crate::{iq4_nl, q2_k, q3_k, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, q8_1, q8_k};
use crate::{quantize_entry, Kernels};
use half::{bf16, f16};

mod avx2;
mod avx512;
mod floats_avx2;
mod iq4_nl_avx2;
mod q2_k_avx2;
mod q3_k_avx2;
mod q4_0_avx2;
mod q4_1_avx2;
mod q4_k_avx2;
mod q5_0_avx2;
mod q5_1_avx2;
mod q5_k_avx2;
mod q6_k_avx2;
mod q8_0_avx2;
mod q8_1_avx2;
mod q8_k_avx2;

mod q4_0_avx512;
mod q4_1_avx512;
mod q4_k_avx512;
mod q5_0_avx512;
mod q6_k_avx512;
mod q8_0_avx512;
mod q8_1_avx512;
mod q8_k_avx512;

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
            Tier::Avx512 => cfg!(all(
                target_feature = "avx2",
                target_feature = "fma",
                target_feature = "f16c",
                target_feature = "avx512f",
                target_feature = "avx512bw",
                target_feature = "avx512vl"
            )),
            _ => false,
        }
    }
}

/// A [`DotEntry`] from a one-row kernel `$one(&[W], &[A]) -> f32` and an
/// `$n`-row kernel `$many([&[W]; $n], &[A]) -> [f32; $n]`: `gemv` takes rows
/// `$n` at a time and the rest singly.
macro_rules! rows_entry {
    ($tier:expr, $W:ty, $A:ty, $one:path, $many:path, $n:literal) => {{
        unsafe fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: the caller upholds `VecDotFn`'s contract (CPU tier, whole
            // aligned blocks of the same count), which is `$one`'s.
            unsafe { $one(bytemuck::cast_slice(w), bytemuck::cast_slice(a)) }
        }
        unsafe fn gemv(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
            let a: &[$A] = bytemuck::cast_slice(a);
            let w: &[$W] = bytemuck::cast_slice(w);
            let per_row = row_bytes / core::mem::size_of::<$W>();
            let row = |r: usize| -> &[$W] { &w[r * per_row..(r + 1) * per_row] };
            let mut r = 0;
            while r + $n <= out.len() {
                let rows: [&[$W]; $n] = core::array::from_fn(|k| row(r + k));
                // SAFETY: `GemvFn`'s contract: the CPU has the tier and every row is
                // `row_bytes` of whole aligned blocks matching `a`.
                let v = unsafe { $many(rows, a) };
                out[r..r + $n].copy_from_slice(&v);
                r += $n;
            }
            while r < out.len() {
                // SAFETY: as above, for one row.
                out[r] = unsafe { $one(row(r), a) };
                r += 1;
            }
        }
        DotEntry { tier: $tier, vec_dot, gemv_tier: $tier, gemv }
    }};
}

/// A [`DotEntry`] from a typed one-row kernel `$one(&[W], &[A]) -> f32` and a
/// byte-level [`crate::kernels::GemvFn`] of its own.
macro_rules! gemv_entry {
    ($tier:expr, $W:ty, $A:ty, $one:path, $gemv:path) => {{
        unsafe fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: the caller upholds `VecDotFn`'s contract (CPU tier, whole
            // aligned blocks of the same count), which is `$one`'s.
            unsafe { $one(bytemuck::cast_slice::<u8, $W>(w), bytemuck::cast_slice::<u8, $A>(a)) }
        }
        DotEntry { tier: $tier, vec_dot, gemv_tier: $tier, gemv: $gemv }
    }};
}

/// Replaces table entries with their AVX2 versions.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
pub(crate) unsafe fn plug_avx2(k: &mut Kernels) {
    use Tier::Avx2 as T;
    k.tier = T;
    k.f32 = crate::dot_entry!(T, f32, f32, floats_avx2::vec_dot_f32_avx2);
    k.f16 = crate::dot_entry!(T, f16, f16, floats_avx2::vec_dot_f16_avx2);
    k.bf16 = crate::dot_entry!(T, bf16, bf16, floats_avx2::vec_dot_bf16_avx2);
    k.q4_0 = gemv_entry!(
        T,
        q4_0::BlockQ4_0,
        q8_0::BlockQ8_0,
        q4_0_avx2::vec_dot_q4_0_q8_0_avx2,
        q4_0_avx2::gemv_q4_0_q8_0_avx2
    );
    k.q4_1 = gemv_entry!(
        T,
        q4_1::BlockQ4_1,
        q8_1::BlockQ8_1,
        q4_1_avx2::vec_dot_q4_1_q8_1_avx2,
        q4_1_avx2::gemv_q4_1_q8_1_avx2
    );
    k.q5_0 = gemv_entry!(
        T,
        q5_0::BlockQ5_0,
        q8_0::BlockQ8_0,
        q5_0_avx2::vec_dot_q5_0_q8_0_avx2,
        q5_0_avx2::gemv_q5_0_q8_0_avx2
    );
    k.q5_1 = gemv_entry!(
        T,
        q5_1::BlockQ5_1,
        q8_1::BlockQ8_1,
        q5_1_avx2::vec_dot_q5_1_q8_1_avx2,
        q5_1_avx2::gemv_q5_1_q8_1_avx2
    );
    k.q8_0 = gemv_entry!(
        T,
        q8_0::BlockQ8_0,
        q8_0::BlockQ8_0,
        q8_0_avx2::vec_dot_q8_0_q8_0_avx2,
        q8_0_avx2::gemv_q8_0_q8_0_avx2
    );
    k.iq4_nl = gemv_entry!(
        T,
        iq4_nl::BlockIq4Nl,
        q8_0::BlockQ8_0,
        iq4_nl_avx2::vec_dot_iq4_nl_q8_0_avx2,
        iq4_nl_avx2::gemv_iq4_nl_q8_0_avx2
    );
    k.q2_k = crate::dot_entry!(T, q2_k::BlockQ2K, q8_k::BlockQ8K, q2_k_avx2::vec_dot_q2_k_q8_k_avx2);
    k.q3_k = crate::dot_entry!(T, q3_k::BlockQ3K, q8_k::BlockQ8K, q3_k_avx2::vec_dot_q3_k_q8_k_avx2);
    k.q4_k = crate::dot_entry!(T, q4_k::BlockQ4K, q8_k::BlockQ8K, q4_k_avx2::vec_dot_q4_k_q8_k_avx2);
    k.q5_k = crate::dot_entry!(T, q5_k::BlockQ5K, q8_k::BlockQ8K, q5_k_avx2::vec_dot_q5_k_q8_k_avx2);
    k.q6_k = crate::dot_entry!(T, q6_k::BlockQ6K, q8_k::BlockQ8K, q6_k_avx2::vec_dot_q6_k_q8_k_avx2);
    k.quantize_q8_0 = quantize_entry!(T, q8_0::BlockQ8_0, q8_0_avx2::quantize_q8_0_avx2);
    k.quantize_q8_1 = quantize_entry!(T, q8_1::BlockQ8_1, q8_1_avx2::quantize_q8_1_avx2);
    k.quantize_q8_k = quantize_entry!(T, q8_k::BlockQ8K, q8_k_avx2::quantize_q8_k_avx2);
}

/// Whether this CPU has AVX-512 VNNI (`vpdpbusd`), detected on its own: the
/// AVX-512 tier does not require it, and kernels that use it have a twin
/// without it.
fn has_avx512_vnni() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx512vnni")
    }
}

/// Replaces table entries with their AVX-512 versions (the VNNI builds where
/// the CPU has VNNI). Formats without an AVX-512 kernel keep their AVX2 one.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL (and AVX2, FMA, F16C).
pub(crate) unsafe fn plug_avx512(k: &mut Kernels) {
    use Tier::Avx512 as T;
    k.tier = T;
    if has_avx512_vnni() {
        k.q4_0 = rows_entry!(
            T,
            q4_0::BlockQ4_0,
            q8_0::BlockQ8_0,
            q4_0_avx512::vec_dot_q4_0_q8_0_avx512vnni,
            q4_0_avx512::vec_dot4_q4_0_q8_0_avx512vnni,
            4
        );
        k.q4_1 = rows_entry!(
            T,
            q4_1::BlockQ4_1,
            q8_1::BlockQ8_1,
            q4_1_avx512::vec_dot_q4_1_q8_1_avx512vnni,
            q4_1_avx512::vec_dot4_q4_1_q8_1_avx512vnni,
            4
        );
        k.q5_0 = rows_entry!(
            T,
            q5_0::BlockQ5_0,
            q8_0::BlockQ8_0,
            q5_0_avx512::vec_dot_q5_0_q8_0_avx512vnni,
            q5_0_avx512::vec_dot4_q5_0_q8_0_avx512vnni,
            4
        );
        k.q8_0 = rows_entry!(
            T,
            q8_0::BlockQ8_0,
            q8_0::BlockQ8_0,
            q8_0_avx512::vec_dot_q8_0_q8_0_avx512vnni,
            q8_0_avx512::vec_dot4_q8_0_q8_0_avx512vnni,
            4
        );
    } else {
        k.q4_0 = rows_entry!(
            T,
            q4_0::BlockQ4_0,
            q8_0::BlockQ8_0,
            q4_0_avx512::vec_dot_q4_0_q8_0_avx512,
            q4_0_avx512::vec_dot4_q4_0_q8_0_avx512,
            4
        );
        k.q4_1 = rows_entry!(
            T,
            q4_1::BlockQ4_1,
            q8_1::BlockQ8_1,
            q4_1_avx512::vec_dot_q4_1_q8_1_avx512,
            q4_1_avx512::vec_dot4_q4_1_q8_1_avx512,
            4
        );
        k.q5_0 = rows_entry!(
            T,
            q5_0::BlockQ5_0,
            q8_0::BlockQ8_0,
            q5_0_avx512::vec_dot_q5_0_q8_0_avx512,
            q5_0_avx512::vec_dot4_q5_0_q8_0_avx512,
            4
        );
        k.q8_0 = rows_entry!(
            T,
            q8_0::BlockQ8_0,
            q8_0::BlockQ8_0,
            q8_0_avx512::vec_dot_q8_0_q8_0_avx512,
            q8_0_avx512::vec_dot4_q8_0_q8_0_avx512,
            4
        );
    }
    k.q4_k = crate::dot_entry!(T, q4_k::BlockQ4K, q8_k::BlockQ8K, q4_k_avx512::vec_dot_q4_k_q8_k_avx512);
    k.q6_k = crate::dot_entry!(T, q6_k::BlockQ6K, q8_k::BlockQ8K, q6_k_avx512::vec_dot_q6_k_q8_k_avx512);
    k.quantize_q8_0 = quantize_entry!(T, q8_0::BlockQ8_0, q8_0_avx512::quantize_q8_0_avx512);
    k.quantize_q8_1 = quantize_entry!(T, q8_1::BlockQ8_1, q8_1_avx512::quantize_q8_1_avx512);
    k.quantize_q8_k = quantize_entry!(T, q8_k::BlockQ8K, q8_k_avx512::quantize_q8_k_avx512);
}
