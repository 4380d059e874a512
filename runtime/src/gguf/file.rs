//! [`File`]: a validated, zero-copy view of a GGUF file.
//!
//! The format (ggml `docs/gguf.md`, versions 2 and 3, little-endian):
//! magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count;
//! the metadata entries (key string, `u32` value type, value); the tensor
//! infos (name string, `u32` n_dims, `u64` dims, `u32` ggml type, `u64`
//! offset relative to the data section); padding to `general.alignment`
//! (default 32); the tensor data.
//!
//! [`File::parse`] walks all of it once and checks every bound; what it
//! keeps is a [`Layout`] of plain numbers, so a caller holding the bytes
//! elsewhere (an mmap, flash) can re-view them with [`File::with_layout`]
//! for free. Accessors then walk the bytes again through the same checked
//! cursor: they cannot read out of bounds even on bytes that were never
//! validated, they just stop early.

use super::cursor::{Cursor, Fail};
use super::error::{GgufError, Location};
use super::limits::*;
use super::short_str::ShortStr;
use super::value::{read_type, read_value, Array, Value};
use crate::Error;
use ember_quant::GgmlType;

/// The key that sets the alignment of tensor data.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Where the sections of a parsed GGUF file are: plain numbers, `'static`,
/// kept by owners of the bytes (see [`crate::Model`]) to re-view them cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Number of metadata entries.
    pub n_kv: usize,
    /// Byte offset of the first metadata entry (24).
    pub kv_offset: usize,
    /// Number of tensors.
    pub n_tensors: usize,
    /// Byte offset of the first tensor info.
    pub tensor_info_offset: usize,
    /// Alignment of tensor data (`general.alignment`, default 32).
    pub alignment: usize,
    /// Byte offset of the data section (end of the tensor infos rounded up to
    /// `alignment`). For a file without tensors it may equal or exceed the file size.
    pub data_offset: usize,
}

/// One tensor's description and its bytes, borrowed from the file.
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo<'a> {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: &'a str,
    /// Data type.
    pub ty: GgmlType,
    /// Dimensions in ggml order: `dims[0]` (`ne0`) is the row length, the
    /// contiguous one. Entries past `n_dims` are 1.
    pub dims: [u64; 4],
    /// Number of dimensions (1..=4).
    pub n_dims: usize,
    /// Offset of the data relative to the data section, as stored.
    pub offset: u64,
    /// The tensor's bytes (validated to lie inside the file).
    pub data: &'a [u8],
}

impl TensorInfo<'_> {
    /// The dimensions that are present, in ggml order.
    pub fn shape(&self) -> &[u64] {
        &self.dims[..self.n_dims.min(MAX_DIMS)]
    }

    /// Number of values.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Number of rows: the product of `dims[1..]`.
    pub fn n_rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }

    /// Values per row: `dims[0]`.
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }

    /// Bytes per row (`ty.row_bytes(row_len)`).
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.dims[0] as usize).unwrap_or(0)
    }
}

/// A GGUF file: the bytes and their [`Layout`]. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct File<'a> {
    bytes: &'a [u8],
    layout: Layout,
}

fn gguf_err(at: Location, f: Fail) -> Error {
    Error::Gguf { offset: f.offset as u64, at, kind: f.kind }
}

fn header_err(offset: usize, kind: GgufError) -> Error {
    gguf_err(Location::Header, Fail { offset, kind })
}

/// A tensor info as read, before its data range is known.
struct RawInfo<'a> {
    name: &'a str,
    ty: GgmlType,
    dims: [u64; 4],
    n_dims: usize,
    offset: u64,
    nbytes: u64,
    /// Where this tensor info starts in the file.
    pos: usize,
}

