//! The profiles' flags checked against the compiler itself: `rustc --print
//! cfg` with each profile's target and rustflags must enable the profile's
//! `features` and none of its `absent_features`, and `cargo` must accept the
//! generated cross-build arguments.

use ember_targets::{Profile, PROFILES};
use std::process::Command;

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

/// The `target_feature` cfgs rustc reports for a profile, and its stderr.
fn target_features(p: &Profile) -> (Vec<String>, String) {
    let build = p.cross_build();
    let mut cmd = Command::new(rustc());
    cmd.args(["--print", "cfg", "--target", build.target]).args(&build.rustflags);
    // Stable rustc does not report 32-bit ARM target features in `cfg` (they
    // are unstable there); RUSTC_BOOTSTRAP only unlocks that report, this
    // does not build anything.
    if build.target.starts_with("arm") || build.target.starts_with("thumb") {
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    let out = cmd.output().expect("run rustc --print cfg");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}: rustc --print cfg failed: {stderr}", p.name);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let features = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("target_feature=\"")?.strip_suffix('"').map(String::from))
        .collect();
    (features, stderr)
}

#[test]
fn every_profile_enables_exactly_what_its_board_has() {
    for p in PROFILES {
        let (features, stderr) = target_features(p);
        println!("{}: {}", p.name, features.join(" "));
        assert!(!stderr.contains("unknown"), "{}: rustc does not know a flag: {stderr}", p.name);
        for f in p.features {
            assert!(features.iter().any(|x| x == f), "{}: flags do not enable `{f}`: {features:?}", p.name);
        }
        for f in p.absent_features {
            assert!(!features.iter().any(|x| x == f), "{}: flags enable `{f}`, which the board lacks", p.name);
        }
    }
}

#[test]
fn pi4_and_pi5_differ_exactly_where_the_kernels_care() {
    let (pi4, _) = target_features(Profile::by_name("pi4").unwrap());
    let (pi5, _) = target_features(Profile::by_name("pi5").unwrap());
    assert!(pi5.iter().any(|f| f == "dotprod"));
    assert!(!pi4.iter().any(|f| f == "dotprod"), "SDOT on a Pi 4 is SIGILL");
    assert!(!pi4.iter().any(|f| f == "aes"), "the BCM2711 has no crypto extensions");
}

/// Builds this crate (a library: no linker needed) with the generated
/// arguments for one aarch64 and one x86_64 profile, which proves cargo
/// accepts the `--config` quoting and passes the flags to rustc.
#[test]
fn cargo_accepts_the_cross_build_arguments() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let target_dir = concat!(env!("CARGO_TARGET_TMPDIR"), "/cross-build");
    // A build left by an earlier run would be fresh, and cargo prints no
    // rustc line for a fresh crate: start from an empty target directory.
    match std::fs::remove_dir_all(target_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {target_dir}: {e}"),
    }
    for name in ["pi4", "n100"] {
        let b = Profile::by_name(name).unwrap().cross_build();
        let out = Command::new(&cargo)
            .current_dir(root)
            .args(b.cargo_args())
            .args(["-p", "ember-targets", "--lib", "-v"])
            .env("CARGO_TARGET_DIR", target_dir)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("run cargo");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{name}: cargo {} failed (is the rust target {} installed? rust-toolchain.toml lists it):\n{stderr}",
            b.cargo_args().join(" "),
            b.target
        );
        let rustc_line = stderr
            .lines()
            .find(|l| l.contains("Running") && l.contains("--crate-name ember_targets"))
            .unwrap_or_else(|| panic!("{name}: no rustc line in cargo -v output:\n{stderr}"));
        assert!(rustc_line.contains(&format!("target-cpu={}", b.rustflags[1].trim_start_matches("target-cpu="))));
        assert!(rustc_line.contains(&format!("--target {}", b.target)), "{rustc_line}");
    }
}
