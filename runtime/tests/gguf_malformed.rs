//! The malformed-file corpus: every file here is generated from one small
//! valid GGUF by patching a field, and each must give `Err` with a message
//! naming the problem (checked by substring), never a panic or an
//! out-of-bounds read. Field positions come from a walker written here from
//! the spec, independent of the reader.

use ember::gguf::{File, GgufError, Location, MetaValue, ValueType, Writer};
use ember::quant::GgmlType;
use ember::Error;

const TENSORS: [(&str, GgmlType, &[u64]); 4] = [
    ("token_embd.weight", GgmlType::F32, &[8]),
    ("blk.0.attn_q.weight", GgmlType::Q8_0, &[32, 2]),
    ("blk.0.attn_k.weight", GgmlType::F32, &[8]),
    ("output_norm.weight", GgmlType::Q4_0, &[32]),
];

fn base() -> Vec<u8> {
    let mut w = Writer::new();
    w.add_str("general.architecture", "llama").unwrap();
    w.set_alignment(32).unwrap();
    w.add_u32("test.key_a", 1).unwrap();
    w.add_u32("test.key_b", 2).unwrap();
    w.add_bool("test.flag", true).unwrap();
    w.add_str_array("tokenizer.ggml.tokens", ["a", "b", "c"]).unwrap();
    let nested = MetaValue::Array(
        ValueType::Array,
        vec![
            MetaValue::Array(ValueType::I32, vec![MetaValue::I32(1), MetaValue::I32(2)]),
            MetaValue::Array(ValueType::I32, vec![MetaValue::I32(3)]),
        ],
    );
    w.add_meta("test.nested", &nested).unwrap();
    for (i, (name, ty, dims)) in TENSORS.iter().enumerate() {
        let n = ty.row_bytes(dims[0] as usize).unwrap() * dims[1..].iter().product::<u64>() as usize;
        w.add_tensor(name, *ty, dims, vec![i as u8 + 1; n]).unwrap();
    }
    w.to_bytes()
}

/// Positions of one metadata entry's fields.
#[derive(Debug, Default, Clone)]
struct KvPos {
    key_len: usize,
    key: usize,
    ty: usize,
    value: usize,
    /// For arrays: element type and length fields, and where each string element's length is.
    arr_ty: usize,
    arr_len: usize,
    strings: Vec<usize>,
}

/// Positions of one tensor info's fields.
#[derive(Debug, Default, Clone)]
struct TiPos {
    name_len: usize,
    name: usize,
    n_dims: usize,
    dims: usize,
    ty: usize,
    offset: usize,
}

struct Map {
    kvs: Vec<KvPos>,
    tis: Vec<TiPos>,
    info_end: usize,
}

fn rd_u32(b: &[u8], p: usize) -> u32 {
    u32::from_le_bytes(b[p..p + 4].try_into().unwrap())
}
fn rd_u64(b: &[u8], p: usize) -> u64 {
    u64::from_le_bytes(b[p..p + 8].try_into().unwrap())
}
fn put_u32(b: &mut [u8], p: usize, v: u32) {
    b[p..p + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], p: usize, v: u64) {
    b[p..p + 8].copy_from_slice(&v.to_le_bytes());
}

/// Size of a value of GGUF type `ty` at `p` (spec walk, for the test's own map).
fn value_size(b: &[u8], p: usize, ty: u32) -> usize {
    match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8 + rd_u64(b, p) as usize,
        9 => {
            let (et, n) = (rd_u32(b, p), rd_u64(b, p + 4) as usize);
            let mut q = p + 12;
            for _ in 0..n {
                q += value_size(b, q, et);
            }
            q - p
        }
        _ => panic!("test walker: unknown type {ty}"),
    }
}

fn map(b: &[u8]) -> Map {
    let n_t = rd_u64(b, 8) as usize;
    let n_kv = rd_u64(b, 16) as usize;
    let mut p = 24;
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let mut k = KvPos { key_len: p, key: p + 8, ..Default::default() };
        p += 8 + rd_u64(b, p) as usize;
        k.ty = p;
        let ty = rd_u32(b, p);
        p += 4;
        k.value = p;
        if ty == 9 {
            k.arr_ty = p;
            k.arr_len = p + 4;
            if rd_u32(b, p) == 8 {
                let mut q = p + 12;
                for _ in 0..rd_u64(b, p + 4) {
                    k.strings.push(q);
                    q += 8 + rd_u64(b, q) as usize;
                }
            }
        }
        p += value_size(b, p, ty);
        kvs.push(k);
    }
    let mut tis = Vec::new();
    for _ in 0..n_t {
        let mut t = TiPos { name_len: p, name: p + 8, ..Default::default() };
        p += 8 + rd_u64(b, p) as usize;
        t.n_dims = p;
        let nd = rd_u32(b, p) as usize;
        t.dims = p + 4;
        p += 4 + 8 * nd;
        t.ty = p;
        t.offset = p + 4;
        p += 12;
        tis.push(t);
    }
    Map { kvs, tis, info_end: p }
}

