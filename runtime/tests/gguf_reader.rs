//! The GGUF reader on small files built with the writer: every value type,
//! nested arrays, tensors of several types, alignment variants, borrowed
//! views (`&[f32]` when aligned), re-views through a `Layout`, and loading.

use ember::gguf::{Array, File, MetaValue, Value, ValueType, Writer};
use ember::quant::GgmlType;
use ember::Model;

/// Bytes `seed, seed+1, ...` (wrapping), so every tensor's data is distinct.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

/// A copy of `bytes` starting `shift` bytes past a 16-byte-aligned address.
fn placed(bytes: &[u8], shift: usize) -> (Vec<u128>, usize) {
    let mut buf = vec![0u128; (bytes.len() + shift).div_ceil(16) + 1];
    bytemuck::cast_slice_mut::<u128, u8>(&mut buf)[shift..shift + bytes.len()].copy_from_slice(bytes);
    (buf, shift)
}

fn scalar_entries() -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("t.u8", Value::U8(255)),
        ("t.i8", Value::I8(-128)),
        ("t.u16", Value::U16(65535)),
        ("t.i16", Value::I16(-32768)),
        ("t.u32", Value::U32(u32::MAX)),
        ("t.i32", Value::I32(i32::MIN)),
        ("t.f32", Value::F32(-0.15625)),
        ("t.bool_true", Value::Bool(true)),
        ("t.bool_false", Value::Bool(false)),
        ("t.str", Value::Str("héllo ✓ wörld")),
        ("t.str_empty", Value::Str("")),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(1.0e-300)),
    ]
}

fn nested() -> MetaValue {
    use MetaValue as M;
    // [[1, 2], [], [3]] of i32
    M::Array(
        ValueType::Array,
        vec![
            M::Array(ValueType::I32, vec![M::I32(1), M::I32(2)]),
            M::Array(ValueType::I32, vec![]),
            M::Array(ValueType::I32, vec![M::I32(3)]),
        ],
    )
}

fn nested3() -> MetaValue {
    use MetaValue as M;
    // [[["a", "bc"]], [[], ["d"]]]: three levels, strings at the bottom
    M::Array(
        ValueType::Array,
        vec![
            M::Array(ValueType::Array, vec![M::Array(ValueType::Str, vec![M::Str("a".into()), M::Str("bc".into())])]),
            M::Array(
                ValueType::Array,
                vec![M::Array(ValueType::Str, vec![]), M::Array(ValueType::Str, vec![M::Str("d".into())])],
            ),
        ],
    )
}

fn full_writer() -> Writer<'static> {
    let mut w = Writer::new();
    for (k, v) in scalar_entries() {
        w.add_value(k, v).unwrap();
    }
    w.add_f32_array("a.f32", &[1.5, -2.0, 0.0, 3.25]).unwrap();
    w.add_i32_array("a.i32", &[-1, 0, 1, i32::MAX]).unwrap();
    w.add_str_array("a.str", ["<s>", "</s>", "▁the", ""]).unwrap();
    w.add_meta("a.u8", &MetaValue::Array(ValueType::U8, vec![MetaValue::U8(0), MetaValue::U8(200)])).unwrap();
    w.add_meta("a.bool", &MetaValue::Array(ValueType::Bool, vec![MetaValue::Bool(true), MetaValue::Bool(false)]))
        .unwrap();
    w.add_meta("a.u64", &MetaValue::Array(ValueType::U64, vec![MetaValue::U64(u64::MAX)])).unwrap();
    w.add_meta("a.f64", &MetaValue::Array(ValueType::F64, vec![MetaValue::F64(0.5), MetaValue::F64(-4.0)])).unwrap();
    w.add_meta("a.empty", &MetaValue::Array(ValueType::F32, vec![])).unwrap();
    w.add_meta("a.nested", &nested()).unwrap();
    w.add_meta("a.nested3", &nested3()).unwrap();
    w
}

fn ints(a: Array<'_>) -> Vec<i64> {
    a.iter().map(|v| v.as_i64().unwrap()).collect()
}

#[test]
fn every_scalar_type_round_trips_in_file_order() {
    let bytes = full_writer().to_bytes();
    let f = File::parse(&bytes).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.tensor_count(), 0);
    let expected = scalar_entries();
    let got: Vec<_> = f.metadata().take(expected.len()).collect();
    assert_eq!(got, expected);
    for (k, v) in &expected {
        assert_eq!(f.get(k), Some(*v), "{k}");
        assert_eq!(f.get(k).unwrap().value_type(), v.value_type());
    }
    assert_eq!(f.metadata().count(), f.metadata_count());
    assert_eq!(f.metadata_count(), expected.len() + 10);
    assert_eq!(f.get("no.such.key"), None);
}

