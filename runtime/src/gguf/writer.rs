//! [`Writer`]: builds GGUF v3 files (feature `alloc`), laid out as llama.cpp
//! and the `gguf` Python package write them: header, metadata, tensor infos,
//! padding to the alignment, then each tensor's data padded to the alignment.
//!
//! Tensor data is either handed over with the tensor ([`Writer::add_tensor`])
//! or streamed by the caller after the header ([`Writer::add_tensor_info`] +
//! [`Writer::write_header_to`]), so a large file need not be held in memory.

use super::error::{GgufError, Location};
use super::file::ALIGNMENT_KEY;
use super::limits::{DEFAULT_ALIGNMENT, MAX_DIMS, MAX_KEY, MAX_NAME, MAX_VALUE_STRING};
use super::short_str::ShortStr;
use super::value::{Value, ValueType};
use super::MAGIC;
use crate::Error;
use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use ember_quant::GgmlType;

/// An owned metadata value, for building values (nested arrays included)
/// that do not come from an existing file.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    /// Element type and elements (each must have that type).
    Array(ValueType, Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetaValue::U8(_) => ValueType::U8,
            MetaValue::I8(_) => ValueType::I8,
            MetaValue::U16(_) => ValueType::U16,
            MetaValue::I16(_) => ValueType::I16,
            MetaValue::U32(_) => ValueType::U32,
            MetaValue::I32(_) => ValueType::I32,
            MetaValue::F32(_) => ValueType::F32,
            MetaValue::Bool(_) => ValueType::Bool,
            MetaValue::Str(_) => ValueType::Str,
            MetaValue::Array(..) => ValueType::Array,
            MetaValue::U64(_) => ValueType::U64,
            MetaValue::I64(_) => ValueType::I64,
            MetaValue::F64(_) => ValueType::F64,
        }
    }
}

/// Counts the bytes passed to a `put` callback.
struct Sink<'p, P> {
    put: &'p mut P,
    pos: u64,
}

impl<P> Sink<'_, P> {
    fn write<E>(&mut self, b: &[u8]) -> Result<(), E>
    where
        P: FnMut(&[u8]) -> Result<(), E>,
    {
        self.pos += b.len() as u64;
        (self.put)(b)
    }

    fn zeros<E>(&mut self, n: u64) -> Result<(), E>
    where
        P: FnMut(&[u8]) -> Result<(), E>,
    {
        const ZEROS: [u8; 64] = [0; 64];
        let mut left = n;
        while left > 0 {
            let k = left.min(ZEROS.len() as u64);
            self.write(&ZEROS[..k as usize])?;
            left -= k;
        }
        Ok(())
    }
}

struct PendingTensor<'d> {
    name: String,
    ty: GgmlType,
    dims: [u64; MAX_DIMS],
    n_dims: usize,
    data: Cow<'d, [u8]>,
    /// Declared with [`Writer::add_tensor_info`]: `data` is empty and the
    /// caller streams these many bytes after [`Writer::write_header_to`].
    streamed: Option<u64>,
}

impl PendingTensor<'_> {
    fn nbytes(&self) -> u64 {
        self.streamed.unwrap_or(self.data.len() as u64)
    }
}

/// Builds a GGUF v3 file. Metadata entries and tensors are written in the
/// order they are added. Data may be borrowed (`'d`) to avoid copies.
///
/// ```
/// use ember::gguf::{File, Writer};
/// use ember::quant::GgmlType;
/// let mut w = Writer::new();
/// w.add_str("general.architecture", "llama")?.add_u32("llama.block_count", 2)?;
/// let data = [0u8; 4 * 8];
/// w.add_tensor("t", GgmlType::F32, &[4, 2], &data[..])?;
/// let bytes = w.to_bytes();
/// let f = File::parse(&bytes)?;
/// assert_eq!(f.get_str("general.architecture"), Some("llama"));
/// assert_eq!(f.tensor("t").unwrap().shape(), &[4, 2]);
/// # Ok::<(), ember::Error>(())
/// ```
pub struct Writer<'d> {
    alignment: usize,
    kv: Vec<u8>,
    keys: BTreeMap<String, u64>,
    tensors: Vec<PendingTensor<'d>>,
    names: BTreeMap<String, u64>,
}