/// Parses `bytes`; the result must be an error whose message contains every one of `needles`.
#[track_caller]
fn rejects(bytes: &[u8], needles: &[&str]) -> Error {
    let e = match File::parse(bytes) {
        Ok(_) => panic!("accepted a malformed file (expected: {needles:?})"),
        Err(e) => e,
    };
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
    }
    assert!(msg.starts_with("invalid GGUF: "), "{msg}");
    e
}

fn kind(e: &Error) -> GgufError {
    match e {
        Error::Gguf { kind, .. } => *kind,
        other => panic!("not a GGUF error: {other:?}"),
    }
}

fn patched(f: impl FnOnce(&mut Vec<u8>, &Map)) -> Vec<u8> {
    let mut b = base();
    let m = map(&b);
    f(&mut b, &m);
    b
}

#[test]
fn the_base_file_is_valid_and_the_test_map_matches_it() {
    let b = base();
    let f = File::parse(&b).unwrap();
    let m = map(&b);
    assert_eq!(m.kvs.len(), 7);
    assert_eq!(m.tis.len(), 4);
    assert_eq!(f.layout().tensor_info_offset, m.tis[0].name_len);
    assert_eq!(f.data_offset(), m.info_end.next_multiple_of(32));
}

#[test]
fn truncated_at_every_offset() {
    let b = base();
    let f = File::parse(&b).unwrap();
    let last = f.tensors().map(|t| f.data_offset() + t.offset as usize + t.data.len()).max().unwrap();
    assert!(last < b.len(), "the base file ends with padding, so some cuts stay valid");
    for cut in 0..b.len() {
        let r = File::parse(&b[..cut]);
        if cut >= last {
            // Only trailing padding was cut: still a complete file.
            assert!(r.is_ok(), "cut at {cut} (after all tensor data): {:?}", r.err());
            continue;
        }
        let msg = match r {
            Ok(_) => panic!("file truncated at {cut} of {} was accepted", b.len()),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains("truncated") || msg.contains("past the end of the file"),
            "cut at {cut}: message does not say the file is truncated: {msg}"
        );
    }
}

#[test]
fn wrong_magic() {
    for magic in [*b"GGUG", *b"\0\0\0\0", *b"FUGG", *b"GGML", *b"ggjt"] {
        let b = patched(|b, _| b[..4].copy_from_slice(&magic));
        let e = rejects(&b, &["bad magic", "not a GGUF file"]);
        assert_eq!(kind(&e), GgufError::BadMagic(magic));
    }
    rejects(b"GGU", &["truncated", "magic"]);
    rejects(b"", &["truncated", "magic"]);
}

#[test]
fn unsupported_versions() {
    for v in [1u32, 4, 0, 99, u32::MAX] {
        let b = patched(|b, _| put_u32(b, 4, v));
        let e = rejects(&b, &[&format!("unsupported GGUF version {v}"), "ember reads versions 2 and 3"]);
        assert_eq!(kind(&e), GgufError::UnsupportedVersion(v));
    }
    let b = patched(|b, _| put_u32(b, 4, 3u32.swap_bytes()));
    rejects(&b, &["big-endian"]);
    // Version 2 has the same layout as 3 and is accepted.
    let b = patched(|b, _| put_u32(b, 4, 2));
    assert_eq!(File::parse(&b).unwrap().version(), 2);
}

#[test]
fn absurd_counts() {
    for n in [u64::MAX, 1 << 40, 1 << 20, 1000] {
        let b = patched(|b, _| put_u64(b, 8, n));
        rejects(&b, &[&format!("tensor count {n} is too large")]);
        let b = patched(|b, _| put_u64(b, 16, n));
        rejects(&b, &[&format!("metadata entry count {n} is too large")]);
    }
    let e = rejects(&patched(|b, _| put_u64(b, 8, 1 << 40)), &["rest of the file has room for at most"]);
    assert!(matches!(kind(&e), GgufError::TooManyTensors { by_file_size: true, .. }));
    // One entry too many: the first tensor info is read as a metadata entry.
    let b = patched(|b, _| put_u64(b, 16, 8));
    rejects(&b, &[]);
    // One tensor too many: the padding is read as a tensor info.
    let b = patched(|b, _| put_u64(b, 8, 5));
    rejects(&b, &["tensor #4"]);
}