/// Reads and checks one tensor info (everything except its data range).
fn read_tensor_info<'a>(c: &mut Cursor<'a>, index: u64, alignment: usize) -> Result<RawInfo<'a>, Error> {
    let pos = c.pos;
    let mut at = Location::Tensor { index, name: ShortStr::EMPTY };
    let name = c.string(MAX_NAME, "tensor name").map_err(|f| gguf_err(at, f))?;
    at = Location::Tensor { index, name: ShortStr::new(name) };
    let e = |offset: usize, kind: GgufError| gguf_err(at, Fail { offset, kind });

    let n_dims_pos = c.pos;
    let n_dims = c.u32("tensor n_dims").map_err(|f| gguf_err(at, f))?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return Err(e(n_dims_pos, GgufError::BadDimCount(n_dims)));
    }
    let n_dims = n_dims as usize;
    let mut dims = [1u64; 4];
    let dims_pos = c.pos;
    for d in dims.iter_mut().take(n_dims) {
        *d = c.u64("tensor dimension").map_err(|f| gguf_err(at, f))?;
    }
    let type_pos = c.pos;
    let type_id = c.u32("tensor type").map_err(|f| gguf_err(at, f))?;
    let offset_pos = c.pos;
    let offset = c.u64("tensor offset").map_err(|f| gguf_err(at, f))?;
    let ty = GgmlType::from_id(type_id).ok_or(e(type_pos, GgufError::UnknownTensorType(type_id)))?;

    // ggml counts elements in i64: every dim and the product must fit.
    let max = i64::MAX as u64;
    let n_elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&p| p <= max && d <= max));
    if n_elements.is_none() {
        return Err(e(dims_pos, GgufError::ShapeOverflow));
    }
    let (bs, ts) = (ty.block_size() as u64, ty.type_size() as u64);
    if dims[0] % bs != 0 {
        return Err(e(dims_pos, GgufError::NotBlockMultiple { ty, row_len: dims[0] }));
    }
    let n_rows = dims[1] * dims[2] * dims[3]; // divides n_elements, so no overflow
    let nbytes = (dims[0] / bs).checked_mul(ts).and_then(|row| row.checked_mul(n_rows)).filter(|&b| b <= max);
    let Some(nbytes) = nbytes else {
        return Err(e(dims_pos, GgufError::ShapeOverflow));
    };
    if offset % alignment as u64 != 0 {
        return Err(e(offset_pos, GgufError::Misaligned { offset, alignment: alignment as u64 }));
    }
    Ok(RawInfo { name, ty, dims, n_dims, offset, nbytes, pos })
}

/// The absolute data range of a tensor, checked to lie in a file of `file_len` bytes.
fn data_range(info: &RawInfo<'_>, data_offset: usize, file_len: usize) -> Result<(usize, usize), GgufError> {
    let start = (data_offset as u64).checked_add(info.offset);
    let end = start.and_then(|s| s.checked_add(info.nbytes));
    match (start, end) {
        (Some(s), Some(e)) if e <= file_len as u64 => Ok((s as usize, e as usize)),
        _ => Err(GgufError::DataOutOfRange {
            start: start.unwrap_or(u64::MAX),
            end: end.unwrap_or(u64::MAX),
            file_len: file_len as u64,
        }),
    }
}

fn check_alignment(v: &Value<'_>) -> Result<usize, GgufError> {
    let a = match *v {
        Value::U8(_) | Value::U16(_) | Value::U32(_) | Value::U64(_) => v.as_u64().unwrap_or(0),
        _ => return Err(GgufError::AlignmentType(v.value_type())),
    };
    if a == 0 || !a.is_power_of_two() || a > (usize::MAX / 2) as u64 {
        return Err(GgufError::BadAlignment(a));
    }
    Ok(a as usize)
}

