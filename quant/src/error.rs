use crate::GgmlType;
use core::fmt;

/// Everything that can go wrong in `ember-quant`: always a caller's mistake in
/// sizes or types, never a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// ember has no kernel (or no dequantizer) for this type.
    Unsupported(GgmlType),
    /// `n` values are not a whole number of blocks of this type.
    NotBlockMultiple {
        /// The type.
        ty: GgmlType,
        /// The number of values asked for.
        n: usize,
    },
    /// A buffer does not have the length the operation needs.
    Length {
        /// Which buffer.
        what: &'static str,
        /// Bytes (or values, for f32 buffers) expected.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A buffer is not aligned for the block type it holds.
    Misaligned {
        /// Which buffer.
        what: &'static str,
        /// The alignment needed.
        align: usize,
    },
    /// `EMBER_KERNELS` names a tier this CPU does not have, or no tier at all.
    Tier(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(t) => {
                write!(f, "tensor type {t} is not supported by ember's kernels")
            }
            Error::NotBlockMultiple { ty, n } => {
                write!(f, "{n} values is not a whole number of {ty} blocks of {}", ty.block_size())
            }
            Error::Length { what, expected, got } => {
                write!(f, "{what} has length {got}, expected {expected}")
            }
            Error::Misaligned { what, align } => {
                write!(f, "{what} is not aligned to {align} bytes")
            }
            Error::Tier(msg) => f.write_str(msg),
        }
    }
}

impl core::error::Error for Error {}