#[test]
fn absurd_string_and_array_lengths() {
    // Key length: over the limit, and within the limit but past the end.
    let b = patched(|b, m| put_u64(b, m.kvs[2].key_len, u64::MAX));
    rejects(&b, &["metadata entry #2", "string length 18446744073709551615 exceeds the limit of 65536 bytes"]);
    let b = patched(|b, m| put_u64(b, m.kvs[2].key_len, 60_000));
    rejects(&b, &["metadata entry #2", "truncated", "metadata key needs 60000 bytes"]);
    // String value length.
    let b = patched(|b, m| put_u64(b, m.kvs[0].value, 1 << 50));
    rejects(&b, &["metadata key 'general.architecture'", "exceeds the limit of 1048576 bytes"]);
    let b = patched(|b, m| put_u64(b, m.kvs[0].value, 500_000));
    rejects(&b, &["metadata key 'general.architecture'", "truncated"]);
    // Array length.
    for n in [u64::MAX, 1 << 33, 100_000] {
        let b = patched(|b, m| put_u64(b, m.kvs[5].arr_len, n));
        rejects(
            &b,
            &[
                "metadata key 'tokenizer.ggml.tokens'",
                &format!("array length {n} is more than the rest of the file can hold"),
            ],
        );
    }
    // A string inside an array.
    let b = patched(|b, m| put_u64(b, m.kvs[5].strings[1], 1 << 40));
    rejects(&b, &["metadata key 'tokenizer.ggml.tokens'", "string length 1099511627776 exceeds the limit"]);
    // Inner array length of a nested array.
    let b = patched(|b, m| put_u64(b, m.kvs[6].value + 12 + 4, 1 << 40));
    rejects(&b, &["metadata key 'test.nested'", "array length 1099511627776"]);
    // Tensor name length.
    let b = patched(|b, m| put_u64(b, m.tis[1].name_len, u64::MAX - 3));
    rejects(&b, &["tensor #1", "exceeds the limit of 65536 bytes"]);
}

#[test]
fn unknown_value_types_and_bad_values() {
    let b = patched(|b, m| put_u32(b, m.kvs[2].ty, 13));
    let e = rejects(&b, &["metadata key 'test.key_a' has unknown value type id 13"]);
    assert_eq!(kind(&e), GgufError::UnknownValueType(13));
    let b = patched(|b, m| put_u32(b, m.kvs[5].arr_ty, 99));
    rejects(&b, &["metadata key 'tokenizer.ggml.tokens' has unknown value type id 99"]);
    let b = patched(|b, m| b[m.kvs[4].value] = 2);
    rejects(&b, &["metadata key 'test.flag'", "bool value 2 is neither 0 nor 1"]);
}

#[test]
fn bad_utf8() {
    let b = patched(|b, m| b[m.kvs[2].key + 1] = 0xff);
    let e = rejects(&b, &["metadata entry #2", "not valid UTF-8"]);
    assert_eq!(kind(&e), GgufError::BadUtf8);
    let b = patched(|b, m| b[m.kvs[0].value + 8] = 0xc3); // "llama" -> "\xc3lama": a lead byte without continuation
    rejects(&b, &["metadata key 'general.architecture'", "not valid UTF-8"]);
    let b = patched(|b, m| b[m.kvs[5].strings[2] + 8] = 0x80);
    rejects(&b, &["metadata key 'tokenizer.ggml.tokens'", "not valid UTF-8"]);
    let b = patched(|b, m| b[m.tis[2].name + 3] = 0xfe);
    rejects(&b, &["tensor #2", "not valid UTF-8"]);
}

#[test]
fn arrays_nested_too_deep() {
    let mut v = MetaValue::Array(ValueType::U8, vec![MetaValue::U8(1)]);
    for _ in 0..8 {
        v = MetaValue::Array(ValueType::Array, vec![v]);
    }
    let mut w = Writer::new();
    w.add_meta("deep", &v).unwrap();
    rejects(&w.to_bytes(), &["metadata key 'deep'", "arrays nested deeper than 8 levels"]);
    // Depth 8 (7 wrappers) is fine.
    let mut v = MetaValue::Array(ValueType::U8, vec![MetaValue::U8(1)]);
    for _ in 0..7 {
        v = MetaValue::Array(ValueType::Array, vec![v]);
    }
    let mut w = Writer::new();
    w.add_meta("deep", &v).unwrap();
    File::parse(&w.to_bytes()).unwrap();
}