impl<'a> File<'a> {
    /// Parses and validates a whole GGUF file: header, every metadata entry
    /// (types, string lengths and UTF-8, nested arrays), every tensor info
    /// (type id, 1..=4 dims, shape × type size, alignment of the offset), the
    /// data range of every tensor (inside the file, no two overlapping), and
    /// that keys and tensor names are unique. Nothing is copied.
    pub fn parse(bytes: &'a [u8]) -> Result<File<'a>, Error> {
        let mut c = Cursor::new(bytes, 0);
        let h = |f: Fail| gguf_err(Location::Header, f);

        let magic = c.take(4, "magic").map_err(h)?;
        if magic != b"GGUF" {
            return Err(header_err(0, GgufError::BadMagic([magic[0], magic[1], magic[2], magic[3]])));
        }
        let version = c.u32("version").map_err(h)?;
        if version != 2 && version != 3 {
            let kind = match version.swap_bytes() {
                v @ (2 | 3) => GgufError::BigEndian(v),
                _ => GgufError::UnsupportedVersion(version),
            };
            return Err(header_err(4, kind));
        }
        let n_tensors = c.u64("tensor count").map_err(h)?;
        let n_kv = c.u64("metadata count").map_err(h)?;

        let room = c.remaining();
        let fit = (room / MIN_KV_SIZE) as u64;
        if n_kv > fit.min(MAX_KVS) {
            return Err(header_err(
                16,
                GgufError::TooManyKvs { count: n_kv, max: fit.min(MAX_KVS), by_file_size: fit < MAX_KVS },
            ));
        }
        let room = room - n_kv as usize * MIN_KV_SIZE;
        let fit = (room / MIN_TENSOR_INFO_SIZE) as u64;
        if n_tensors > fit.min(MAX_TENSORS) {
            let kind = GgufError::TooManyTensors {
                count: n_tensors,
                max: fit.min(MAX_TENSORS),
                by_file_size: fit < MAX_TENSORS,
            };
            return Err(header_err(8, kind));
        }

        let kv_offset = c.pos;
        let mut alignment = DEFAULT_ALIGNMENT;
        #[cfg(feature = "alloc")]
        let mut keys = alloc::vec::Vec::with_capacity(n_kv as usize);
        for index in 0..n_kv {
            let pos = c.pos;
            let mut at = Location::Kv { index, key: ShortStr::EMPTY };
            let key = c.string(MAX_KEY, "metadata key").map_err(|f| gguf_err(at, f))?;
            at = Location::Kv { index, key: ShortStr::new(key) };
            let ty = read_type(&mut c).map_err(|f| gguf_err(at, f))?;
            let value_pos = c.pos;
            let value = read_value(&mut c, ty, 0, true).map_err(|f| gguf_err(at, f))?;
            if key == ALIGNMENT_KEY {
                alignment = check_alignment(&value).map_err(|kind| gguf_err(at, Fail { offset: value_pos, kind }))?;
            }
            #[cfg(feature = "alloc")]
            keys.push((key, pos));
            #[cfg(not(feature = "alloc"))]
            let _ = pos;
        }

        let tensor_info_offset = c.pos;
        for index in 0..n_tensors {
            read_tensor_info(&mut c, index, alignment)?;
        }
        let data_offset = c.pos.checked_next_multiple_of(alignment);
        let data_offset = data_offset.ok_or(header_err(c.pos, GgufError::BadAlignment(alignment as u64)))?;

        let layout = Layout {
            version,
            n_kv: n_kv as usize,
            kv_offset,
            n_tensors: n_tensors as usize,
            tensor_info_offset,
            alignment,
            data_offset,
        };
        let file = File { bytes, layout };
        #[cfg(feature = "alloc")]
        checks::duplicate_keys(&keys)?;
        #[cfg(not(feature = "alloc"))]
        checks::duplicate_keys_chunked(&file)?;
        file.check_tensor_data()?;
        Ok(file)
    }

    /// Checks every tensor's data range, then unique names and no overlap.
    fn check_tensor_data(&self) -> Result<(), Error> {
        let l = &self.layout;
        let mut c = Cursor::new(self.bytes, l.tensor_info_offset);
        let mut in_order = true;
        let mut prev_end = 0usize;
        #[cfg(feature = "alloc")]
        let mut infos = alloc::vec::Vec::with_capacity(l.n_tensors);
        for index in 0..l.n_tensors as u64 {
            let info = read_tensor_info(&mut c, index, l.alignment)?;
            let (start, end) = data_range(&info, l.data_offset, self.bytes.len()).map_err(|kind| {
                gguf_err(Location::Tensor { index, name: ShortStr::new(info.name) }, Fail { offset: info.pos, kind })
            })?;
            if start < end {
                in_order &= start >= prev_end;
                prev_end = end;
            }
            #[cfg(feature = "alloc")]
            infos.push(checks::Entry { name: info.name, start, end, pos: info.pos });
        }
        #[cfg(feature = "alloc")]
        return checks::tensors(&infos, in_order);
        #[cfg(not(feature = "alloc"))]
        return checks::tensors_chunked(self, in_order);
    }

    /// Re-views bytes already validated by [`File::parse`] with the [`Layout`]
    /// it returned, without validating again. Every read stays bounds-checked:
    /// on other bytes the accessors return less (or nothing), never read out
    /// of bounds or panic.
    pub fn with_layout(bytes: &'a [u8], layout: Layout) -> File<'a> {
        File { bytes, layout }
    }

    /// Where the sections are.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.layout.version
    }

    /// Alignment of tensor data in bytes.
    pub fn alignment(&self) -> usize {
        self.layout.alignment
    }

    /// Byte offset of the data section.
    pub fn data_offset(&self) -> usize {
        self.layout.data_offset
    }

    /// Number of metadata entries.
    pub fn metadata_count(&self) -> usize {
        self.layout.n_kv
    }

    /// Every metadata entry as `(key, value)`, in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + Clone + 'a {
        self.entries().map(|(_, k, v)| (k, v))
    }

