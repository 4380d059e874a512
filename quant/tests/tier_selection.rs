//! The kernel tier ember picks for this CPU is the right one.
//!
//! With `EMBER_EXPECT_TIER` set (by `scripts/test-aarch64.sh`: `neon` under
//! `qemu -cpu cortex-a72`, a Pi 4; `dotprod` under `-cpu max`), the best table
//! must be exactly that tier, every higher tier of the architecture must be
//! unavailable and refused, and every lower one must still be usable.
//! Without it, the tiers are checked against the standard library's feature
//! detection (`is_x86_feature_detected!` / `is_aarch64_feature_detected!`).
//! On an architecture with neither, the tests fail and say so: nothing passes
//! without checking something.
//!
//! No test name here contains "dotprod": the Cortex-A72 run filters those out
//! with `--skip dotprod` (they need SDOT), and these must run there.

use ember_quant::{Kernels, Tier};

const ALL: [Tier; 5] = [Tier::Generic, Tier::Avx2, Tier::Avx512, Tier::Neon, Tier::Dotprod];

/// The tier named by `EMBER_EXPECT_TIER`, if set (panics on an unknown name).
fn expected() -> Option<Tier> {
    let name = std::env::var("EMBER_EXPECT_TIER").ok().filter(|s| !s.trim().is_empty())?;
    Some(Tier::from_name(&name).unwrap_or_else(|| panic!("EMBER_EXPECT_TIER={name:?} names no tier")))
}

/// Whether `t` belongs to the architecture this test was built for.
fn this_arch(t: Tier) -> bool {
    match t {
        Tier::Generic => true,
        Tier::Avx2 | Tier::Avx512 => cfg!(target_arch = "x86_64"),
        Tier::Neon | Tier::Dotprod => cfg!(target_arch = "aarch64"),
    }
}

/// The best tier according to the standard library's detection macros.
#[allow(unreachable_code)]
fn detected_by_std() -> Tier {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 =
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
        let avx512 = avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl");
        return if avx512 {
            Tier::Avx512
        } else if avx2 {
            Tier::Avx2
        } else {
            Tier::Generic
        };
    }
    #[cfg(target_arch = "aarch64")]
    {
        let neon = std::arch::is_aarch64_feature_detected!("neon");
        let sdot = neon && std::arch::is_aarch64_feature_detected!("dotprod");
        return if sdot {
            Tier::Dotprod
        } else if neon {
            Tier::Neon
        } else {
            Tier::Generic
        };
    }
    panic!("no SIMD tier is defined for this architecture and EMBER_EXPECT_TIER is not set: nothing to check");
}

/// The tier of [`Kernels::best`] on a CPU whose highest tier is `highest`:
/// that tier, except AVX-512, whose whole table is opt-in; the default takes
/// from it only a few VNNI kernels (`Kernels::best`'s docs).
fn default_tier(highest: Tier) -> Tier {
    #[cfg(target_arch = "x86_64")]
    if highest == Tier::Avx512 && !is_x86_feature_detected!("avx512vnni") {
        return Tier::Avx2;
    }
    highest
}

#[test]
fn best_tier_is_the_expected_one() {
    let best = Kernels::best();
    let (want, source) = match expected() {
        Some(t) => (t, "EMBER_EXPECT_TIER"),
        None => (default_tier(detected_by_std()), "std feature detection"),
    };
    eprintln!("best kernel table: {} (expected {want} from {source})", best.describe());
    assert_eq!(best.tier(), want, "Kernels::best() picked {}, {source} says {want}", best.tier());
    assert!(want.is_available(), "{want} is expected but Tier::is_available says no");
}

