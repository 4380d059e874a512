//! Stamp files (`sha256 size path` per pulled file) and file hashing.

use super::*;

/// One line of the stamp file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct StampEntry {
    pub(super) sha256: String,
    pub(super) size: u64,
    pub(super) path: String,
}

pub(super) fn parse_stamp(text: &str) -> Option<Vec<StampEntry>> {
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

pub(super) fn write_stamp(dir: &Path, entries: &[StampEntry]) -> Result<(), CacheError> {
    let text: String = entries.iter().map(|e| format!("{} {} {}\n", e.sha256, e.size, e.path)).collect();
    let tmp = dir.join(format!("{STAMP_FILE}.tmp{}", std::process::id()));
    fs::write(&tmp, text).map_err(io_err("writing", &tmp))?;
    let dst = dir.join(STAMP_FILE);
    fs::rename(&tmp, &dst).map_err(io_err("renaming into", &dst))
}

pub(super) fn file_len(p: &Path) -> Option<u64> {
    fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes between two progress reports.
pub(super) const PROGRESS_STEP: u64 = 8 << 20;

pub(super) fn hash_file(path: &Path, progress: &mut dyn FnMut(Progress<'_>)) -> Result<String, CacheError> {
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