#[test]
fn unknown_tensor_types_name_the_tensor_and_the_id() {
    for id in [99u32, 4, 5, 31, 40, u32::MAX] {
        let b = patched(|b, m| put_u32(b, m.tis[1].ty, id));
        let e = rejects(&b, &[&format!("tensor 'blk.0.attn_q.weight' has unknown type id {id}"), "tensor info #1"]);
        assert_eq!(kind(&e), GgufError::UnknownTensorType(id));
        match e {
            Error::Gguf { at: Location::Tensor { index, name }, .. } => {
                assert_eq!((index, name.as_str()), (1, "blk.0.attn_q.weight"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn bad_dimension_counts() {
    for n in [0u32, 5, 1000] {
        let b = patched(|b, m| put_u32(b, m.tis[0].n_dims, n));
        rejects(&b, &[&format!("tensor 'token_embd.weight' has {n} dimensions (ember reads 1 to 4)")]);
    }
}

#[test]
fn shape_size_mismatches() {
    // Row length not a whole number of Q8_0 blocks.
    let b = patched(|b, m| put_u64(b, m.tis[1].dims, 33));
    rejects(
        &b,
        &[
            "tensor 'blk.0.attn_q.weight'",
            "shape/size mismatch",
            "row length 33 is not a multiple of the Q8_0 block size 32",
        ],
    );
    // More rows than the data holds: it runs into the next tensor...
    let b = patched(|b, m| put_u64(b, m.tis[1].dims + 8, 3));
    rejects(&b, &["overlaps the data of tensor"]);
    // ...or past the end of the file.
    let b = patched(|b, m| put_u64(b, m.tis[3].dims, 32 * 10));
    rejects(&b, &["tensor 'output_norm.weight'", "past the end of the file"]);
    // Shapes whose element count or byte size overflows.
    for (d0, d1) in [(u64::MAX, 1), (1 << 32, 1 << 32), (1 << 62, 2), (32 << 40, 1 << 20)] {
        let b = patched(|b, m| {
            put_u64(b, m.tis[1].dims, d0);
            put_u64(b, m.tis[1].dims + 8, d1);
        });
        let e = rejects(&b, &["tensor 'blk.0.attn_q.weight'"]);
        let k = kind(&e);
        assert!(
            matches!(
                k,
                GgufError::ShapeOverflow | GgufError::NotBlockMultiple { .. } | GgufError::DataOutOfRange { .. }
            ),
            "{d0}x{d1}: {e}"
        );
    }
}

#[test]
fn offsets_past_the_end() {
    let b = patched(|b, m| put_u64(b, m.tis[2].offset, 1 << 30));
    rejects(&b, &["tensor 'blk.0.attn_k.weight'", "past the end of the file"]);
    let b = patched(|b, m| put_u64(b, m.tis[2].offset, u64::MAX - 31)); // aligned, and start+size overflows
    rejects(&b, &["tensor 'blk.0.attn_k.weight'", "past the end of the file"]);
    let len = base().len() as u64;
    let b = patched(|b, m| {
        let data_offset = m.info_end.next_multiple_of(32) as u64;
        put_u64(b, m.tis[3].offset, (len - data_offset).next_multiple_of(32));
    });
    rejects(&b, &["tensor 'output_norm.weight'", "past the end of the file"]);
}

#[test]
fn misaligned_tensor_data() {
    for delta in [1u64, 4, 16] {
        let b = patched(|b, m| {
            let o = rd_u64(b, m.tis[1].offset);
            put_u64(b, m.tis[1].offset, o + delta);
        });
        rejects(&b, &["tensor 'blk.0.attn_q.weight'", "is misaligned (not a multiple of the alignment 32)"]);
    }
}

#[test]
fn overlapping_tensor_data() {
    // Same offset as another tensor.
    let b = patched(|b, m| {
        let o = rd_u64(b, m.tis[0].offset);
        put_u64(b, m.tis[2].offset, o);
    });
    let e = rejects(&b, &["tensor 'blk.0.attn_k.weight'", "overlaps the data of tensor 'token_embd.weight' (#0)"]);
    assert!(matches!(kind(&e), GgufError::Overlap { other: 0, .. }));
    // Out of order and overlapping: the first tensor moved into the second's range.
    let b = patched(|b, m| {
        let o = rd_u64(b, m.tis[1].offset);
        put_u64(b, m.tis[0].offset, o + 32);
    });
    rejects(&b, &["overlaps the data of tensor"]);
}

#[test]
fn out_of_order_but_disjoint_tensors_are_valid() {
    // token_embd.weight and blk.0.attn_k.weight are both 32 bytes: swap their offsets.
    let b = patched(|b, m| {
        let (o0, o2) = (rd_u64(b, m.tis[0].offset), rd_u64(b, m.tis[2].offset));
        put_u64(b, m.tis[0].offset, o2);
        put_u64(b, m.tis[2].offset, o0);
    });
    let f = File::parse(&b).unwrap();
    assert_eq!(f.tensor("token_embd.weight").unwrap().data, &[3u8; 32][..]);
    assert_eq!(f.tensor("blk.0.attn_k.weight").unwrap().data, &[1u8; 32][..]);
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48, 100, u32::MAX] {
        let b = patched(|b, m| put_u32(b, m.kvs[1].value, a));
        let e = rejects(&b, &[&format!("general.alignment {a} is not a non-zero power of two")]);
        assert_eq!(kind(&e), GgufError::BadAlignment(a as u64));
    }
    // Another type than an unsigned integer.
    let b = patched(|b, m| put_u32(b, m.kvs[1].ty, 5)); // i32 32
    rejects(&b, &["general.alignment has type i32, expected an unsigned integer"]);
    let b = patched(|b, m| put_u32(b, m.kvs[1].ty, 6)); // f32
    rejects(&b, &["general.alignment has type f32"]);
    // A larger power of two than the file was written with: offsets become misaligned.
    let b = patched(|b, m| put_u32(b, m.kvs[1].value, 64));
    rejects(&b, &["misaligned"]);
}

#[test]
fn duplicate_keys_and_tensor_names() {
    // "test.key_b" -> "test.key_a"
    let b = patched(|b, m| b[m.kvs[3].key + 9] = b'a');
    let e = rejects(&b, &["duplicate metadata key 'test.key_a' (first seen as metadata entry #2)"]);
    assert_eq!(kind(&e), GgufError::DuplicateKey { first: 2 });
    // "blk.0.attn_k.weight" -> "blk.0.attn_q.weight"
    let b = patched(|b, m| b[m.tis[2].name + 11] = b'q');
    let e = rejects(&b, &["duplicate tensor 'blk.0.attn_q.weight' (first seen as tensor info #1)"]);
    assert_eq!(kind(&e), GgufError::DuplicateTensor { first: 1 });
}

#[test]
fn errors_carry_the_byte_offset_of_the_bad_field() {
    let (b, m) = {
        let b = base();
        let m = map(&b);
        (b, m)
    };
    let mut bad = b.clone();
    put_u32(&mut bad, m.tis[1].ty, 99);
    match File::parse(&bad).unwrap_err() {
        Error::Gguf { offset, .. } => assert_eq!(offset, m.tis[1].ty as u64),
        e => panic!("{e:?}"),
    }
    let e = File::parse(&bad).unwrap_err().to_string();
    assert!(e.ends_with(&format!("(tensor info #1, byte {})", m.tis[1].ty)), "{e}");
}

/// A cheap in-test fuzz: many deterministic byte mutations of the base file.
/// Each parse either fails cleanly or succeeds, and then every accessor
/// works and every tensor's data lies inside the file.
#[test]
fn random_mutations_never_panic() {
    let b = base();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..20_000 {
        let mut m = b.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % m.len();
            m[i] = match next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => m[i] ^ (1 << (next() % 8)),
                _ => next() as u8,
            };
        }
        if next() % 8 == 0 {
            m.truncate((next() as usize) % m.len());
        }
        match File::parse(&m) {
            Ok(f) => {
                ok += 1;
                for (_, v) in f.metadata() {
                    if let Some(a) = v.as_array() {
                        let _ = a.iter().count();
                    }
                }
                for t in f.tensors() {
                    let start = t.data.as_ptr() as usize - m.as_ptr() as usize;
                    assert!(start + t.data.len() <= m.len());
                }
                assert_eq!(f.tensors().count(), f.tensor_count());
                assert_eq!(f.metadata().count(), f.metadata_count());
            }
            Err(e) => {
                err += 1;
                assert!(e.to_string().starts_with("invalid GGUF: "));
            }
        }
    }
    assert!(ok > 100 && err > 100, "mutations exercised both outcomes: {ok} ok, {err} err");
}
