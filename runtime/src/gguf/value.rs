//! Metadata values (`gguf_metadata_value_type` in the GGUF spec): scalars,
//! strings and (nested) arrays, all borrowed from the file bytes.

use super::cursor::{Cursor, Fail};
use super::error::GgufError;
use super::limits::{MAX_ARRAY_DEPTH, MAX_VALUE_STRING};
use core::fmt;

/// The type tag of a metadata value, by its GGUF id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    Str = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// The type with GGUF id `id`, or `None` outside 0..=12.
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => Str,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The GGUF id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Bytes per value for fixed-size types; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            Str | Array => None,
        }
    }

    /// The fewest bytes one value of this type takes in a file.
    pub(crate) fn min_size(self) -> usize {
        match self {
            ValueType::Str => 8,
            ValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }

    /// Short lowercase name (`"u32"`, `"string"`, `"array"`).
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            Str => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value, borrowed from the file.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(&'a str),
    Array(Array<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> Value<'a> {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::Str(_) => ValueType::Str,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any unsigned integer, or a signed one that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer that fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// An `f32`, or an `f64` rounded to `f32`.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// A bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A string.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::Str(v) => Some(v),
            _ => None,
        }
    }

    /// An array.
    pub fn as_array(&self) -> Option<Array<'a>> {
        match *self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Value<'_> {
    /// Scalars as numbers, strings quoted, arrays as `[type; len]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(v) => write!(f, "{v:?}"),
            Value::Array(a) => write!(f, "[{}; {}]", a.elem_type(), a.len()),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

/// An array value: element type, length and the raw little-endian bytes of
/// its elements (for nested arrays, each element's own header and bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Array<'a> {
    ty: ValueType,
    len: usize,
    bytes: &'a [u8],
}

impl<'a> Array<'a> {
    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        self.ty
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements' encoded bytes, exactly as stored in the file.
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every element as a [`Value`] (nested arrays as `Value::Array`).
    pub fn iter(&self) -> impl Iterator<Item = Value<'a>> + Clone + 'a {
        ArrayIter { c: Cursor::new(self.bytes, 0), ty: self.ty, left: self.len }
    }

    /// The elements as `&str`, if this is an array of strings.
    pub fn strings(&self) -> Option<impl Iterator<Item = &'a str> + Clone + 'a> {
        if self.ty != ValueType::Str {
            return None;
        }
        let mut c = Cursor::new(self.bytes, 0);
        let mut left = self.len;
        Some(core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            match c.string(MAX_VALUE_STRING, "string") {
                Ok(s) => Some(s),
                Err(_) => {
                    left = 0;
                    None
                }
            }
        }))
    }

    /// The elements as a borrowed `&[f32]`, if this is an f32 array whose bytes
    /// are 4-byte aligned in memory (and the host is little-endian).
    pub fn as_f32_slice(&self) -> Option<&'a [f32]> {
        if self.ty != ValueType::F32 || cfg!(target_endian = "big") {
            return None;
        }
        bytemuck::try_cast_slice(self.bytes).ok()
    }

    /// The elements as a borrowed `&[i32]`, under the same conditions as [`Array::as_f32_slice`].
    pub fn as_i32_slice(&self) -> Option<&'a [i32]> {
        if self.ty != ValueType::I32 || cfg!(target_endian = "big") {
            return None;
        }
        bytemuck::try_cast_slice(self.bytes).ok()
    }

    /// The elements of an f32 array, decoded one by one (works at any alignment).
    pub fn f32_iter(&self) -> Option<impl Iterator<Item = f32> + Clone + 'a> {
        (self.ty == ValueType::F32)
            .then(|| self.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    }

    /// The elements of an i32 array, decoded one by one (works at any alignment).
    pub fn i32_iter(&self) -> Option<impl Iterator<Item = i32> + Clone + 'a> {
        (self.ty == ValueType::I32)
            .then(|| self.bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    }

    /// The elements of any integer array as `i64` (values of a u64 array above
    /// `i64::MAX` end the iteration).
    pub fn int_iter(&self) -> Option<impl Iterator<Item = i64> + Clone + 'a> {
        match self.ty {
            ValueType::U8 | ValueType::I8 | ValueType::U16 | ValueType::I16 => {}
            ValueType::U32 | ValueType::I32 | ValueType::U64 | ValueType::I64 => {}
            _ => return None,
        }
        Some(self.iter().map_while(|v| v.as_i64()))
    }
}

