//! Detection against `/proc` fixtures from real boards, and the profile table's invariants.

use crate::{detect, pi_generation, Profile, PROFILES};

const PI5_CPUINFO: &str = "processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1

Revision\t: d04170
Model\t\t: Raspberry Pi 5 Model B Rev 1.0
";

const PI4_CPUINFO_64: &str = "processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
";

const PI4_CPUINFO_32: &str = "processor\t: 0
model name\t: ARMv7 Processor rev 3 (v7l)
BogoMIPS\t: 108.00
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
";

const PI3_CPUINFO_64: &str = "processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd03
CPU revision\t: 4
";

const PI2_CPUINFO: &str = "processor\t: 0
model name\t: ARMv7 Processor rev 5 (v7l)
BogoMIPS\t: 38.40
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xc07
CPU revision\t: 5
Hardware\t: BCM2835
Revision\t: a21041
";

const PI_ZERO_CPUINFO: &str = "processor\t: 0
model name\t: ARMv6-compatible processor rev 7 (v6l)
BogoMIPS\t: 997.08
Features\t: half thumb fastmult vfp edsp java tls
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xb76
CPU revision\t: 7
";

/// An RK3566 board (Cortex-A55: ARMv8.2 with dotprod), no Pi model string.
const A55_CPUINFO: &str = "processor\t: 0
BogoMIPS\t: 48.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x2
CPU part\t: 0xd05
CPU revision\t: 0
";

const N100_CPUINFO: &str = "processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 190
model name\t: Intel(R) N100
stepping\t: 0
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq dtes64 monitor ds_cpl vmx est tm2 ssse3 sdbg fma cx16 xtpr pdcm sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb cat_l2 cdp_l2 ssbd ibrs ibpb stibp ibrs_enhanced tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdt_a rdseed adx smap clflushopt clwb intel_pt sha_ni xsaveopt xsavec xgetbv1 xsaves split_lock_detect avx_vnni dtherm ida arat pln pts hwp hwp_notify hwp_act_window hwp_epp hwp_pkg_req hfi vnmi umip pku ospke waitpkg gfni vaes vpclmulqdq rdpid movdiri movdir64b fsrm md_clear serialize arch_lbr ibt flush_l1d arch_capabilities
";

const EPYC_CPUINFO: &str = "processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr arat npt nrip_save umip vaes vpclmulqdq rdpid fsrm
";

/// Sandy Bridge: AVX but no AVX2, so no profile fits.
const SANDY_BRIDGE_CPUINFO: &str = "processor\t: 0
model name\t: Intel(R) Core(TM) i5-2500K CPU @ 3.30GHz
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt aes xsave avx
";

fn detected(arch: &str, cpuinfo: &str, model: Option<&str>) -> Option<&'static str> {
    detect(arch, cpuinfo, model).map(|d| d.profile.name)
}

#[test]
fn raspberry_pis_by_device_tree_model() {
    // The device-tree strings end with a NUL byte.
    assert_eq!(detected("aarch64", PI5_CPUINFO, Some("Raspberry Pi 5 Model B Rev 1.0\0")), Some("pi5"));
    assert_eq!(detected("aarch64", PI4_CPUINFO_64, Some("Raspberry Pi 4 Model B Rev 1.4\0")), Some("pi4"));
    assert_eq!(detected("aarch64", PI4_CPUINFO_64, Some("Raspberry Pi 400 Rev 1.0\0")), Some("pi4"));
    assert_eq!(detected("aarch64", PI4_CPUINFO_64, Some("Raspberry Pi Compute Module 4 Rev 1.0\0")), Some("pi4"));
    assert_eq!(detected("aarch64", PI3_CPUINFO_64, Some("Raspberry Pi 3 Model B Plus Rev 1.3\0")), Some("pi3"));
    assert_eq!(detected("aarch64", PI3_CPUINFO_64, Some("Raspberry Pi Zero 2 W Rev 1.0\0")), Some("pi3"));
    let d = detect("aarch64", PI5_CPUINFO, Some("Raspberry Pi 5 Model B Rev 1.0\0")).unwrap();
    assert_eq!(d.reason, "device-tree model \"Raspberry Pi 5 Model B Rev 1.0\"");
}

#[test]
fn aarch64_by_cpu_part_without_device_tree() {
    assert_eq!(detected("aarch64", PI5_CPUINFO, None), Some("pi5"));
    assert_eq!(detected("aarch64", PI4_CPUINFO_64, None), Some("pi4"));
    assert_eq!(detected("aarch64", PI3_CPUINFO_64, None), Some("pi3"));
    // Not a Pi: closest profile by features, and the reason says so.
    let d = detect("aarch64", A55_CPUINFO, Some("Radxa ROCK 3C\0")).unwrap();
    assert_eq!(d.profile.name, "pi5");
    assert!(d.reason.contains("closest"), "{}", d.reason);
    assert_eq!(detected("aarch64", "", None), None);
}

#[test]
fn thirty_two_bit_arm() {
    assert_eq!(detected("arm", PI2_CPUINFO, Some("Raspberry Pi 2 Model B Rev 1.1\0")), Some("armv7"));
    assert_eq!(detected("arm", PI4_CPUINFO_32, Some("Raspberry Pi 4 Model B Rev 1.2\0")), Some("armv7"));
    assert_eq!(detected("arm", PI4_CPUINFO_32, None), Some("armv7"));
    // ARMv6 (Pi 1, Zero): no NEON, no profile.
    assert_eq!(detected("arm", PI_ZERO_CPUINFO, Some("Raspberry Pi Zero W Rev 1.1\0")), None);
}

