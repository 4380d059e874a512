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
    /// The path names a folder, a FIFO or a device, not a regular file: such
    /// a path cannot be mapped as a model (a FIFO would block the open until a
    /// writer appears) (feature `std`).
    #[cfg(feature = "std")]
    NotAFile {
        /// What it is instead: `"a folder"`, `"a FIFO"`, ...
        what: &'static str,
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
    /// `general.architecture` names an architecture ember does not run.
    UnknownArchitecture {
        /// The name in the file.
        name: crate::gguf::ShortStr,
    },
    /// A metadata key the model needs is missing or has the wrong type.
    MissingKey {
        /// The key.
        key: crate::gguf::ShortStr,
    },
    /// A hyperparameter has a value the forward pass cannot use.
    BadHyperparameter {
        /// The key (or quantity) that is wrong.
        key: crate::gguf::ShortStr,
        /// Its value, where it is a number.
        value: Option<Number>,
        /// Why.
        reason: &'static str,
    },
    /// A tensor the architecture needs is not in the file.
    MissingTensor {
        /// Its name.
        name: crate::gguf::ShortStr,
    },
    /// A tensor has the wrong shape or type for its role.
    BadTensor {
        /// Its name.
        name: crate::gguf::ShortStr,
        /// What is wrong.
        reason: &'static str,
    },
    /// The memory plan's sizes overflow the address space.
    PlanTooLarge,
    /// The arena is smaller than the memory plan.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// Allocating the arena failed.
    OutOfMemory {
        /// Bytes asked for.
        bytes: usize,
    },
    /// An option has an unusable value.
    BadOption(&'static str),
    /// The model's logits for a position are unusable: one is NaN or
    /// +infinity (weights or activations that are not finite numbers), or
    /// none is above -infinity.
    BadLogits {
        /// The first NaN or +infinite logit's token id; `None` when every
        /// logit is -infinity.
        token: Option<u32>,
    },
    /// The tokens do not fit in the context.
    ContextFull {
        /// Context length of the session.
        ctx_len: usize,
        /// Positions that would be needed.
        needed: usize,
    },
}

/// A number as a file's metadata held it, for error messages: integers of
/// any GGUF width exactly, floats as `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (a `u64` past `i64::MAX` too).
    UInt(u64),
    /// A float.
    Float(f64),
}

impl From<usize> for Number {
    fn from(v: usize) -> Number {
        Number::UInt(v as u64)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(v) => write!(f, "{v}"),
            Number::UInt(v) => write!(f, "{v}"),
            Number::Float(v) => write!(f, "{v}"),
        }
    }
}

impl From<f32> for Number {
    fn from(v: f32) -> Number {
        Number::Float(v.into())
    }
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
            #[cfg(feature = "std")]
            Error::NotAFile { what } => write!(f, "is {what}, not a regular file: a model is a GGUF file"),
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
            Error::UnknownArchitecture { name } => {
                write!(f, "unsupported architecture `{name}`; ember runs: {}", crate::model::Arch::SUPPORTED_LIST)
            }
            Error::MissingKey { key } => write!(f, "metadata key `{key}` is missing or has the wrong type"),
            Error::BadHyperparameter { key, value: Some(v), reason } => {
                write!(f, "hyperparameter `{key}` = {v}: {reason}")
            }
            Error::BadHyperparameter { key, value: None, reason } => write!(f, "hyperparameter `{key}`: {reason}"),
            Error::MissingTensor { name } => write!(f, "tensor `{name}` is missing"),
            Error::BadTensor { name, reason } => write!(f, "tensor `{name}`: {reason}"),
            Error::PlanTooLarge => f.write_str("the memory plan does not fit in the address space"),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "the arena has {got} bytes but the memory plan needs {needed}")
            }
            Error::OutOfMemory { bytes } => write!(f, "could not allocate {bytes} bytes for the arena"),
            Error::BadOption(msg) => f.write_str(msg),
            Error::BadLogits { token: Some(t) } => write!(
                f,
                "the model's logit for token {t} is NaN or infinite: its weights or activations are not finite numbers"
            ),
            Error::BadLogits { token: None } => {
                f.write_str("every logit of the model is -infinity: no token can be chosen")
            }
            Error::ContextFull { ctx_len, needed } => {
                write!(f, "the context holds {ctx_len} tokens but {needed} are needed")
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
