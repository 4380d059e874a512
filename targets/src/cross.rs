//! How to build for a profile: the cargo arguments and the target-scoped
//! rustflags. Never `target-cpu=native`.

use crate::Profile;

/// A cargo invocation that builds for one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossBuild {
    /// The `--target` triple.
    pub target: &'static str,
    /// The rustflags for that target only (`-C target-cpu=...`, `-C
    /// target-feature=...`), as separate arguments.
    pub rustflags: Vec<String>,
    /// Whether the target is bare metal: build the core crates with
    /// `--no-default-features` (no `std`).
    pub no_std: bool,
}

impl Profile {
    /// The cross-build configuration of this profile.
    pub fn cross_build(&self) -> CrossBuild {
        let mut rustflags = vec!["-C".to_string(), format!("target-cpu={}", self.target_cpu)];
        if !self.target_feature_flags.is_empty() {
            rustflags.push("-C".into());
            rustflags.push(format!("target-feature={}", self.target_feature_flags.join(",")));
        }
        CrossBuild { target: self.triple, rustflags, no_std: !self.std }
    }
}

impl CrossBuild {
    /// The environment variable cargo reads rustflags for this target from
    /// (`CARGO_TARGET_<TRIPLE>_RUSTFLAGS`). Scoping the flags to the target
    /// keeps them away from build scripts and proc macros, which run on the host.
    pub fn rustflags_env_name(&self) -> String {
        let t: String =
            self.target.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("CARGO_TARGET_{t}_RUSTFLAGS")
    }

    /// The value for [`CrossBuild::rustflags_env_name`]: the flags joined by spaces.
    pub fn rustflags_env_value(&self) -> String {
        self.rustflags.join(" ")
    }

    /// `cargo` arguments after the program name: `build --release --target
    /// TRIPLE --config target.TRIPLE.rustflags=[...]` (plus
    /// `--no-default-features` for bare-metal profiles). `--config` merges
    /// with rustflags already set in `.cargo/config.toml` files (linker
    /// scripts of the firmware examples) instead of replacing them. Append
    /// `-p CRATE` and the like.
    pub fn cargo_args(&self) -> Vec<String> {
        let flags: Vec<String> = self.rustflags.iter().map(|f| format!("{f:?}")).collect();
        let mut args = vec![
            "build".to_string(),
            "--release".into(),
            "--target".into(),
            self.target.into(),
            "--config".into(),
            format!("target.\"{}\".rustflags=[{}]", self.target, flags.join(", ")),
        ];
        if self.no_std {
            args.push("--no-default-features".into());
        }
        args
    }

    /// The whole command as one shell line, for people to copy.
    pub fn command_line(&self) -> String {
        let quote = |a: &str| {
            if a.chars().all(|c| c.is_ascii_alphanumeric() || "-_=.,+/:".contains(c)) {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        };
        let mut line = String::from("cargo");
        for a in self.cargo_args() {
            line.push(' ');
            line.push_str(&quote(&a));
        }
        line
    }
}
