//! Shared by the CLI tests: the built binary, the real models, Python, scratch folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The model cache the tests read: `$EMBER_HOME`, or `<repo>/.models` (filled
/// by `scripts/fetch-models.sh`).
pub fn ember_home() -> PathBuf {
    std::env::var_os("EMBER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.models")))
}

/// A cached model file; fails the test with a clear message if it is missing.
pub fn model(name: &str, file: &str) -> PathBuf {
    let p = ember_home().join("models").join(name).join(file);
    assert!(p.exists(), "model file {} is missing: run scripts/fetch-models.sh (or `ember pull {name}`)", p.display());
    p
}

/// SmolLM2-135M-Instruct Q4_1.
pub fn smollm2() -> PathBuf {
    model("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Gemma 3 270M Q4_K_M.
pub fn gemma3() -> PathBuf {
    model("gemma3-270m", "gemma-3-270m-q4_k_m.gguf")
}

/// `ember ARGS` with `EMBER_HOME` set to the test cache and pip disabled
/// (`EMBER_PYTHON` names no program), so a test never downloads by accident.
pub fn ember(args: &[&str]) -> Output {
    ember_in(&ember_home(), args, &[("EMBER_PYTHON", "/nonexistent/python3-disabled-in-tests")])
}

/// `ember ARGS` with a given `EMBER_HOME` and extra environment.
pub fn ember_in(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember"));
    cmd.args(args).env("EMBER_HOME", home).env_remove("EMBER_KERNELS").env_remove("EMBER_PIP_WHEELS_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the ember binary")
}

/// stdout as text, after checking the command succeeded.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ember failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a Python 3 script (with the `gguf` and `numpy` packages, which
/// scripts/test.sh installs) and returns its stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed (scripts/test.sh installs it with gguf and numpy)");
    assert!(
        out.status.success(),
        "python3 failed (are `gguf` and `numpy` installed? `python3 -m pip install gguf numpy`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A scratch folder under the cargo target dir, emptied at creation and removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ember-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