#[test]
fn higher_tiers_are_refused_lower_ones_usable() {
    let best = match expected() {
        Some(t) => t,
        None => detected_by_std(),
    };
    for t in ALL {
        let ok = this_arch(t) && t <= best;
        assert_eq!(t.is_available(), ok, "{t}.is_available() with best tier {best}");
        match Kernels::with_tier(t) {
            Ok(k) => {
                assert!(ok, "with_tier({t}) accepted on a CPU whose best tier is {best}");
                assert_eq!(k.tier(), t, "with_tier({t}) built a {} table", k.tier());
            }
            Err(e) => assert!(!ok, "with_tier({t}) refused ({e}) although {t} <= {best} here"),
        }
    }
}

/// A Pi 4's Cortex-A72 has no SDOT: the dotprod tier must say it is
/// unavailable there (executing SDOT would be SIGILL). Under qemu the CPU
/// model comes from `QEMU_CPU`; `EMBER_EXPECT_TIER=neon` means the same.
/// Elsewhere, the tier's availability must match std's detection.
#[test]
fn sdot_tier_unavailable_on_cortex_a72() {
    let qemu_cpu = std::env::var("QEMU_CPU").unwrap_or_default();
    let a72 = qemu_cpu.eq_ignore_ascii_case("cortex-a72") || expected() == Some(Tier::Neon);
    if a72 {
        assert!(
            !Tier::Dotprod.is_available(),
            "the dotprod tier reports available on a Cortex-A72 (QEMU_CPU={qemu_cpu:?}), which has no SDOT"
        );
        assert!(Kernels::with_tier(Tier::Dotprod).is_err(), "with_tier(dotprod) accepted on a Cortex-A72");
        assert_ne!(Kernels::best().tier(), Tier::Dotprod);
        eprintln!("Cortex-A72: dotprod tier unavailable, as it must be");
    } else {
        assert_eq!(
            Tier::Dotprod.is_available(),
            detected_by_std() == Tier::Dotprod,
            "dotprod availability disagrees with std feature detection"
        );
    }
}

/// On a CPU with AVX-512 the default table is the AVX2 table plus, with
/// VNNI, exactly the AVX-512 kernels that measured faster (the Q8_0 and
/// Q5_0 gemms and gemvs, the Q4_0 gemm; `Kernels::best`'s docs), and the table
/// asked for by name plugs an AVX-512 gemv for each of the six formats.
/// Elsewhere the AVX-512 table must be refused.
#[test]
fn avx512_table_is_opt_in() {
    use ember_quant::GgmlType::*;
    if !Tier::Avx512.is_available() {
        assert!(Kernels::with_tier(Tier::Avx512).is_err(), "with_tier(avx512) accepted without AVX-512");
        eprintln!("no AVX-512 here: its table is refused, as it must be");
        return;
    }
    #[cfg(target_arch = "x86_64")]
    let vnni = is_x86_feature_detected!("avx512vnni");
    #[cfg(not(target_arch = "x86_64"))]
    let vnni = false;
    let tier_if = |yes: bool| if yes { Tier::Avx512 } else { Tier::Avx2 };
    let best = Kernels::best();
    let opt_in = Kernels::with_tier(Tier::Avx512).unwrap();
    for ty in [Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K] {
        let (b, o) = (best.dot(ty).unwrap(), opt_in.dot(ty).unwrap());
        let measured = vnni && (ty == Q5_0 || ty == Q8_0);
        assert_eq!(b.gemv_tier, tier_if(measured), "{ty}: the default table's gemv");
        assert_eq!(b.gemm_tier, tier_if(measured || (vnni && ty == Q4_0)), "{ty}: the default table's gemm");
        assert_eq!(o.gemv_tier, Tier::Avx512, "{ty}: the avx512 table's gemv is {}", o.gemv_tier);
    }
    assert_eq!(best.tier(), tier_if(vnni));
    let d = best.describe().to_string();
    assert_eq!(d.contains(" q8_0=avx512 "), vnni, "{d}");
    // `describe` names a gemm whose tier differs from its gemv's: the
    // AVX-512 table's Q4_1 gemm is the AVX2 one.
    let d = opt_in.describe().to_string();
    assert!(d.contains(" q4_1=avx512/gemm:avx2 "), "{d}");
}