    /// Metadata entries with the byte offset where each starts.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (usize, &'a str, Value<'a>)> + Clone + 'a {
        let mut c = Cursor::new(self.bytes, self.layout.kv_offset);
        let mut left = self.layout.n_kv;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let pos = c.pos;
            let kv = c.string(MAX_KEY, "metadata key").and_then(|k| {
                let ty = read_type(&mut c)?;
                Ok((pos, k, read_value(&mut c, ty, 0, false)?))
            });
            if kv.is_err() {
                left = 0;
            }
            kv.ok()
        })
    }

    /// The value of metadata key `key`.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.metadata().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Option<&'a str> {
        self.get(key)?.as_str()
    }

    /// An integer value of any unsigned type, or of a signed type if not negative.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// An integer value of any type, if it fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// An `f32` value, or an `f64` one rounded to `f32`.
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key)?.as_f32()
    }

    /// A bool value.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// An array value.
    pub fn get_array(&self, key: &str) -> Option<Array<'a>> {
        self.get(key)?.as_array()
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.layout.n_tensors
    }

    /// Every tensor, in file order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorInfo<'a>> + Clone + 'a {
        let bytes = self.bytes;
        let l = self.layout;
        let mut c = Cursor::new(bytes, l.tensor_info_offset);
        let mut index = 0u64;
        core::iter::from_fn(move || {
            if index >= l.n_tensors as u64 || l.alignment == 0 {
                return None;
            }
            let t = read_tensor_info(&mut c, index, l.alignment).ok().and_then(|info| {
                let (start, end) = data_range(&info, l.data_offset, bytes.len()).ok()?;
                Some(TensorInfo {
                    name: info.name,
                    ty: info.ty,
                    dims: info.dims,
                    n_dims: info.n_dims,
                    offset: info.offset,
                    data: bytes.get(start..end)?,
                })
            });
            index = if t.is_some() { index + 1 } else { u64::MAX };
            t
        })
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<TensorInfo<'a>> {
        self.tensors().find(|t| t.name == name)
    }
}

/// Uniqueness and overlap checks: sort-based with `alloc`, chunked pairwise
/// comparison (bounded by the lower no-alloc limits) without.
mod checks {
    use super::*;

    fn dup_key_err(index: usize, key: &str, pos: usize, first: usize) -> Error {
        gguf_err(
            Location::Kv { index: index as u64, key: ShortStr::new(key) },
            Fail { offset: pos as u64 as usize, kind: GgufError::DuplicateKey { first: first as u64 } },
        )
    }

    fn dup_tensor_err(index: usize, name: &str, pos: usize, first: usize) -> Error {
        gguf_err(
            Location::Tensor { index: index as u64, name: ShortStr::new(name) },
            Fail { offset: pos, kind: GgufError::DuplicateTensor { first: first as u64 } },
        )
    }

    fn overlap_err(index: usize, name: &str, pos: usize, other: usize, other_name: &str) -> Error {
        gguf_err(
            Location::Tensor { index: index as u64, name: ShortStr::new(name) },
            Fail {
                offset: pos,
                kind: GgufError::Overlap { other: other as u64, other_name: ShortStr::new(other_name) },
            },
        )
    }