#[test]
fn x86_64() {
    let d = detect("x86_64", N100_CPUINFO, None).unwrap();
    assert_eq!(d.profile.name, "n100");
    assert_eq!(d.reason, "CPU \"Intel(R) N100\" (Alder Lake-N)");
    assert_eq!(detected("x86_64", &N100_CPUINFO.replace("N100", "Core(TM) i3-N305"), None), Some("n100"));
    assert_eq!(detected("x86_64", EPYC_CPUINFO, None), Some("x86-64-v3"));
    assert_eq!(detected("x86_64", SANDY_BRIDGE_CPUINFO, None), None);
    // A model name that merely contains "N100" inside another word is not one.
    assert_eq!(detected("x86_64", &EPYC_CPUINFO.replace("AMD EPYC 7B13", "Intel(R) XN100"), None), Some("x86-64-v3"));
}

#[test]
fn unknown_architectures() {
    assert_eq!(detected("riscv64", "isa\t: rv64imafdc\n", None), None);
}

#[test]
fn host_detection_agrees_with_std_feature_detection() {
    // Independent oracle: the CPU features std detects.
    #[cfg(target_arch = "x86_64")]
    {
        let v3 = ["avx2", "fma", "f16c", "bmi1", "bmi2", "lzcnt", "movbe"];
        let has = |f: &str| match f {
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            "f16c" => std::arch::is_x86_feature_detected!("f16c"),
            "bmi1" => std::arch::is_x86_feature_detected!("bmi1"),
            "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
            "lzcnt" => std::arch::is_x86_feature_detected!("lzcnt"),
            "movbe" => std::arch::is_x86_feature_detected!("movbe"),
            _ => unreachable!(),
        };
        let d = crate::detect_host();
        println!("host: {d:?}");
        if v3.iter().all(|f| has(f)) {
            let d = d.expect("an x86-64-v3 CPU must be detected");
            assert!(d.profile.name == "x86-64-v3" || d.profile.name == "n100", "{d:?}");
        } else {
            assert_eq!(d, None);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let d = crate::detect_host().expect("every aarch64 Linux CPU has NEON, so some profile fits");
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            assert_eq!(d.profile.features.contains(&"dotprod"), true, "{d:?}");
        }
    }
}

#[test]
fn pi_generation_parses_model_strings() {
    assert_eq!(pi_generation("Raspberry Pi 5 Model B Rev 1.0\0"), Some(5));
    assert_eq!(pi_generation("Raspberry Pi 500 Rev 1.0"), Some(5));
    assert_eq!(pi_generation("Raspberry Pi Compute Module 5 Rev 1.0"), Some(5));
    assert_eq!(pi_generation("Raspberry Pi 3 Model B Rev 1.2"), Some(3));
    assert_eq!(pi_generation("Raspberry Pi 2 Model B Rev 1.1"), Some(2));
    assert_eq!(pi_generation("Raspberry Pi Model B Rev 2"), None);
    assert_eq!(pi_generation("Raspberry Pi Zero W Rev 1.1"), None);
    assert_eq!(pi_generation("Pine64 RockPro64"), None);
}

#[test]
fn profile_table_invariants() {
    let mut names: Vec<&str> =
        PROFILES.iter().flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied())).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "profile names and aliases must be unique");
    for p in PROFILES {
        assert_ne!(p.target_cpu, "native", "{}: binaries must run on every board of the profile", p.name);
        assert!(!p.target_feature_flags.iter().any(|f| f.contains("native")), "{}", p.name);
        assert!(p.features.iter().all(|f| !p.absent_features.contains(f)), "{}", p.name);
        assert_eq!(Profile::by_name(p.name), Some(p));
        assert_eq!(Profile::by_name(&p.name.to_uppercase()), Some(p));
        assert_eq!(p.std, !p.triple.contains("-none-"), "{}", p.name);
    }
    assert_eq!(Profile::by_name("mps2-an386").map(|p| p.name), Some("cortex-m4"));
    assert_eq!(Profile::by_name("pi6"), None);
    assert_eq!(Profile::names(), "pi3, pi4, pi5, armv7, n100, x86-64-v3, cortex-m4, cortex-m33");
}

#[test]
fn cross_build_arguments() {
    let b = Profile::by_name("pi4").unwrap().cross_build();
    assert_eq!(b.target, "aarch64-unknown-linux-gnu");
    assert_eq!(b.rustflags, ["-C", "target-cpu=cortex-a72", "-C", "target-feature=-aes,-sha2"]);
    assert_eq!(b.rustflags_env_name(), "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS");
    assert_eq!(b.rustflags_env_value(), "-C target-cpu=cortex-a72 -C target-feature=-aes,-sha2");
    assert_eq!(
        b.cargo_args(),
        [
            "build",
            "--release",
            "--target",
            "aarch64-unknown-linux-gnu",
            "--config",
            r#"target."aarch64-unknown-linux-gnu".rustflags=["-C", "target-cpu=cortex-a72", "-C", "target-feature=-aes,-sha2"]"#
        ]
    );
    let m33 = Profile::by_name("cortex-m33").unwrap().cross_build();
    assert_eq!(m33.rustflags_env_name(), "CARGO_TARGET_THUMBV8M_MAIN_NONE_EABIHF_RUSTFLAGS");
    assert!(m33.no_std);
    assert_eq!(m33.cargo_args().last().map(String::as_str), Some("--no-default-features"));
    assert_eq!(
        m33.command_line(),
        r#"cargo build --release --target thumbv8m.main-none-eabihf --config 'target."thumbv8m.main-none-eabihf".rustflags=["-C", "target-cpu=cortex-m33"]' --no-default-features"#
    );
}