#[derive(Clone)]
struct ArrayIter<'a> {
    c: Cursor<'a>,
    ty: ValueType,
    left: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Depth 1: this array's own nesting was bounded when it was read.
        match read_value(&mut self.c, self.ty, 1, false) {
            Ok(v) => Some(v),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Reads a value type id.
pub(crate) fn read_type(c: &mut Cursor<'_>) -> Result<ValueType, Fail> {
    let at = c.pos;
    let id = c.u32("value type")?;
    ValueType::from_id(id).ok_or(Fail { offset: at, kind: GgufError::UnknownValueType(id) })
}

/// Reads one value of type `ty`. `depth` counts enclosing arrays; `check`
/// also validates what skipping does not need to look at (UTF-8 of strings
/// inside arrays, bool bytes).
pub(crate) fn read_value<'a>(c: &mut Cursor<'a>, ty: ValueType, depth: u32, check: bool) -> Result<Value<'a>, Fail> {
    const W: &str = "value";
    Ok(match ty {
        ValueType::U8 => Value::U8(c.u8(W)?),
        ValueType::I8 => Value::I8(c.u8(W)? as i8),
        ValueType::U16 => Value::U16(c.u16(W)?),
        ValueType::I16 => Value::I16(c.u16(W)? as i16),
        ValueType::U32 => Value::U32(c.u32(W)?),
        ValueType::I32 => Value::I32(c.u32(W)? as i32),
        ValueType::F32 => Value::F32(f32::from_bits(c.u32(W)?)),
        ValueType::U64 => Value::U64(c.u64(W)?),
        ValueType::I64 => Value::I64(c.u64(W)? as i64),
        ValueType::F64 => Value::F64(f64::from_bits(c.u64(W)?)),
        ValueType::Bool => {
            let at = c.pos;
            match c.u8(W)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(Fail { offset: at, kind: GgufError::BadBool(b) }),
            }
        }
        ValueType::Str => Value::Str(c.string(MAX_VALUE_STRING, "string value")?),
        ValueType::Array => Value::Array(read_array(c, depth, check)?),
    })
}

/// Reads an array header and finds the extent of its elements.
pub(crate) fn read_array<'a>(c: &mut Cursor<'a>, depth: u32, check: bool) -> Result<Array<'a>, Fail> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(c.fail(GgufError::NestedTooDeep { max: MAX_ARRAY_DEPTH }));
    }
    let ty = read_type(c)?;
    let at = c.pos;
    let len = c.u64("array length")?;
    let max = (c.remaining() / ty.min_size()) as u64;
    if len > max {
        return Err(Fail { offset: at, kind: GgufError::ArrayTooLong { len, max } });
    }
    let len = len as usize; // <= remaining bytes, so it fits
    let start = c.pos;
    match ty.fixed_size() {
        Some(size) => {
            let bytes = c.take((len * size) as u64, "array elements")?; // len*size <= remaining
            if check && ty == ValueType::Bool {
                if let Some(i) = bytes.iter().position(|&b| b > 1) {
                    return Err(Fail { offset: start + i, kind: GgufError::BadBool(bytes[i]) });
                }
            }
        }
        None if ty == ValueType::Str => {
            for _ in 0..len {
                if check {
                    c.string(MAX_VALUE_STRING, "string in array")?;
                } else {
                    c.string_bytes(MAX_VALUE_STRING, "string in array")?;
                }
            }
        }
        None => {
            for _ in 0..len {
                read_array(c, depth + 1, check)?;
            }
        }
    }
    let bytes = c.bytes.get(start..c.pos).unwrap_or(&[]);
    Ok(Array { ty, len, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_conversions() {
        assert_eq!(Value::I32(-1).as_u64(), None);
        assert_eq!(Value::I32(7).as_u64(), Some(7));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::F64(0.5).as_f32(), Some(0.5));
        assert_eq!(Value::Str("x").as_u64(), None);
    }

    #[test]
    fn array_extent_and_iteration() {
        // [u16; 3] = 1, 2, 3 followed by a trailing byte that is not part of it.
        let b: [u8; 19] = [2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 0xee];
        let mut c = Cursor::new(&b, 0);
        let a = read_array(&mut c, 0, true).unwrap();
        assert_eq!(c.pos, b.len() - 1);
        assert_eq!(a.len(), 3);
        let vals: [Value; 3] = [Value::U16(1), Value::U16(2), Value::U16(3)];
        assert!(a.iter().eq(vals.iter().copied()));
        // A length the rest of the bytes cannot hold.
        let b: [u8; 14] = [2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let e = read_array(&mut Cursor::new(&b, 0), 0, true).unwrap_err();
        assert_eq!(e.kind, GgufError::ArrayTooLong { len: 9, max: 1 });
    }
}
