//! The crate's one error enum. `no_std`: no variant owns heap memory; names
//! of tensors and keys travel in fixed-size [`ShortStr`](crate::gguf::ShortStr)s.

use crate::gguf::{GgufError, Location};
use core::fmt;

/// Every error of the `ember` crate. no_std-friendly: no heap in any variant.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A kernel-level error (sizes, unsupported tensor types).
    Quant(ember_quant::Error),
    /// A malformed GGUF file. `Display` prints one sentence naming the problem,
    /// the metadata key or tensor (`at`), and the byte `offset` where it was found.
    Gguf {
        /// Byte offset in the file of the field that is wrong.
        offset: u64,
        /// The header, metadata entry or tensor the problem is in.
        at: Location,
        /// The problem.
        kind: GgufError,
    },
    /// An I/O error while opening or mapping a model file (feature `std`).
    #[cfg(feature = "std")]
    Io {
        /// What failed (`"open"`, `"mmap"`, `"stat"`).
        op: &'static str,
        /// The I/O error kind.
        kind: std::io::ErrorKind,
        /// The OS error code, if there is one.
        os_code: Option<i32>,
    },
    /// Tokenizer metadata in a GGUF file is missing, has the wrong type or is inconsistent.
    Tokenizer {
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The GGUF names a tokenizer model or pre-tokenizer that ember does not implement.
    UnsupportedTokenizer {
        /// `tokenizer.ggml.model` or `tokenizer.ggml.pre`.
        key: &'static str,
        /// The name in the file.
        name: crate::gguf::ShortStr,
    },
    /// Text needs a byte-fallback token (`<0xXX>`) the vocabulary does not have.
    NoByteToken {
        /// The byte.
        byte: u8,
    },
    /// A token id is not in the vocabulary.
    TokenOutOfRange {
        /// The id.
        token: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Quant(e) => write!(f, "{e}"),
            Error::Gguf { offset, at, kind } => crate::gguf::describe_error(f, *offset, at, kind),
            #[cfg(feature = "std")]
            Error::Io { op, kind, os_code: Some(code) } => write!(f, "{op} failed: {kind} (os error {code})"),
            #[cfg(feature = "std")]
            Error::Io { op, kind, os_code: None } => write!(f, "{op} failed: {kind}"),
            Error::Tokenizer { key, problem } => write!(f, "tokenizer metadata `{key}` {problem}"),
            Error::UnsupportedTokenizer { key, name } => {
                write!(f, "`{key}` = `{name}` is not supported by ember's tokenizer")
            }
            Error::NoByteToken { byte } => {
                write!(f, "the vocabulary has no token for byte {byte:#04x} (byte fallback)")
            }
            Error::TokenOutOfRange { token, n_vocab } => {
                write!(f, "token id {token} is outside the vocabulary of {n_vocab} tokens")
            }
        }
    }
}

impl core::error::Error for Error {}

impl From<ember_quant::Error> for Error {
    fn from(e: ember_quant::Error) -> Self {
        Error::Quant(e)
    }
}

#[cfg(feature = "std")]
impl Error {
    /// Wraps an I/O error from operation `op`.
    pub fn io(op: &'static str, e: &std::io::Error) -> Error {
        Error::Io { op, kind: e.kind(), os_code: e.raw_os_error() }
    }
}
