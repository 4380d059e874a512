//! Loading a model file: [`Model`] owns (or borrows for `'static`) the bytes
//! of a GGUF file and the [`Layout`] found by parsing it once.
//!
//! - [`Model::open`] (feature `std`) maps the file read-only with `memmap2`:
//!   opening costs one parse of the header, metadata and tensor infos; tensor
//!   data is never copied and is paged in by the OS when first touched, in
//!   2 MiB pages where Linux can (the map is advised `MADV_HUGEPAGE`).
//! - [`Model::from_static`] takes bytes that live forever, e.g. a model
//!   linked into a microcontroller's flash (`include_bytes!`).

use crate::gguf::{File, Layout};
use crate::Error;

/// The bytes of a model file.
enum Bytes {
    Static(&'static [u8]),
    #[cfg(feature = "std")]
    Mmap(memmap2::Mmap),
}

/// A parsed GGUF model file, zero-copy. [`Model::gguf`] re-views it as a
/// [`File`] without parsing again.
pub struct Model {
    bytes: Bytes,
    layout: Layout,
    #[cfg(feature = "std")]
    path: Option<std::path::PathBuf>,
}

impl core::fmt::Debug for Model {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Model");
        #[cfg(feature = "std")]
        d.field("path", &self.path);
        d.field("file_size", &self.file_size()).field("layout", &self.layout).finish()
    }
}

/// `Error::NotAFile` unless `meta` is a regular file's.
#[cfg(feature = "std")]
fn not_a_file(meta: &std::fs::Metadata) -> Result<(), Error> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let what = if t.is_dir() {
        "a folder"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                "a FIFO"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "a special file"
            }
        }
        #[cfg(not(unix))]
        "a special file"
    };
    Err(Error::NotAFile { what })
}

/// Asks Linux to back the map with 2 MiB pages where it can
/// (`MADV_HUGEPAGE`), before anything in it is touched. Where the file is
/// not yet in the page cache, the kernel then reads it in 2 MiB folios and
/// maps each with one page-table entry; a decode step, which reads every
/// weight once, then walks 512 times fewer pages. Pages already cached in
/// smaller folios stay as they are, and a kernel without transparent huge
/// pages refuses the advice, which changes nothing: the advice is a hint
/// and its result is ignored.
#[cfg(feature = "std")]
fn advise_huge_pages(map: &memmap2::Mmap) {
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    #[cfg(not(target_os = "linux"))]
    let _ = map;
}

impl Model {
    /// A model whose bytes live for the whole program (flash, `include_bytes!`,
    /// a leaked buffer). Parses and validates them once.
    pub fn from_static(bytes: &'static [u8]) -> Result<Model, Error> {
        let layout = File::parse(bytes)?.layout();
        Ok(Model {
            bytes: Bytes::Static(bytes),
            layout,
            #[cfg(feature = "std")]
            path: None,
        })
    }

    /// Maps the GGUF file at `path` read-only and validates it. Takes
    /// milliseconds for any size: only the header, metadata and tensor infos
    /// are read; tensor data stays on disk until used.
    ///
    /// The file must not be modified or truncated while the `Model` lives
    /// (as with any mmap; llama.cpp has the same rule).
    #[cfg(feature = "std")]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Model, Error> {
        let path = path.as_ref();
        // Checked before opening: opening a FIFO blocks until a writer comes,
        // and a folder or a device fails later, at mmap, with ENODEV. A
        // missing file is reported as a failed open, as before this check.
        let meta = std::fs::metadata(path).map_err(|e| Error::io("open", &e))?;
        not_a_file(&meta)?;
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", &e))?;
        // Again on the open file, in case the path changed in between.
        not_a_file(&file.metadata().map_err(|e| Error::io("stat", &e))?)?;
        // SAFETY: the map is read-only (so we never write through it) and
        // private to this `Model`. Soundness of the `&[u8]` views additionally
        // needs the file not to be changed by another process while mapped;
        // that is the documented contract of `open`, as in every mmap loader.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|e| Error::io("mmap", &e))?;
        advise_huge_pages(&map);
        let layout = File::parse(&map)?.layout();
        Ok(Model { bytes: Bytes::Mmap(map), layout, path: Some(path.to_path_buf()) })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Static(b) => b,
            #[cfg(feature = "std")]
            Bytes::Mmap(m) => m,
        }
    }

    /// The file as a [`File`] (no parsing: uses the stored [`Layout`]).
    pub fn gguf(&self) -> File<'_> {
        File::with_layout(self.bytes(), self.layout)
    }

    /// The layout found when the file was parsed.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// The path the model was opened from (`None` for [`Model::from_static`]).
    #[cfg(feature = "std")]
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }
}

#[cfg(all(test, feature = "std", target_os = "linux"))]
mod tests {
    use super::*;
    use crate::gguf::Writer;
    use ember_quant::GgmlType;

    /// `Model::open` advises the kernel to use huge pages for the map: the
    /// mapping's `VmFlags` in `/proc/self/smaps` carry `hg` (`VM_HUGEPAGE`).
    /// The kernel records the advice whether or not it can honour it.
    #[test]
    fn open_advises_huge_pages() {
        let mut w = Writer::new();
        w.add_str("general.architecture", "llama").unwrap();
        let data = [0u8; 4 * 8];
        w.add_tensor("t", GgmlType::F32, &[4, 2], &data[..]).unwrap();
        let path = std::env::temp_dir().join(format!("ember-loader-hg-{}.gguf", std::process::id()));
        std::fs::write(&path, w.to_bytes()).unwrap();
        let model = Model::open(&path).unwrap();
        let start = format!("{:x}-", model.bytes().as_ptr() as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let block = smaps.split_once(start.as_str()).expect("the model's mapping is in /proc/self/smaps").1;
        let flags = block.lines().find_map(|l| l.strip_prefix("VmFlags:")).expect("VmFlags line");
        drop(model);
        std::fs::remove_file(&path).unwrap();
        assert!(flags.split_whitespace().any(|f| f == "hg"), "no hg in VmFlags:{flags}");
    }
}