#[test]
fn typed_getters_convert_only_where_lossless() {
    let bytes = full_writer().to_bytes();
    let f = File::parse(&bytes).unwrap();
    assert_eq!(f.get_u64("t.u8"), Some(255));
    assert_eq!(f.get_u64("t.u64"), Some(u64::MAX));
    assert_eq!(f.get_u64("t.i32"), None, "negative signed is not a u64");
    assert_eq!(f.get_i64("t.i8"), Some(-128));
    assert_eq!(f.get_i64("t.u32"), Some(u32::MAX as i64));
    assert_eq!(f.get_i64("t.u64"), None, "u64::MAX does not fit in i64");
    assert_eq!(f.get_f32("t.f32"), Some(-0.15625));
    assert_eq!(f.get_f32("t.f64"), Some(1.0e-300f64 as f32));
    assert_eq!(f.get_f32("t.u32"), None);
    assert_eq!(f.get_bool("t.bool_true"), Some(true));
    assert_eq!(f.get_bool("t.bool_false"), Some(false));
    assert_eq!(f.get_bool("t.u8"), None);
    assert_eq!(f.get_str("t.str"), Some("héllo ✓ wörld"));
    assert_eq!(f.get_str("t.str_empty"), Some(""));
    assert_eq!(f.get_str("t.u8"), None);
    assert_eq!(f.get_array("t.str"), None);
}

#[test]
fn arrays_of_every_kind() {
    let bytes = full_writer().to_bytes();
    let f = File::parse(&bytes).unwrap();

    let a = f.get_array("a.f32").unwrap();
    assert_eq!((a.elem_type(), a.len(), a.is_empty()), (ValueType::F32, 4, false));
    assert_eq!(a.f32_iter().unwrap().collect::<Vec<_>>(), [1.5, -2.0, 0.0, 3.25]);
    assert!(a.i32_iter().is_none() && a.strings().is_none() && a.as_i32_slice().is_none());
    assert_eq!(a.iter().collect::<Vec<_>>(), [Value::F32(1.5), Value::F32(-2.0), Value::F32(0.0), Value::F32(3.25)]);

    let a = f.get_array("a.i32").unwrap();
    assert_eq!(a.i32_iter().unwrap().collect::<Vec<_>>(), [-1, 0, 1, i32::MAX]);
    assert!(a.f32_iter().is_none() && a.as_f32_slice().is_none());

    let a = f.get_array("a.str").unwrap();
    assert_eq!(a.strings().unwrap().collect::<Vec<_>>(), ["<s>", "</s>", "▁the", ""]);
    assert_eq!(a.iter().nth(2), Some(Value::Str("▁the")));

    assert_eq!(ints(f.get_array("a.u8").unwrap()), [0, 200]);
    let b: Vec<_> = f.get_array("a.bool").unwrap().iter().collect();
    assert_eq!(b, [Value::Bool(true), Value::Bool(false)]);
    assert_eq!(f.get_array("a.u64").unwrap().iter().next(), Some(Value::U64(u64::MAX)));
    assert_eq!(f.get_array("a.f64").unwrap().iter().collect::<Vec<_>>(), [Value::F64(0.5), Value::F64(-4.0)]);

    let e = f.get_array("a.empty").unwrap();
    assert!(e.is_empty() && e.iter().next().is_none());
    assert_eq!(e.f32_iter().unwrap().count(), 0);
}

#[test]
fn nested_arrays() {
    let bytes = full_writer().to_bytes();
    let f = File::parse(&bytes).unwrap();
    let a = f.get_array("a.nested").unwrap();
    assert_eq!((a.elem_type(), a.len()), (ValueType::Array, 3));
    let inner: Vec<Vec<i64>> = a.iter().map(|v| ints(v.as_array().unwrap())).collect();
    assert_eq!(inner, [vec![1, 2], vec![], vec![3]]);

    let a = f.get_array("a.nested3").unwrap();
    let got: Vec<Vec<Vec<&str>>> = a
        .iter()
        .map(|l1| l1.as_array().unwrap().iter().map(|l2| l2.as_array().unwrap().strings().unwrap().collect()).collect())
        .collect();
    assert_eq!(got, vec![vec![vec!["a", "bc"]], vec![vec![], vec!["d"]]]);
}

struct T {
    name: &'static str,
    ty: GgmlType,
    dims: &'static [u64],
}