    /// A tensor's name and absolute data range.
    #[derive(Clone, Copy, Default)]
    pub(super) struct Entry<'a> {
        pub name: &'a str,
        pub start: usize,
        pub end: usize,
        /// Where the tensor info starts (the no-alloc path recomputes it only on error).
        #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
        pub pos: usize,
    }

    fn overlaps(a: &Entry<'_>, b: &Entry<'_>) -> bool {
        a.start < a.end && b.start < b.end && a.start < b.end && b.start < a.end
    }

    #[cfg(feature = "alloc")]
    pub(super) fn duplicate_keys(keys: &[(&str, usize)]) -> Result<(), Error> {
        let mut order: alloc::vec::Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| keys[a as usize].0.cmp(keys[b as usize].0).then(a.cmp(&b)));
        let dup = order
            .windows(2)
            .filter(|w| keys[w[0] as usize].0 == keys[w[1] as usize].0)
            .min_by_key(|w| w[1])
            .map(|w| (w[0] as usize, w[1] as usize));
        match dup {
            Some((first, i)) => Err(dup_key_err(i, keys[i].0, keys[i].1, first)),
            None => Ok(()),
        }
    }

    #[cfg(feature = "alloc")]
    pub(super) fn tensors(infos: &[Entry<'_>], in_order: bool) -> Result<(), Error> {
        let mut order: alloc::vec::Vec<u32> = (0..infos.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| infos[a as usize].name.cmp(infos[b as usize].name).then(a.cmp(&b)));
        let dup = order
            .windows(2)
            .filter(|w| infos[w[0] as usize].name == infos[w[1] as usize].name)
            .min_by_key(|w| w[1])
            .map(|w| (w[0] as usize, w[1] as usize));
        if let Some((first, i)) = dup {
            return Err(dup_tensor_err(i, infos[i].name, infos[i].pos, first));
        }
        if in_order {
            return Ok(()); // non-empty ranges ascend without overlap: the common, O(n) case
        }
        // Sweep the ranges by start, remembering the one reaching furthest.
        order.retain(|&i| infos[i as usize].start < infos[i as usize].end);
        order.sort_unstable_by_key(|&i| (infos[i as usize].start, i));
        let mut reach: Option<usize> = None;
        for &i in &order {
            let i = i as usize;
            if let Some(r) = reach {
                if overlaps(&infos[r], &infos[i]) {
                    let (a, b) = (r.min(i), r.max(i));
                    return Err(overlap_err(b, infos[b].name, infos[b].pos, a, infos[a].name));
                }
            }
            if reach.is_none_or(|r| infos[i].end > infos[r].end) {
                reach = Some(i);
            }
        }
        Ok(())
    }

    /// Items held on the stack at a time by the pairwise checks.
    #[cfg(any(not(feature = "alloc"), test))]
    const CHUNK: usize = 32;

    /// The first pair `(i, j)`, `i < j`, for which `conflict` holds, holding
    /// [`CHUNK`] items at a time: `n / CHUNK` passes over `items()`.
    #[cfg(any(not(feature = "alloc"), test))]
    fn find_pair<T: Copy + Default, I: Iterator<Item = T>>(
        n: usize,
        items: impl Fn() -> I,
        conflict: impl Fn(&T, &T) -> bool,
    ) -> Option<(usize, usize)> {
        let mut base = 0;
        while base < n {
            let mut buf = [T::default(); CHUNK];
            let mut k = 0;
            for (slot, t) in buf.iter_mut().zip(items().skip(base)) {
                *slot = t;
                k += 1;
            }
            for (j, t) in items().enumerate().skip(base + 1) {
                for (i, b) in buf[..k.min(j - base)].iter().enumerate() {
                    if conflict(b, &t) {
                        return Some((base + i, j));
                    }
                }
            }
            base += CHUNK;
        }
        None
    }

    #[cfg(any(not(feature = "alloc"), test))]
    pub(super) fn duplicate_keys_chunked(file: &File<'_>) -> Result<(), Error> {
        let items = || file.entries().map(|(pos, k, _)| (k, pos));
        match find_pair(file.layout.n_kv, items, |a, b| a.0 == b.0) {
            Some((first, i)) => {
                let (k, pos) = items().nth(i).unwrap_or(("", 0));
                Err(dup_key_err(i, k, pos, first))
            }
            None => Ok(()),
        }
    }

    #[cfg(any(not(feature = "alloc"), test))]
    pub(super) fn tensors_chunked(file: &File<'_>, in_order: bool) -> Result<(), Error> {
        let base = file.bytes.as_ptr() as usize;
        let items = || {
            file.tensors().map(move |t| {
                let start = t.data.as_ptr() as usize - base;
                Entry { name: t.name, start, end: start + t.data.len(), pos: 0 }
            })
        };
        let pos_of = |i: usize| {
            let mut c = Cursor::new(file.bytes, file.layout.tensor_info_offset);
            for index in 0..i as u64 {
                let _ = read_tensor_info(&mut c, index, file.layout.alignment);
            }
            c.pos
        };
        let n = file.layout.n_tensors;
        if let Some((first, i)) = find_pair(n, items, |a, b| a.name == b.name) {
            let name = items().nth(i).map(|e| e.name).unwrap_or("");
            return Err(dup_tensor_err(i, name, pos_of(i), first));
        }
        if in_order {
            return Ok(());
        }
        if let Some((a, b)) = find_pair(n, items, overlaps) {
            let (ea, eb) = (items().nth(a).unwrap_or_default(), items().nth(b).unwrap_or_default());
            return Err(overlap_err(b, eb.name, pos_of(b), a, ea.name));
        }
        Ok(())
    }
}

