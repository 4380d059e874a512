//! Files made by ember's `gguf::Writer` are read by llama.cpp's own Python
//! reader (`gguf.GGUFReader` from llama.cpp's gguf-py, via
//! `tests/gguf_python_check.py`) with the same values, types, tensors and
//! offsets. Needs `python3` with the `gguf` package (the README's test command
//! installs it); the test fails, loudly, if it is missing. The other
//! direction too: a file written by gguf-py's `GGUFWriter` is read by ember.

use ember::gguf::{File, MetaValue, ValueType, Writer};
use ember::quant::GgmlType;
use serde_json::Value as J;
use std::process::Command;

struct T {
    name: &'static str,
    ty: GgmlType,
    dims: &'static [u64],
}

const TENSORS: &[T] = &[
    T { name: "token_embd.weight", ty: GgmlType::Q8_0, dims: &[64, 3] },
    T { name: "blk.0.attn_norm.weight", ty: GgmlType::F32, dims: &[7] },
    T { name: "blk.0.ffn_down.weight", ty: GgmlType::Q4_K, dims: &[256, 2] },
    T { name: "blk.0.ffn_up.weight", ty: GgmlType::Q6_K, dims: &[256, 1] },
    T { name: "blk.0.attn_q.weight", ty: GgmlType::Q4_0, dims: &[32, 2, 2] },
    T { name: "f16.weight", ty: GgmlType::F16, dims: &[3, 5] },
    T { name: "i8.4d", ty: GgmlType::I8, dims: &[2, 1, 3, 2] },
];

fn data(t: &T, seed: usize) -> Vec<u8> {
    let n = t.ty.row_bytes(t.dims[0] as usize).unwrap() * t.dims[1..].iter().product::<u64>() as usize;
    // F16 gets finite values (0x3c00 = 1.0 plus small mantissa noise); the rest any bytes.
    (0..n).map(|i| if t.ty == GgmlType::F16 && i % 2 == 1 { 0x3c } else { (i * 13 + seed * 101) as u8 }).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write_file(alignment: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.add_str("general.architecture", "llama").unwrap();
    w.set_alignment(alignment).unwrap();
    w.add_meta("t.u8", &MetaValue::U8(200)).unwrap();
    w.add_meta("t.i8", &MetaValue::I8(-100)).unwrap();
    w.add_meta("t.u16", &MetaValue::U16(60000)).unwrap();
    w.add_meta("t.i16", &MetaValue::I16(-30000)).unwrap();
    w.add_u32("t.u32", 4_000_000_000).unwrap();
    w.add_i32("t.i32", -2_000_000_000).unwrap();
    w.add_f32("t.f32", 0.1).unwrap();
    w.add_bool("t.bool", true).unwrap();
    w.add_str("t.str", "héllo ✓").unwrap();
    w.add_u64("t.u64", u64::MAX).unwrap();
    w.add_meta("t.i64", &MetaValue::I64(i64::MIN)).unwrap();
    w.add_meta("t.f64", &MetaValue::F64(-2.5e-300)).unwrap();
    w.add_str_array("tokenizer.ggml.tokens", ["<s>", "</s>", "▁a", ""]).unwrap();
    w.add_f32_array("tokenizer.ggml.scores", &[0.0, -1.5, 3.25, 1e-7]).unwrap();
    w.add_i32_array("tokenizer.ggml.token_type", &[3, 3, 1, 1]).unwrap();
    w.add_meta("t.bools", &MetaValue::Array(ValueType::Bool, vec![MetaValue::Bool(false), MetaValue::Bool(true)]))
        .unwrap();
    w.add_meta(
        "t.nested",
        &MetaValue::Array(
            ValueType::Array,
            vec![
                MetaValue::Array(ValueType::I32, vec![MetaValue::I32(1), MetaValue::I32(2)]),
                MetaValue::Array(ValueType::I32, vec![MetaValue::I32(3)]),
            ],
        ),
    )
    .unwrap();
    for (i, t) in TENSORS.iter().enumerate() {
        w.add_tensor(t.name, t.ty, t.dims, data(t, i)).unwrap();
    }
    w.to_bytes()
}

fn python_read(bytes: &[u8], tag: &str) -> J {
    let dir = std::env::temp_dir().join(format!("ember-gguf-python-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.gguf");
    std::fs::write(&path, bytes).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gguf_python_check.py");
    let out = Command::new("python3").arg(script).arg(&path).output().unwrap_or_else(|e| {
        panic!("cannot run python3 ({e}): this test needs python3 with the `gguf` package (pip install gguf)")
    });
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "gguf.GGUFReader rejected ember's file (or python3 lacks the `gguf` package: pip install gguf):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// JSON equality with numbers compared by value: `serde_json` is built with
/// `arbitrary_precision` here (gguf-rs, another dev-dependency, turns it on),
/// which would otherwise compare `1e-07` and `1e-7` as text.
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_u64(), y.as_u64(), x.as_i64(), y.as_i64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => x.as_f64().is_some() && x.as_f64() == y.as_f64(),
        },
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        _ => a == b,
    }
}