const TENSORS: &[T] = &[
    T { name: "token_embd.weight", ty: GgmlType::Q8_0, dims: &[64, 3] },
    T { name: "blk.0.attn_norm.weight", ty: GgmlType::F32, dims: &[5] },
    T { name: "blk.0.ffn_up.weight", ty: GgmlType::Q4_K, dims: &[256, 2] },
    T { name: "f16.3d", ty: GgmlType::F16, dims: &[3, 2, 2] },
    T { name: "i32.4d", ty: GgmlType::I32, dims: &[1, 2, 1, 3] },
    T { name: "empty", ty: GgmlType::F32, dims: &[0, 4] },
    T { name: "q4_0", ty: GgmlType::Q4_0, dims: &[32, 1] },
];

fn nbytes(t: &T) -> usize {
    t.ty.row_bytes(t.dims[0] as usize).unwrap() * t.dims[1..].iter().product::<u64>() as usize
}

fn tensor_file(alignment: Option<u32>) -> Vec<u8> {
    let mut w = Writer::new();
    w.add_str("general.architecture", "test").unwrap();
    if let Some(a) = alignment {
        w.set_alignment(a).unwrap();
    }
    for (i, t) in TENSORS.iter().enumerate() {
        w.add_tensor(t.name, t.ty, t.dims, pattern(nbytes(t), i as u8)).unwrap();
    }
    w.to_bytes()
}

fn check_tensors(f: &File<'_>, alignment: usize) {
    assert_eq!(f.alignment(), alignment);
    assert_eq!(f.data_offset() % alignment, 0);
    assert_eq!(f.tensor_count(), TENSORS.len());
    let got: Vec<_> = f.tensors().collect();
    assert_eq!(got.len(), TENSORS.len());
    for (i, (g, t)) in got.iter().zip(TENSORS).enumerate() {
        assert_eq!(g.name, t.name);
        assert_eq!(g.ty, t.ty);
        assert_eq!(g.shape(), t.dims);
        assert_eq!(g.n_dims, t.dims.len());
        let mut dims = [1u64; 4];
        dims[..t.dims.len()].copy_from_slice(t.dims);
        assert_eq!(g.dims, dims);
        assert_eq!(g.n_elements(), t.dims.iter().product::<u64>());
        assert_eq!(g.row_len(), t.dims[0]);
        assert_eq!(g.n_rows(), t.dims[1..].iter().product::<u64>());
        assert_eq!(g.offset % alignment as u64, 0, "{}", t.name);
        assert_eq!(g.data, &pattern(nbytes(t), i as u8)[..], "{}", t.name);
        let start = g.data.as_ptr() as usize - f.bytes().as_ptr() as usize;
        assert_eq!(start, f.data_offset() + g.offset as usize, "data is a view into the file at its offset");
        let by_name = f.tensor(t.name).unwrap();
        assert_eq!((by_name.name, by_name.offset, by_name.data), (g.name, g.offset, g.data));
    }
    assert!(f.tensor("missing").is_none());
}

#[test]
fn tensors_round_trip_with_default_alignment() {
    let bytes = tensor_file(None);
    let f = File::parse(&bytes).unwrap();
    check_tensors(&f, 32);
    assert_eq!(f.get("general.alignment"), None);
}

#[test]
fn alignment_variants() {
    for a in [1u32, 2, 4, 8, 16, 64, 128, 256, 4096] {
        let bytes = tensor_file(Some(a));
        let f = File::parse(&bytes).unwrap_or_else(|e| panic!("alignment {a}: {e}"));
        check_tensors(&f, a as usize);
        assert_eq!(f.get_u64("general.alignment"), Some(a as u64));
    }
}

#[test]
fn f32_slice_only_when_aligned_but_iterators_always_work() {
    let mut w = Writer::new();
    let vals: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
    let ivals: Vec<i32> = (0..37).map(|i| i * 1000 - 7).collect();
    w.add_f32_array("scores", &vals).unwrap().add_i32_array("types", &ivals).unwrap();
    let bytes = w.to_bytes();
    let mut saw = [false, false];
    for shift in 0..4 {
        let (buf, s) = placed(&bytes, shift);
        let view = &bytemuck::cast_slice::<u128, u8>(&buf)[s..s + bytes.len()];
        let f = File::parse(view).unwrap();
        let a = f.get_array("scores").unwrap();
        assert_eq!(a.f32_iter().unwrap().collect::<Vec<_>>(), vals, "shift {shift}");
        let addr = a.raw_bytes().as_ptr() as usize;
        match a.as_f32_slice() {
            Some(s) => {
                assert_eq!(addr % 4, 0);
                assert_eq!(s, &vals[..]);
                assert_eq!(s.as_ptr() as usize, addr, "borrowed, not copied");
                saw[0] = true;
            }
            None => {
                assert_ne!(addr % 4, 0, "aligned f32 array must be viewable as &[f32]");
                saw[1] = true;
            }
        }
        let t = f.get_array("types").unwrap();
        assert_eq!(t.i32_iter().unwrap().collect::<Vec<_>>(), ivals);
        assert_eq!(t.as_i32_slice().is_some(), (t.raw_bytes().as_ptr() as usize).is_multiple_of(4));
        if let Some(s) = t.as_i32_slice() {
            assert_eq!(s, &ivals[..]);
        }
    }
    assert_eq!(saw, [true, true], "both the aligned and the misaligned case were exercised");
}

