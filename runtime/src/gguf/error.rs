//! What can be wrong with a GGUF file, as data: a [`GgufError`] names the
//! problem, a [`Location`] names the part of the file (header, a metadata
//! entry, a tensor) and `crate::Error::Gguf` adds the byte offset.

use super::short_str::ShortStr;
use super::value::ValueType;
use core::fmt;
use ember_quant::GgmlType;

/// The part of the file an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// The fixed header (magic, version, counts) or the file as a whole.
    Header,
    /// Metadata entry number `index` (0-based, file order); `key` is empty
    /// while the key itself is being read.
    Kv {
        /// Entry index in file order.
        index: u64,
        /// The key, if already read.
        key: ShortStr,
    },
    /// Tensor info number `index` (0-based, file order); `name` is empty
    /// while the name itself is being read.
    Tensor {
        /// Tensor index in file order.
        index: u64,
        /// The tensor's name, if already read.
        name: ShortStr,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Header => f.write_str("header"),
            Location::Kv { index, key } if key.is_empty() => write!(f, "metadata entry #{index}"),
            Location::Kv { key, .. } => write!(f, "metadata key '{key}'"),
            Location::Tensor { index, name } if name.is_empty() => write!(f, "tensor #{index}"),
            Location::Tensor { name, .. } => write!(f, "tensor '{name}'"),
        }
    }
}