impl core::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer")
            .field("alignment", &self.alignment)
            .field("metadata", &self.keys.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Default for Writer<'_> {
    fn default() -> Self {
        Self::new()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn kv_err(index: u64, key: &str, kind: GgufError) -> Error {
    Error::Gguf { offset: 0, at: Location::Kv { index, key: ShortStr::new(key) }, kind }
}

fn encode_meta(out: &mut Vec<u8>, v: &MetaValue) -> Result<(), GgufError> {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(*x as u8),
        MetaValue::Str(s) => {
            if s.len() as u64 > MAX_VALUE_STRING {
                return Err(GgufError::StringTooLong { len: s.len() as u64, max: MAX_VALUE_STRING });
            }
            put_str(out, s)
        }
        MetaValue::Array(ty, items) => {
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                if item.value_type() != *ty {
                    return Err(GgufError::ArrayElemMismatch { expected: *ty, got: item.value_type() });
                }
                encode_meta(out, item)?;
            }
        }
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
    Ok(())
}

fn encode_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::Str(s) => put_str(out, s),
        Value::Array(a) => {
            // The elements' bytes are already in GGUF encoding: copy them whole.
            out.extend_from_slice(&a.elem_type().id().to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            out.extend_from_slice(a.raw_bytes());
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

impl<'d> Writer<'d> {
    /// An empty file (alignment 32, no metadata, no tensors).
    pub fn new() -> Self {
        Writer {
            alignment: DEFAULT_ALIGNMENT,
            kv: Vec::new(),
            keys: BTreeMap::new(),
            tensors: Vec::new(),
            names: BTreeMap::new(),
        }
    }

    /// Number of metadata entries added.
    pub fn metadata_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of tensors added.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// The alignment the data section will use.
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Sets the data alignment by adding `general.alignment` (u32).
    pub fn set_alignment(&mut self, alignment: u32) -> Result<&mut Self, Error> {
        self.add_value(ALIGNMENT_KEY, Value::U32(alignment))
    }

    fn begin_kv(&mut self, key: &str, ty: ValueType) -> Result<u64, Error> {
        let index = self.keys.len() as u64;
        if key.len() as u64 > MAX_KEY {
            return Err(kv_err(index, key, GgufError::StringTooLong { len: key.len() as u64, max: MAX_KEY }));
        }
        if let Some(&first) = self.keys.get(key) {
            return Err(kv_err(index, key, GgufError::DuplicateKey { first }));
        }
        put_str(&mut self.kv, key);
        self.kv.extend_from_slice(&ty.id().to_le_bytes());
        self.keys.insert(key.into(), index);
        Ok(index)
    }

    fn check_alignment_entry(&self, key: &str, v: &Value<'_>) -> Result<Option<usize>, Error> {
        if key != ALIGNMENT_KEY {
            return Ok(None);
        }
        let index = self.keys.len() as u64;
        let a = match v {
            Value::U8(_) | Value::U16(_) | Value::U32(_) | Value::U64(_) => v.as_u64().unwrap_or(0),
            _ => return Err(kv_err(index, key, GgufError::AlignmentType(v.value_type()))),
        };
        if a == 0 || !a.is_power_of_two() || a > u32::MAX as u64 {
            return Err(kv_err(index, key, GgufError::BadAlignment(a)));
        }
        Ok(Some(a as usize))
    }

    /// Adds a metadata entry from a borrowed [`Value`] (arrays, from another
    /// file for instance, are copied as they are encoded).
    pub fn add_value(&mut self, key: &str, value: Value<'_>) -> Result<&mut Self, Error> {
        let align = self.check_alignment_entry(key, &value)?;
        if let Value::Str(s) = value {
            if s.len() as u64 > MAX_VALUE_STRING {
                let kind = GgufError::StringTooLong { len: s.len() as u64, max: MAX_VALUE_STRING };
                return Err(kv_err(self.keys.len() as u64, key, kind));
            }
        }
        self.begin_kv(key, value.value_type())?;
        encode_value(&mut self.kv, &value);
        if let Some(a) = align {
            self.alignment = a;
        }
        Ok(self)
    }

    /// Adds a metadata entry from an owned [`MetaValue`] (for nested arrays).
    pub fn add_meta(&mut self, key: &str, value: &MetaValue) -> Result<&mut Self, Error> {
        let mut enc = Vec::new();
        let index = self.keys.len() as u64;
        encode_meta(&mut enc, value).map_err(|kind| kv_err(index, key, kind))?;
        let scalar = match value {
            MetaValue::U8(x) => Some(Value::U8(*x)),
            MetaValue::U16(x) => Some(Value::U16(*x)),
            MetaValue::U32(x) => Some(Value::U32(*x)),
            MetaValue::U64(x) => Some(Value::U64(*x)),
            _ => None,
        };
        let align = match scalar {
            Some(v) => self.check_alignment_entry(key, &v)?,
            None if key == ALIGNMENT_KEY => {
                return Err(kv_err(index, key, GgufError::AlignmentType(value.value_type())));
            }
            None => None,
        };
        self.begin_kv(key, value.value_type())?;
        self.kv.extend_from_slice(&enc);
        if let Some(a) = align {
            self.alignment = a;
        }
        Ok(self)
    }

    /// Adds a string entry.
    pub fn add_str(&mut self, key: &str, v: &str) -> Result<&mut Self, Error> {
        self.add_value(key, Value::Str(v))
    }
    /// Adds a u32 entry.
    pub fn add_u32(&mut self, key: &str, v: u32) -> Result<&mut Self, Error> {
        self.add_value(key, Value::U32(v))
    }
    /// Adds an i32 entry.
    pub fn add_i32(&mut self, key: &str, v: i32) -> Result<&mut Self, Error> {
        self.add_value(key, Value::I32(v))
    }
    /// Adds a u64 entry.
    pub fn add_u64(&mut self, key: &str, v: u64) -> Result<&mut Self, Error> {
        self.add_value(key, Value::U64(v))
    }
    /// Adds an f32 entry.
    pub fn add_f32(&mut self, key: &str, v: f32) -> Result<&mut Self, Error> {
        self.add_value(key, Value::F32(v))
    }
    /// Adds a bool entry.
    pub fn add_bool(&mut self, key: &str, v: bool) -> Result<&mut Self, Error> {
        self.add_value(key, Value::Bool(v))
    }

    fn add_fixed_array(
        &mut self,
        key: &str,
        ty: ValueType,
        len: usize,
        bytes: impl Iterator<Item = [u8; 4]>,
    ) -> Result<&mut Self, Error> {
        self.begin_kv(key, ValueType::Array)?;
        self.kv.extend_from_slice(&ty.id().to_le_bytes());
        self.kv.extend_from_slice(&(len as u64).to_le_bytes());
        for b in bytes {
            self.kv.extend_from_slice(&b);
        }
        Ok(self)
    }

    /// Adds an array of f32 (e.g. `tokenizer.ggml.scores`).
    pub fn add_f32_array(&mut self, key: &str, v: &[f32]) -> Result<&mut Self, Error> {
        self.add_fixed_array(key, ValueType::F32, v.len(), v.iter().map(|x| x.to_le_bytes()))
    }

    /// Adds an array of i32 (e.g. `tokenizer.ggml.token_type`).
    pub fn add_i32_array(&mut self, key: &str, v: &[i32]) -> Result<&mut Self, Error> {
        self.add_fixed_array(key, ValueType::I32, v.len(), v.iter().map(|x| x.to_le_bytes()))
    }

    /// Adds an array of strings (e.g. `tokenizer.ggml.tokens`).
    pub fn add_str_array<S: AsRef<str>>(
        &mut self,
        key: &str,
        v: impl IntoIterator<Item = S>,
    ) -> Result<&mut Self, Error> {
        let index = self.keys.len() as u64;
        let mut enc = Vec::new();
        let mut n = 0u64;
        for s in v {
            let s = s.as_ref();
            if s.len() as u64 > MAX_VALUE_STRING {
                return Err(kv_err(
                    index,
                    key,
                    GgufError::StringTooLong { len: s.len() as u64, max: MAX_VALUE_STRING },
                ));
            }
            put_str(&mut enc, s);
            n += 1;
        }
        self.begin_kv(key, ValueType::Array)?;
        self.kv.extend_from_slice(&ValueType::Str.id().to_le_bytes());
        self.kv.extend_from_slice(&n.to_le_bytes());
        self.kv.extend_from_slice(&enc);
        Ok(self)
    }

    /// Adds a tensor. `dims` are in ggml order (`dims[0]` is the row length);
    /// `data` must have exactly the bytes the type and shape need.
    pub fn add_tensor(
        &mut self,
        name: &str,
        ty: GgmlType,
        dims: &[u64],
        data: impl Into<Cow<'d, [u8]>>,
    ) -> Result<&mut Self, Error> {
        let (d, nbytes) = self.check_tensor(name, ty, dims)?;
        let data = data.into();
        if data.len() as u64 != nbytes {
            let at = Location::Tensor { index: self.tensors.len() as u64, name: ShortStr::new(name) };
            return Err(Error::Gguf {
                offset: 0,
                at,
                kind: GgufError::DataSizeMismatch { expected: nbytes, got: data.len() as u64 },
            });
        }
        self.names.insert(name.into(), self.tensors.len() as u64);
        self.tensors.push(PendingTensor { name: name.into(), ty, dims: d, n_dims: dims.len(), data, streamed: None });
        Ok(self)
    }

    /// Declares a tensor whose data the caller writes itself: after
    /// [`Writer::write_header_to`], each tensor's bytes in the order added
    /// (exactly the bytes the type and shape need), each followed by
    /// [`Writer::padding`] zero bytes. [`Writer::to_bytes`] and
    /// [`Writer::write_to`] write zeros in place of such a tensor's data.
    pub fn add_tensor_info(&mut self, name: &str, ty: GgmlType, dims: &[u64]) -> Result<&mut Self, Error> {
        let (d, nbytes) = self.check_tensor(name, ty, dims)?;
        self.names.insert(name.into(), self.tensors.len() as u64);
        self.tensors.push(PendingTensor {
            name: name.into(),
            ty,
            dims: d,
            n_dims: dims.len(),
            data: Cow::Borrowed(&[]),
            streamed: Some(nbytes),
        });
        Ok(self)
    }

    /// Zero bytes that follow `nbytes` of tensor data to reach the alignment.
    pub fn padding(&self, nbytes: u64) -> u64 {
        nbytes.next_multiple_of(self.alignment as u64) - nbytes
    }

    /// Checks a new tensor's name and shape; returns its dims padded with 1s
    /// and its data size in bytes.
    fn check_tensor(&self, name: &str, ty: GgmlType, dims: &[u64]) -> Result<([u64; MAX_DIMS], u64), Error> {
        let index = self.tensors.len() as u64;
        let at = Location::Tensor { index, name: ShortStr::new(name) };
        let e = |kind| Error::Gguf { offset: 0, at, kind };
        if name.len() as u64 > MAX_NAME {
            return Err(e(GgufError::StringTooLong { len: name.len() as u64, max: MAX_NAME }));
        }
        if let Some(&first) = self.names.get(name) {
            return Err(e(GgufError::DuplicateTensor { first }));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(e(GgufError::BadDimCount(dims.len() as u32)));
        }
        let mut d = [1u64; MAX_DIMS];
        d[..dims.len()].copy_from_slice(dims);
        if d[0] % ty.block_size() as u64 != 0 {
            return Err(e(GgufError::NotBlockMultiple { ty, row_len: d[0] }));
        }
        let nbytes = d[1..]
            .iter()
            .try_fold((d[0] / ty.block_size() as u64).checked_mul(ty.type_size() as u64), |acc, &x| {
                acc.map(|a| a.checked_mul(x))
            })
            .flatten()
            .filter(|&b| b <= i64::MAX as u64);
        let Some(nbytes) = nbytes else {
            return Err(e(GgufError::ShapeOverflow));
        };
        Ok((d, nbytes))
    }

    /// Writes the file through `put`, which receives consecutive pieces; with
    /// `header_only`, stops where the data section starts. Returns the number
    /// of bytes written.
    fn emit<E>(&self, header_only: bool, put: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        let mut out = Sink { put, pos: 0 };
        let mut head = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        out.write(&head)?;
        out.write(&self.kv)?;
        let mut info = Vec::new();
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut info, &t.name);
            info.extend_from_slice(&(t.n_dims as u32).to_le_bytes());
            for d in &t.dims[..t.n_dims] {
                info.extend_from_slice(&d.to_le_bytes());
            }
            info.extend_from_slice(&t.ty.id().to_le_bytes());
            info.extend_from_slice(&offset.to_le_bytes());
            let n = t.nbytes();
            offset += n + self.padding(n);
        }
        out.write(&info)?;
        out.zeros(self.padding(out.pos))?;
        if header_only {
            return Ok(out.pos);
        }
        for t in &self.tensors {
            match t.streamed {
                Some(n) => out.zeros(n)?,
                None => out.write(&t.data)?,
            }
            out.zeros(self.padding(t.nbytes()))?;
        }
        Ok(out.pos)
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.emit::<core::convert::Infallible>(false, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        });
        out
    }

    /// Writes the file to `w` (buffer it: pieces are small). Returns the bytes written.
    #[cfg(feature = "std")]
    pub fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<u64> {
        self.emit(false, &mut |b| w.write_all(b))
    }

    /// Writes everything before the data section (header, metadata, tensor
    /// infos, padding) to `w`; the caller then streams the tensor data as
    /// [`Writer::add_tensor_info`] describes. Returns the bytes written.
    #[cfg(feature = "std")]
    pub fn write_header_to(&self, w: &mut impl std::io::Write) -> std::io::Result<u64> {
        self.emit(true, &mut |b| w.write_all(b))
    }
}
