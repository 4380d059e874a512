//! The board profiles, as data.

/// What ember needs to know to build for, and plan on, one class of board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Short name used on the command line (`pi5`, `n100`, ...).
    pub name: &'static str,
    /// Other names accepted by [`Profile::by_name`] (e.g. `mps2-an386`).
    pub aliases: &'static [&'static str],
    /// The boards this profile stands for, for people.
    pub board: &'static str,
    /// Rust target triple.
    pub triple: &'static str,
    /// LLVM CPU passed as `-C target-cpu` (never `native`).
    pub target_cpu: &'static str,
    /// Extra `-C target-feature` entries on top of what `target_cpu` implies,
    /// in rustc syntax (`+neon`, `-aes`). Used where the triple's defaults or
    /// the core's LLVM model disagree with the real board, e.g. the Pi 4's
    /// Cortex-A72 has no crypto extensions although LLVM's `cortex-a72` assumes them.
    pub target_feature_flags: &'static [&'static str],
    /// Features (rustc names) the profile's flags enable that matter to
    /// ember's kernels; checked against `rustc --print cfg` in the tests.
    pub features: &'static [&'static str],
    /// Features the board lacks, which the flags must not enable (a binary
    /// using them would die with SIGILL); also checked in the tests.
    pub absent_features: &'static [&'static str],
    /// The SIMD ember's kernels use there, for people.
    pub simd: &'static str,
    /// Recommended worker threads (`None`: one per available core).
    pub threads: Option<usize>,
    /// RAM to plan models against, in KiB: the smallest common variant of the
    /// board (`None` when the class has no typical size; ask the OS).
    pub ram_kib: Option<u64>,
    /// Whether the target has `std` (Linux) or is bare metal (`no_std`, the
    /// model in flash).
    pub std: bool,
}

const MIB: u64 = 1024;
const GIB: u64 = 1024 * 1024;

