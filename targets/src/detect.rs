//! Which profile fits the machine we run on, from what Linux says about it.
//!
//! Sources, in order of trust: `/proc/device-tree/model` (Raspberry Pi
//! firmware writes the board name there, e.g. `Raspberry Pi 5 Model B Rev
//! 1.0`), then `/proc/cpuinfo`: the ARM `CPU part` ids (Cortex-A53 `0xd03`,
//! A72 `0xd08`, A76 `0xd0b`, A7 `0xc07`) and `Features`, or the x86 `model
//! name` and `flags`. The parsing is pure so it can be tested with fixtures.

use crate::Profile;

/// A detected profile and why it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The profile that fits.
    pub profile: &'static Profile,
    /// What in the system information led to it, for people.
    pub reason: String,
}

/// Detects the profile of the machine this process runs on (Linux; `None`
/// elsewhere, or when no profile fits).
pub fn detect_host() -> Option<Detection> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = std::fs::read("/proc/device-tree/model").ok().map(|b| String::from_utf8_lossy(&b).into_owned());
    detect(std::env::consts::ARCH, &cpuinfo, model.as_deref())
}

/// Detects a profile from the architecture this process was built for
/// (`std::env::consts::ARCH`: `aarch64`, `arm`, `x86_64`), the text of
/// `/proc/cpuinfo` and the text of `/proc/device-tree/model` if it exists.
pub fn detect(arch: &str, cpuinfo: &str, device_tree_model: Option<&str>) -> Option<Detection> {
    let model = device_tree_model.map(|m| m.trim_matches(|c: char| c == '\0' || c.is_whitespace()));
    let found = |name: &str, reason: String| Some(Detection { profile: Profile::by_name(name)?, reason });
    match arch {
        "aarch64" => {
            if let Some(m) = model {
                let pi = pi_generation(m);
                match pi {
                    Some(5) => return found("pi5", format!("device-tree model \"{m}\"")),
                    Some(4) => return found("pi4", format!("device-tree model \"{m}\"")),
                    Some(3) => return found("pi3", format!("device-tree model \"{m}\"")),
                    _ => {}
                }
            }
            let part = cpu_part(cpuinfo);
            match part {
                Some(0xd0b) => return found("pi5", "Cortex-A76 cores (CPU part 0xd0b)".into()),
                Some(0xd08) => return found("pi4", "Cortex-A72 cores (CPU part 0xd08)".into()),
                Some(0xd03) => return found("pi3", "Cortex-A53 cores (CPU part 0xd03)".into()),
                _ => {}
            }
            // Another aarch64 board: the closest profile by feature set.
            let features = cpu_features(cpuinfo, "Features");
            if features.contains(&"asimddp") {
                found("pi5", "aarch64 CPU with dotprod (asimddp); closest profile".into())
            } else if features.contains(&"asimd") {
                found("pi4", "aarch64 CPU with NEON, no dotprod; closest profile".into())
            } else {
                None
            }
        }
        "arm" => {
            let features = cpu_features(cpuinfo, "Features");
            // ARMv6 Pis (1, Zero) have no NEON: no profile fits them.
            if !features.contains(&"neon") {
                return None;
            }
            let why = match model {
                Some(m) if pi_generation(m).is_some() => format!("device-tree model \"{m}\" with a 32-bit OS"),
                _ => "32-bit ARM CPU with NEON".into(),
            };
            found("armv7", why)
        }
        "x86_64" => {
            let name = cpuinfo_value(cpuinfo, "model name").unwrap_or("");
            if is_alder_lake_n(name) {
                return found("n100", format!("CPU \"{name}\" (Alder Lake-N)"));
            }
            let flags = cpu_features(cpuinfo, "flags");
            // x86-64-v3 as the psABI defines it; cpuinfo calls LZCNT "abm".
            let v3 = ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"];
            if v3.iter().all(|f| flags.contains(f)) {
                let what = if name.is_empty() { "x86_64 CPU".to_string() } else { format!("CPU \"{name}\"") };
                found("x86-64-v3", format!("{what} with AVX2, FMA, F16C, BMI2"))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The Raspberry Pi generation named by a device-tree model string (3 for a
/// Pi 3 or Zero 2 W, whose RP3A0 is a BCM2837; 2 for a Pi 2), if it is a Pi.
pub fn pi_generation(model: &str) -> Option<u32> {
    let m = model.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let rest = m.strip_prefix("Raspberry Pi ")?;
    if rest.starts_with("Zero 2") {
        return Some(3);
    }
    if let Some(cm) = rest.strip_prefix("Compute Module ") {
        return cm.chars().next()?.to_digit(10);
    }
    // "5 Model B", "500" (keyboard Pi 5), "4 Model B", "400", "3 Model B Plus", "2 Model B".
    match rest.chars().next()?.to_digit(10)? {
        d @ 2..=5 => Some(d),
        _ => None,
    }
}

/// The first `CPU part` of an ARM `/proc/cpuinfo`.
fn cpu_part(cpuinfo: &str) -> Option<u32> {
    let v = cpuinfo_value(cpuinfo, "CPU part")?;
    u32::from_str_radix(v.trim_start_matches("0x"), 16).ok()
}

/// The value of the first `key : value` line of `/proc/cpuinfo` with this key.
fn cpuinfo_value<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The whitespace-separated words of the first `key` line (`Features` on
/// ARM, `flags` on x86).
fn cpu_features<'a>(cpuinfo: &'a str, key: &str) -> Vec<&'a str> {
    cpuinfo_value(cpuinfo, key).map(|v| v.split_whitespace().collect()).unwrap_or_default()
}

/// Intel's Alder Lake-N / Twin Lake parts (Gracemont E-cores only).
fn is_alder_lake_n(model_name: &str) -> bool {
    const PARTS: &[&str] =
        &["N50", "N95", "N97", "N100", "N150", "N200", "N250", "N300", "N305", "N350", "N355", "i3-N300", "i3-N305"];
    model_name.contains("Intel") && model_name.split_whitespace().any(|w| PARTS.contains(&w))
}