/// The (name, value-type ids, contents) llama.cpp's reader must report, written down independently of our reader.
fn expected_fields(alignment: u32) -> Vec<(&'static str, Vec<u64>, J)> {
    use serde_json::json;
    vec![
        ("general.architecture", vec![8], json!("llama")),
        ("general.alignment", vec![4], json!(alignment)),
        ("t.u8", vec![0], json!(200)),
        ("t.i8", vec![1], json!(-100)),
        ("t.u16", vec![2], json!(60000)),
        ("t.i16", vec![3], json!(-30000)),
        ("t.u32", vec![4], json!(4_000_000_000u32)),
        ("t.i32", vec![5], json!(-2_000_000_000)),
        ("t.f32", vec![6], json!(0.1f32 as f64)),
        ("t.bool", vec![7], json!(true)),
        ("t.str", vec![8], json!("héllo ✓")),
        ("t.u64", vec![10], json!(u64::MAX)),
        ("t.i64", vec![11], json!(i64::MIN)),
        ("t.f64", vec![12], json!(-2.5e-300)),
        ("tokenizer.ggml.tokens", vec![9, 8], json!(["<s>", "</s>", "▁a", ""])),
        ("tokenizer.ggml.scores", vec![9, 6], json!([0.0, -1.5, 3.25, 1e-7f32 as f64])),
        ("tokenizer.ggml.token_type", vec![9, 5], json!([3, 3, 1, 1])),
        ("t.bools", vec![9, 7], json!([false, true])),
        // gguf-py flattens nested arrays (its own FIXME), and lists the types along the way.
        ("t.nested", vec![9, 9, 5], json!([1, 2, 3])),
    ]
}

#[test]
fn llama_cpp_python_reader_accepts_ember_files() {
    for alignment in [32u32, 64, 1, 256] {
        let bytes = write_file(alignment);
        let py = python_read(&bytes, &alignment.to_string());
        let ours = File::parse(&bytes).unwrap();
        eprintln!("gguf-py {} read a {}-byte file, alignment {alignment}", py["gguf_version"], bytes.len());

        assert_eq!(py["alignment"], alignment as u64);
        assert_eq!(py["data_offset"], ours.data_offset() as u64);

        let fields = py["fields"].as_array().unwrap();
        let expected = expected_fields(alignment);
        assert_eq!(fields.len(), expected.len());
        for (f, (name, types, value)) in fields.iter().zip(&expected) {
            assert_eq!(f["name"], *name);
            assert_eq!(f["types"], serde_json::json!(types), "{name}: value types");
            assert!(same(&f["value"], value), "{name}: contents {} != expected {value}", f["value"]);
        }

        let tensors = py["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), TENSORS.len());
        for (i, (p, t)) in tensors.iter().zip(TENSORS).enumerate() {
            assert_eq!(p["name"], t.name);
            assert_eq!(p["type"], t.ty.id());
            assert_eq!(p["shape"], serde_json::json!(t.dims), "{}: shape (ggml order)", t.name);
            let d = data(t, i);
            assert_eq!(p["n_bytes"], d.len());
            assert_eq!(p["data_hex"], hex(&d), "{}: data", t.name);
            let abs = p["data_offset"].as_u64().unwrap();
            assert_eq!(abs % alignment as u64, 0, "{}: data aligned in the file", t.name);
            let o = ours.tensor(t.name).unwrap();
            assert_eq!(abs, ours.data_offset() as u64 + o.offset);
        }
    }
}

#[test]
fn ember_reads_files_written_by_llama_cpp_python_writer() {
    let dir = std::env::temp_dir().join(format!("ember-gguf-pywrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("py.gguf");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gguf_python_check.py");
    let out = Command::new("python3").arg(script).arg("write").arg(&path).output().expect("python3 with `gguf`");
    assert!(out.status.success(), "gguf-py writer failed: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let f = File::parse(&bytes).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.get_str("general.architecture"), Some("llama"));
    assert_eq!(f.get("t.u8"), Some(ember::gguf::Value::U8(7)));
    assert_eq!(f.get("t.i16"), Some(ember::gguf::Value::I16(-300)));
    assert_eq!(f.get_u64("t.u32"), Some(123456));
    assert_eq!(f.get("t.i64"), Some(ember::gguf::Value::I64(-(1 << 40))));
    assert_eq!(f.get("t.f32"), Some(ember::gguf::Value::F32(0.5)));
    assert_eq!(f.get("t.f64"), Some(ember::gguf::Value::F64(1.25)));
    assert_eq!(f.get_bool("t.bool"), Some(false));
    assert_eq!(f.get_str("t.str"), Some("日本語"));
    let toks: Vec<&str> = f.get_array("tokenizer.ggml.tokens").unwrap().strings().unwrap().collect();
    assert_eq!(toks, ["<unk>", "▁hi", "!"]);
    let scores: Vec<f32> = f.get_array("tokenizer.ggml.scores").unwrap().f32_iter().unwrap().collect();
    assert_eq!(scores, [0.0, -1.25, -2.5]);
    let ints: Vec<i64> = f.get_array("t.ints").unwrap().int_iter().unwrap().collect();
    assert_eq!(ints, [4, 5, 6]);

    assert_eq!(f.tensor_count(), 3);
    let a = f.tensor("a.weight").unwrap();
    assert_eq!((a.ty, a.shape()), (GgmlType::F32, &[4u64, 3][..]), "numpy (3, 4) is ggml [4, 3]");
    let vals: Vec<f32> = a.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals, (0..12).map(|i| i as f32).collect::<Vec<_>>());
    let b = f.tensor("b.weight").unwrap();
    assert_eq!((b.ty, b.shape(), b.data.len()), (GgmlType::F16, &[5u64][..], 10));
    let c = f.tensor("c.weight").unwrap();
    assert_eq!((c.ty, c.shape()), (GgmlType::Q8_0, &[32u64, 2][..]));
    assert_eq!(c.data, (0..68).map(|i| i as u8).collect::<Vec<_>>());
    for t in f.tensors() {
        assert_eq!((f.data_offset() as u64 + t.offset) % 64, 0, "{}", t.name);
    }
}