/// The no-alloc checks (chunked pairwise) against the alloc ones (sorting):
/// on files with one conflict each, both must report the same error.
#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::gguf::Writer;
    use alloc::format;
    use alloc::vec::Vec;

    const N: usize = 100; // > 3 chunks

    fn file() -> Vec<u8> {
        let mut w = Writer::new();
        for i in 0..N {
            w.add_u32(&format!("k{i:03}"), i as u32).unwrap();
        }
        for i in 0..N {
            w.add_tensor(
                &format!("t{i:03}"),
                GgmlType::F32,
                &[1 + (i as u64 % 3)],
                alloc::vec![i as u8; 4 * (1 + i % 3)],
            )
            .unwrap();
        }
        w.to_bytes()
    }

    /// Positions of the key and tensor-name bytes and of each tensor's offset field.
    fn positions(b: &[u8]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let f = File::parse(b).unwrap();
        let keys = f.entries().map(|(pos, _, _)| pos + 8).collect();
        let mut c = Cursor::new(b, f.layout.tensor_info_offset);
        let (mut names, mut offsets) = (Vec::new(), Vec::new());
        for i in 0..N as u64 {
            let start = c.pos;
            let info = read_tensor_info(&mut c, i, f.alignment()).unwrap();
            names.push(start + 8);
            offsets.push(start + 8 + info.name.len() + 4 + 8 * info.n_dims + 4);
        }
        (keys, names, offsets)
    }

    fn both(b: &[u8], layout: Layout) -> (Result<(), Error>, Result<(), Error>) {
        let sorted = File::parse(b).map(|_| ());
        let f = File::with_layout(b, layout);
        let chunked = checks::duplicate_keys_chunked(&f).and_then(|_| checks::tensors_chunked(&f, false));
        (sorted, chunked)
    }

    #[test]
    fn chunked_and_sorted_checks_agree() {
        let base = file();
        let layout = File::parse(&base).unwrap().layout();
        let (keys, names, offsets) = positions(&base);
        let (s, c) = both(&base, layout);
        assert!(s.is_ok() && c.is_ok());

        let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
        for (i, j) in [(5, 77), (0, 1), (31, 32), (40, 99), (64, 96)] {
            let mut b = base.clone();
            let k = format!("k{i:03}");
            b[keys[j]..keys[j] + 4].copy_from_slice(k.as_bytes());
            cases.push((b, "duplicate metadata key"));
            let mut b = base.clone();
            let t = format!("t{i:03}");
            b[names[j]..names[j] + 4].copy_from_slice(t.as_bytes());
            cases.push((b, "duplicate tensor"));
            let mut b = base.clone();
            let o: [u8; 8] = b[offsets[i]..offsets[i] + 8].try_into().unwrap();
            b[offsets[j]..offsets[j] + 8].copy_from_slice(&o);
            cases.push((b, "overlaps the data of tensor"));
        }
        // Out of order but disjoint: two same-size tensors swap places.
        let mut b = base.clone();
        let (o3, o93): ([u8; 8], [u8; 8]) =
            (b[offsets[3]..offsets[3] + 8].try_into().unwrap(), b[offsets[93]..offsets[93] + 8].try_into().unwrap());
        b[offsets[3]..offsets[3] + 8].copy_from_slice(&o93);
        b[offsets[93]..offsets[93] + 8].copy_from_slice(&o3);
        let (s, c) = both(&b, layout);
        assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");

        for (b, what) in &cases {
            let (s, c) = both(b, layout);
            let s = s.unwrap_err();
            assert!(s.to_string().contains(what), "{s}");
            assert_eq!(Err(s), c, "{what}");
        }
    }
}