#[test]
fn with_layout_re_views_without_parsing_and_never_panics_on_other_bytes() {
    let bytes = tensor_file(Some(64));
    let parsed = File::parse(&bytes).unwrap();
    let layout = parsed.layout();
    let again = File::with_layout(&bytes, layout);
    assert_eq!(again.metadata().collect::<Vec<_>>(), parsed.metadata().collect::<Vec<_>>());
    check_tensors(&again, 64);

    // Other bytes with this layout: bounded reads, early ends, no panic.
    let last = parsed.tensors().last().unwrap();
    let last_end = layout.data_offset + last.offset as usize + last.data.len();
    for cut in [0, 10, layout.kv_offset + 3, layout.tensor_info_offset + 5, layout.data_offset + 40, last_end - 1] {
        let f = File::with_layout(&bytes[..cut], layout);
        assert!(f.tensors().count() < TENSORS.len(), "cut at {cut}");
        let _ = f.metadata().count();
        let _ = f.get("general.architecture");
    }
    let mut garbage = bytes.clone();
    for (i, b) in garbage.iter_mut().enumerate().skip(24) {
        *b = (i as u8).wrapping_mul(31) ^ 0xa5;
    }
    let f = File::with_layout(&garbage, layout);
    let _ = f.metadata().count();
    let _ = f.tensors().count();
}