/// Which problem a GGUF file has. Printed as a sentence by `crate::Error`'s
/// `Display`, together with its [`Location`] and byte offset.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum GgufError {
    /// The file ends before a field: `needed` bytes were wanted, `available` remain.
    Truncated {
        /// What was being read (`"magic"`, `"string length"`, `"tensor data"`...).
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// The first four bytes are not `GGUF`.
    BadMagic([u8; 4]),
    /// A GGUF version other than 2 and 3.
    UnsupportedVersion(u32),
    /// The version field reads as 2 or 3 only when byte-swapped: a big-endian file.
    BigEndian(u32),
    /// A string (key, name or value) longer than the reader's limit.
    StringTooLong {
        /// Length as stored.
        len: u64,
        /// The limit for this kind of string.
        max: u64,
    },
    /// A string that is not UTF-8.
    BadUtf8,
    /// A metadata value type id outside 0..=12.
    UnknownValueType(u32),
    /// An array whose length cannot fit in the rest of the file.
    ArrayTooLong {
        /// Length as stored.
        len: u64,
        /// The most elements the remaining bytes could hold.
        max: u64,
    },
    /// Arrays nested deeper than the reader's limit.
    NestedTooDeep {
        /// The limit.
        max: u32,
    },
    /// A bool value that is neither 0 nor 1.
    BadBool(u8),
    /// More metadata entries than the limit (or than the file could hold).
    TooManyKvs {
        /// Count as stored.
        count: u64,
        /// The most allowed: ember's limit, or what the rest of the file could hold.
        max: u64,
        /// True if `max` is what the rest of the file could hold (a truncated
        /// or corrupt file), false if it is ember's limit.
        by_file_size: bool,
    },
    /// More tensors than the limit (or than the file could hold).
    TooManyTensors {
        /// Count as stored.
        count: u64,
        /// The most allowed: ember's limit, or what the rest of the file could hold.
        max: u64,
        /// True if `max` is what the rest of the file could hold (a truncated
        /// or corrupt file), false if it is ember's limit.
        by_file_size: bool,
    },
    /// A metadata key that appears twice (`first` is the earlier entry's index).
    DuplicateKey {
        /// Index of the first entry with this key.
        first: u64,
    },
    /// A tensor name that appears twice (`first` is the earlier tensor's index).
    DuplicateTensor {
        /// Index of the first tensor with this name.
        first: u64,
    },
    /// `general.alignment` is zero or not a power of two.
    BadAlignment(u64),
    /// `general.alignment` has a type other than an unsigned integer.
    AlignmentType(ValueType),
    /// A tensor type id that ggml does not define.
    UnknownTensorType(u32),
    /// A tensor with a number of dimensions outside 1..=4.
    BadDimCount(u32),
    /// A tensor whose element count or byte size overflows 63 bits (or the address space).
    ShapeOverflow,
    /// A tensor whose row length is not a whole number of blocks of its type.
    NotBlockMultiple {
        /// The tensor type.
        ty: GgmlType,
        /// `dims[0]`.
        row_len: u64,
    },
    /// A tensor's data reaches past the end of the file.
    DataOutOfRange {
        /// Absolute start of the data.
        start: u64,
        /// Absolute end (exclusive) of the data.
        end: u64,
        /// File size.
        file_len: u64,
    },
    /// A tensor offset that is not a multiple of the file's alignment.
    Misaligned {
        /// Offset relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// (Writer) tensor data whose length does not match its type and shape.
    DataSizeMismatch {
        /// Bytes the type and shape need.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// (Writer) an array element whose type differs from the array's element type.
    ArrayElemMismatch {
        /// The array's element type.
        expected: ValueType,
        /// The element's type.
        got: ValueType,
    },
    /// Two tensors' data ranges overlap.
    Overlap {
        /// Index of the other tensor.
        other: u64,
        /// Name of the other tensor.
        other_name: ShortStr,
    },
}

/// Writes the sentence for `kind` at `at`.
pub(crate) fn describe(f: &mut fmt::Formatter<'_>, offset: u64, at: &Location, kind: &GgufError) -> fmt::Result {
    use GgufError::*;
    let index_note = |f: &mut fmt::Formatter<'_>| match at {
        Location::Tensor { index, .. } => write!(f, " (tensor info #{index}, byte {offset})"),
        Location::Kv { index, .. } => write!(f, " (metadata entry #{index}, byte {offset})"),
        Location::Header => write!(f, " (byte {offset})"),
    };
    f.write_str("invalid GGUF: ")?;
    match kind {
        Truncated { what, needed, available } => {
            write!(f, "file truncated: {at}: {what} needs {needed} bytes but only {available} remain")?
        }
        BadMagic(m) => write!(f, "bad magic {m:02x?}: not a GGUF file (expected \"GGUF\")")?,
        UnsupportedVersion(v) => write!(f, "unsupported GGUF version {v} (ember reads versions 2 and 3)")?,
        BigEndian(v) => {
            write!(f, "big-endian GGUF (version {v} byte-swapped) is not supported; ember reads little-endian files")?
        }
        StringTooLong { len, max } => write!(f, "{at}: string length {len} exceeds the limit of {max} bytes")?,
        BadUtf8 => write!(f, "{at}: string is not valid UTF-8")?,
        UnknownValueType(t) => write!(f, "{at} has unknown value type id {t}")?,
        ArrayTooLong { len, max } => {
            write!(f, "{at}: array length {len} is more than the rest of the file can hold ({max} elements): truncated or corrupt file")?
        }
        NestedTooDeep { max } => write!(f, "{at}: arrays nested deeper than {max} levels")?,
        BadBool(b) => write!(f, "{at}: bool value {b} is neither 0 nor 1")?,
        TooManyKvs { count, max, by_file_size } => too_many(f, "metadata entry", *count, *max, *by_file_size)?,
        TooManyTensors { count, max, by_file_size } => too_many(f, "tensor", *count, *max, *by_file_size)?,
        DuplicateKey { first } => write!(f, "duplicate {at} (first seen as metadata entry #{first})")?,
        DuplicateTensor { first } => write!(f, "duplicate {at} (first seen as tensor info #{first})")?,
        BadAlignment(a) => write!(f, "general.alignment {a} is not a non-zero power of two")?,
        AlignmentType(t) => write!(f, "general.alignment has type {t}, expected an unsigned integer (u32)")?,
        UnknownTensorType(id) => write!(f, "{at} has unknown type id {id}")?,
        BadDimCount(n) => write!(f, "{at} has {n} dimensions (ember reads 1 to 4)")?,
        ShapeOverflow => write!(f, "{at}: shape overflows (element count or byte size too large)")?,
        NotBlockMultiple { ty, row_len } => write!(
            f,
            "{at}: shape/size mismatch: row length {row_len} is not a multiple of the {ty} block size {}",
            ty.block_size()
        )?,
        DataOutOfRange { start, end, file_len } => {
            write!(f, "{at}: data bytes {start}..{end} lie past the end of the file ({file_len} bytes)")?
        }
        Misaligned { offset, alignment } => {
            write!(f, "{at}: data offset {offset} is misaligned (not a multiple of the alignment {alignment})")?
        }
        DataSizeMismatch { expected, got } => {
            write!(f, "{at}: shape/size mismatch: data has {got} bytes, type and shape need {expected}")?
        }
        ArrayElemMismatch { expected, got } => write!(f, "{at}: array of {expected} has an element of type {got}")?,
        Overlap { other, other_name } => {
            if other_name.is_empty() {
                write!(f, "{at}: data overlaps the data of tensor #{other}")?
            } else {
                write!(f, "{at}: data overlaps the data of tensor '{other_name}' (#{other})")?
            }
        }
    }
    index_note(f)
}

fn too_many(f: &mut fmt::Formatter<'_>, what: &str, count: u64, max: u64, by_file_size: bool) -> fmt::Result {
    if by_file_size {
        write!(f, "{what} count {count} is too large: the rest of the file has room for at most {max} (truncated or corrupt file)")
    } else {
        write!(f, "{what} count {count} is too large: ember's limit is {max}")
    }
}
