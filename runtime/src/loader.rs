//! Loading a model file: [`Model`] owns (or borrows for `'static`) the bytes
//! of a GGUF file and the [`Layout`] found by parsing it once.
//!
//! - [`Model::open`] (feature `std`) maps the file read-only with `memmap2`:
//!   opening costs one parse of the header, metadata and tensor infos; tensor
//!   data is never copied and is paged in by the OS when first touched.
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
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", &e))?;
        // SAFETY: the map is read-only (so we never write through it) and
        // private to this `Model`. Soundness of the `&[u8]` views additionally
        // needs the file not to be changed by another process while mapped;
        // that is the documented contract of `open`, as in every mmap loader.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|e| Error::io("mmap", &e))?;
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
