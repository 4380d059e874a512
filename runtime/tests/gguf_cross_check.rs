//! Our reader against an independent one, the `gguf-rs` crate, on the real
//! models: both must agree on every metadata key and value, and on every
//! tensor's name, type, shape, offset and size, and on the data offset.

mod common;

use ember::gguf::{Array, Value, ValueType};
use ember::Model;
use gguf_rs::get_gguf_container_array_size;
use serde_json::Value as J;
use std::path::Path;

/// Compares one scalar or string of ours with gguf-rs's JSON value.
fn same_scalar(ours: &Value<'_>, theirs: &J) -> bool {
    match ours {
        Value::Str(s) => theirs.as_str() == Some(*s),
        Value::Bool(b) => theirs.as_bool() == Some(*b),
        // gguf-rs builds serde_json with `arbitrary_precision`: a float is kept
        // as its shortest decimal text, which parses back to the same f32/f64.
        Value::F32(x) => theirs.to_string().parse::<f32>().ok() == Some(*x),
        Value::F64(x) => theirs.to_string().parse::<f64>().ok() == Some(*x),
        Value::U64(x) => theirs.as_u64() == Some(*x),
        v => match v.as_i64() {
            Some(i) => theirs.as_i64() == Some(i),
            None => false,
        },
    }
}

fn same_array(key: &str, ours: Array<'_>, theirs: &J) {
    let theirs = theirs.as_array().unwrap_or_else(|| panic!("{key}: gguf-rs has no array"));
    assert_eq!(ours.len(), theirs.len(), "{key}: array length");
    assert_ne!(ours.elem_type(), ValueType::Array, "{key}: real models have no nested arrays");
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        assert!(same_scalar(&o, t), "{key}[{i}]: ours {o:?}, gguf-rs {t}");
    }
    assert_eq!(ours.iter().count(), theirs.len(), "{key}: our iterator yields every element");
}

fn cross_check(path: &Path, n_tensors: usize, arch: &str) {
    let model = Model::open(path).unwrap();
    let ours = model.gguf();
    let mut container = get_gguf_container_array_size(path.to_str().unwrap(), u64::MAX).unwrap();
    let theirs = container.decode().unwrap();

    assert_eq!(theirs.get_version(), format!("v{}", ours.version()));
    assert_eq!(ours.get_str("general.architecture"), Some(arch));
    assert_eq!(theirs.model_family(), arch);

    // Metadata: same number of entries, same keys, same values.
    assert_eq!(ours.metadata_count() as u64, theirs.num_kv());
    assert_eq!(ours.metadata().count(), ours.metadata_count());
    let mut keys: Vec<&str> = ours.metadata().map(|(k, _)| k).collect();
    keys.sort_unstable();
    let theirs_keys: Vec<&str> = theirs.metadata().keys().map(String::as_str).collect();
    assert_eq!(keys, theirs_keys, "metadata keys");
    let mut compared = 0;
    for (key, value) in ours.metadata() {
        let t = &theirs.metadata()[key];
        match value {
            Value::Array(a) => same_array(key, a, t),
            v => assert!(same_scalar(&v, t), "{key}: ours {v:?}, gguf-rs {t}"),
        }
        compared += 1;
    }
    assert_eq!(compared, theirs.metadata().len());

    // Tensors: same count, and per tensor in file order the same name, type id, shape, offset and size.
    assert_eq!(ours.tensor_count(), n_tensors);
    assert_eq!(theirs.num_tensor(), n_tensors as u64);
    assert_eq!(theirs.tensors().len(), n_tensors);
    let mut n = 0;
    for (o, t) in ours.tensors().zip(theirs.tensors()) {
        assert_eq!(o.name, t.name);
        assert_eq!(o.ty.id(), t.kind, "{}: type", o.name);
        assert_eq!(o.shape(), &t.shape[..], "{}: shape", o.name);
        assert_eq!(o.n_dims as u32, t.n_dimensions, "{}: n_dims", o.name);
        assert_eq!(o.offset, t.offset, "{}: offset", o.name);
        assert_eq!(o.data.len() as u64, t.size, "{}: size in bytes", o.name);
        n += 1;
    }
    assert_eq!(n, n_tensors, "our iterator yields every tensor");
    assert_eq!(ours.data_offset() as u64, theirs.data_offset());
    assert_eq!(ours.alignment() as u64, theirs.alignment());
}

#[test]
fn smollm2_agrees_with_gguf_rs() {
    cross_check(&common::smollm2(), 272, "llama");
}

#[test]
fn gemma3_agrees_with_gguf_rs() {
    cross_check(&common::gemma3(), 236, "gemma3");
}
