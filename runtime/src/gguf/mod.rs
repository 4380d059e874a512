//! GGUF: the file format of ggml and llama.cpp (spec: ggml's `docs/gguf.md`).
//!
//! - [`File`] is a zero-copy, `no_std` reader over `&[u8]`: [`File::parse`]
//!   validates everything once (every read goes through a bounded cursor,
//!   with limits on string length, array length, counts and nesting, see
//!   [`limits`]); accessors hand out `&str`, `&[f32]` and tensor byte slices
//!   borrowed from the file.
//! - [`Writer`] (feature `alloc`) builds GGUF v3 files: metadata, tensor infos,
//!   alignment padding and data.
//!
//! Problems are reported as `crate::Error::Gguf` with a [`GgufError`] naming
//! the problem, a [`Location`] naming the metadata key or tensor, and the
//! byte offset.

mod cursor;
mod error;
mod file;
pub mod limits;
mod short_str;
mod value;
#[cfg(feature = "alloc")]
mod writer;

pub(crate) use error::describe as describe_error;
pub use error::{GgufError, Location};
pub use file::{File, Layout, TensorInfo, ALIGNMENT_KEY};
pub use short_str::{ShortStr, SHORT_STR_CAP};
pub use value::{Array, Value, ValueType};
#[cfg(feature = "alloc")]
pub use writer::{MetaValue, Writer};

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