#[test]
fn model_from_static_and_open() {
    let bytes = tensor_file(None);
    let stat: &'static [u8] = Box::leak(bytes.clone().into_boxed_slice());
    let m = Model::from_static(stat).unwrap();
    assert_eq!(m.file_size(), bytes.len() as u64);
    assert!(m.path().is_none());
    check_tensors(&m.gguf(), 32);
    assert_eq!(m.gguf().get_str("general.architecture"), Some("test"));

    let dir = std::env::temp_dir().join(format!("ember-gguf-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.gguf");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let n = full_writer_with_tensors().write_to(&mut out).unwrap();
    drop(out);
    assert_eq!(n, std::fs::metadata(&path).unwrap().len());
    let m = Model::open(&path).unwrap();
    assert_eq!(m.path(), Some(path.as_path()));
    assert_eq!(m.bytes(), &full_writer_with_tensors().to_bytes()[..], "write_to and to_bytes agree");
    check_tensors(&m.gguf(), 32);
    assert_eq!(m.gguf().get_str("t.str"), Some("héllo ✓ wörld"));

    let missing = Model::open(dir.join("nope.gguf")).unwrap_err();
    assert!(missing.to_string().contains("open failed"), "{missing}");
    std::fs::write(dir.join("bad.gguf"), b"GGUF\x01\0\0\0").unwrap();
    let bad = Model::open(dir.join("bad.gguf")).unwrap_err();
    assert!(bad.to_string().contains("unsupported GGUF version 1"), "{bad}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn full_writer_with_tensors() -> Writer<'static> {
    let mut w = full_writer();
    for (i, t) in TENSORS.iter().enumerate() {
        w.add_tensor(t.name, t.ty, t.dims, pattern(nbytes(t), i as u8)).unwrap();
    }
    w
}

#[test]
fn writer_copies_metadata_from_a_file() {
    let src = full_writer().to_bytes();
    let f = File::parse(&src).unwrap();
    let mut w = Writer::new();
    for (k, v) in f.metadata() {
        w.add_value(k, v).unwrap();
    }
    assert_eq!(w.to_bytes(), src, "copying every entry reproduces the file byte for byte");
}

#[test]
fn writer_rejects_what_the_reader_would() {
    let mut w = Writer::new();
    w.add_u32("k", 1).unwrap();
    let e = w.add_u32("k", 2).unwrap_err().to_string();
    assert!(e.contains("duplicate metadata key 'k'"), "{e}");
    let e = w.set_alignment(48).unwrap_err().to_string();
    assert!(e.contains("general.alignment 48 is not a non-zero power of two"), "{e}");
    let e = w.set_alignment(0).unwrap_err().to_string();
    assert!(e.contains("not a non-zero power of two"), "{e}");
    let e = w.add_str("general.alignment", "32").unwrap_err().to_string();
    assert!(e.contains("general.alignment has type string"), "{e}");
    let bad = MetaValue::Array(ValueType::I32, vec![MetaValue::I32(1), MetaValue::F32(2.0)]);
    let e = w.add_meta("mixed", &bad).unwrap_err().to_string();
    assert!(e.contains("array of i32 has an element of type f32"), "{e}");

    w.add_tensor("t", GgmlType::F32, &[2], vec![0u8; 8]).unwrap();
    let e = w.add_tensor("t", GgmlType::F32, &[2], vec![0u8; 8]).unwrap_err().to_string();
    assert!(e.contains("duplicate tensor 't'"), "{e}");
    let e = w.add_tensor("u", GgmlType::F32, &[2], vec![0u8; 7]).unwrap_err().to_string();
    assert!(e.contains("tensor 'u': shape/size mismatch: data has 7 bytes, type and shape need 8"), "{e}");
    let e = w.add_tensor("v", GgmlType::Q4_0, &[33], vec![0u8; 18]).unwrap_err().to_string();
    assert!(e.contains("row length 33 is not a multiple of the Q4_0 block size 32"), "{e}");
    let e = w.add_tensor("w", GgmlType::F32, &[1, 1, 1, 1, 1], vec![0u8; 4]).unwrap_err().to_string();
    assert!(e.contains("has 5 dimensions"), "{e}");
    // The failed calls left nothing behind.
    let bytes = w.to_bytes();
    let f = File::parse(&bytes).unwrap();
    assert_eq!((f.metadata_count(), f.tensor_count()), (1, 1));
}

#[test]
fn big_string_array_parses_fast_and_without_per_element_work_after() {
    // Gemma 3 has 262144 tokens; build the same shape.
    let tokens: Vec<String> = (0..262_144).map(|i| format!("tok{i}")).collect();
    let mut w = Writer::new();
    w.add_str_array("tokenizer.ggml.tokens", &tokens).unwrap();
    w.add_f32_array("tokenizer.ggml.scores", &vec![0.25; tokens.len()]).unwrap();
    w.add_u32("after", 7).unwrap();
    let bytes = w.to_bytes();
    let t0 = std::time::Instant::now();
    let f = File::parse(&bytes).unwrap();
    let parse = t0.elapsed();
    let a = f.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(a.len(), 262_144);
    assert_eq!(a.strings().unwrap().nth(123_456), Some("tok123456"));
    assert_eq!(f.get_u64("after"), Some(7));
    let limit = if cfg!(debug_assertions) { 2000 } else { 50 };
    println!("parse of a 262144-string array: {parse:?}");
    assert!(parse.as_millis() < limit, "parse took {parse:?}");
}

#[test]
fn streamed_tensors_give_the_same_file() {
    // Declared with add_tensor_info, written by the caller after write_header_to.
    let mut w = Writer::new();
    w.add_str("general.architecture", "test").unwrap();
    w.set_alignment(64).unwrap();
    for t in TENSORS {
        w.add_tensor_info(t.name, t.ty, t.dims).unwrap();
    }
    let mut out = Vec::new();
    let header = w.write_header_to(&mut out).unwrap();
    assert_eq!(header, out.len() as u64);
    for (i, t) in TENSORS.iter().enumerate() {
        let d = pattern(nbytes(t), i as u8);
        out.extend_from_slice(&d);
        out.resize(out.len() + w.padding(d.len() as u64) as usize, 0);
    }
    assert_eq!(out, tensor_file(Some(64)), "streamed and in-memory writers produce the same bytes");
    assert_eq!(File::parse(&out).unwrap().data_offset() as u64, header);
    // to_bytes writes zeros for streamed tensors.
    let zeros = File::parse(&w.to_bytes()).unwrap().tensors().all(|t| t.data.iter().all(|&b| b == 0));
    assert!(zeros);
    // The declared shape is checked like add_tensor's.
    let e = w.add_tensor_info("q", GgmlType::Q4_0, &[31]).unwrap_err().to_string();
    assert!(e.contains("row length 31 is not a multiple of the Q4_0 block size 32"), "{e}");
    let e = w.add_tensor_info("token_embd.weight", GgmlType::F32, &[1]).unwrap_err().to_string();
    assert!(e.contains("duplicate tensor 'token_embd.weight'"), "{e}");
}