/// Every profile ember knows, most specific first within an architecture.
pub static PROFILES: &[Profile] = &[
    Profile {
        name: "pi3",
        aliases: &["rpi3", "raspberry-pi-3"],
        board: "Raspberry Pi 3 / 3+ / Zero 2 W / CM3 with a 64-bit OS (BCM2837/RP3A0, 4x Cortex-A53)",
        triple: "aarch64-unknown-linux-gnu",
        target_cpu: "cortex-a53",
        // BCM2837 has no ARMv8 crypto extensions.
        target_feature_flags: &["-aes", "-sha2"],
        features: &["neon", "crc"],
        absent_features: &["aes", "sha2", "dotprod", "i8mm", "fp16"],
        simd: "NEON",
        threads: Some(4),
        ram_kib: Some(512 * MIB),
        std: true,
    },
    Profile {
        name: "pi4",
        aliases: &["rpi4", "raspberry-pi-4", "pi400", "cm4"],
        board: "Raspberry Pi 4 / 400 / CM4 (BCM2711, 4x Cortex-A72)",
        triple: "aarch64-unknown-linux-gnu",
        target_cpu: "cortex-a72",
        // BCM2711 has no ARMv8 crypto extensions, LLVM's cortex-a72 assumes them.
        target_feature_flags: &["-aes", "-sha2"],
        features: &["neon", "crc"],
        absent_features: &["aes", "sha2", "dotprod", "i8mm", "fp16"],
        simd: "NEON (no dotprod)",
        threads: Some(4),
        ram_kib: Some(GIB),
        std: true,
    },
    Profile {
        name: "pi5",
        aliases: &["rpi5", "raspberry-pi-5", "cm5"],
        board: "Raspberry Pi 5 / CM5 (BCM2712, 4x Cortex-A76)",
        triple: "aarch64-unknown-linux-gnu",
        target_cpu: "cortex-a76",
        target_feature_flags: &[],
        features: &["neon", "dotprod", "fp16", "rcpc", "crc"],
        absent_features: &["i8mm", "sve", "bf16"],
        simd: "NEON + dotprod (SDOT)",
        threads: Some(4),
        ram_kib: Some(2 * GIB),
        std: true,
    },
    Profile {
        name: "armv7",
        aliases: &["pi2", "armhf", "pi3-32"],
        board: "Raspberry Pi 2 / 3 (and later Pis) with a 32-bit OS (Cortex-A7 / Cortex-A53 in AArch32)",
        triple: "armv7-unknown-linux-gnueabihf",
        // Cortex-A7 code runs on every ARMv7-A/ARMv8 Pi in 32-bit mode.
        target_cpu: "cortex-a7",
        // The armv7 triple turns NEON off by default; every Pi from the 2 on has it.
        target_feature_flags: &["+neon"],
        features: &["neon", "vfp4", "d32"],
        absent_features: &["aes", "sha2", "crc"],
        simd: "NEON (32-bit)",
        threads: Some(4),
        ram_kib: Some(GIB),
        std: true,
    },
    Profile {
        name: "n100",
        aliases: &["alder-lake-n", "n97", "n200", "n305"],
        board: "Intel N100 / N97 / N200 / i3-N305 mini PCs (Alder Lake-N, 4-8 Gracemont cores)",
        triple: "x86_64-unknown-linux-gnu",
        target_cpu: "alderlake",
        target_feature_flags: &[],
        features: &["avx2", "fma", "f16c", "avxvnni", "bmi2"],
        absent_features: &["avx512f", "avx512bw", "avx512vnni"],
        simd: "AVX2 + FMA + F16C (no AVX-512)",
        threads: Some(4),
        ram_kib: Some(8 * GIB),
        std: true,
    },
    Profile {
        name: "x86-64-v3",
        aliases: &["x86-64", "avx2"],
        board: "any x86_64 CPU with AVX2, FMA, F16C, BMI2 (Haswell, Zen 1 and later)",
        triple: "x86_64-unknown-linux-gnu",
        target_cpu: "x86-64-v3",
        target_feature_flags: &[],
        features: &["avx2", "fma", "f16c", "bmi2"],
        absent_features: &["avx512f"],
        simd: "AVX2 + FMA + F16C (AVX-512 still chosen at run time where present)",
        threads: None,
        ram_kib: None,
        std: true,
    },
    Profile {
        name: "cortex-m4",
        aliases: &["mps2-an386", "m4"],
        board: "Cortex-M4F microcontrollers; QEMU's mps2-an386 (4 MiB code SRAM, 4 MiB data SRAM)",
        triple: "thumbv7em-none-eabihf",
        target_cpu: "cortex-m4",
        target_feature_flags: &[],
        features: &["dsp"],
        absent_features: &["neon"],
        simd: "DSP (SIMD32), single-precision FPU",
        threads: Some(1),
        ram_kib: Some(4 * MIB),
        std: false,
    },
    Profile {
        name: "cortex-m33",
        aliases: &["mps2-an505", "m33"],
        board: "Cortex-M33F microcontrollers (Armv8-M Mainline); QEMU's mps2-an505",
        triple: "thumbv8m.main-none-eabihf",
        target_cpu: "cortex-m33",
        target_feature_flags: &[],
        features: &["dsp"],
        absent_features: &["neon"],
        simd: "DSP (SIMD32), single-precision FPU",
        threads: Some(1),
        ram_kib: Some(2 * MIB),
        std: false,
    },
];

impl Profile {
    /// Every profile.
    pub fn all() -> &'static [Profile] {
        PROFILES
    }

    /// The profile with this name or alias (case-insensitive).
    pub fn by_name(name: &str) -> Option<&'static Profile> {
        let name = name.trim();
        PROFILES
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name) || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
    }

    /// The comma-separated list of profile names, for error messages.
    pub fn names() -> String {
        PROFILES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    }
}
