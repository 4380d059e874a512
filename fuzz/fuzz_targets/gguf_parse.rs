//! Fuzz target: `gguf::File::parse` on arbitrary bytes, then a walk over
//! everything a valid file hands out. Parsing must never panic; a file it
//! accepts must yield every metadata entry and tensor it announced, with
//! tensor data inside the input, and re-viewing it through its `Layout`
//! must give the same answers.
#![no_main]

use ember::gguf::{File, Value};
use libfuzzer_sys::fuzz_target;

fn walk(v: Value<'_>, depth: usize) {
    if let Value::Array(a) = v {
        assert!(depth < 16);
        let mut n = 0;
        for e in a.iter() {
            walk(e, depth + 1);
            n += 1;
        }
        assert_eq!(n, a.len());
        if let Some(s) = a.strings() {
            assert_eq!(s.count(), a.len());
        }
        if let Some(f) = a.f32_iter() {
            assert_eq!(f.count(), a.len());
        }
        if let Some(s) = a.as_f32_slice() {
            assert_eq!(s.len(), a.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = match File::parse(data) {
        Ok(f) => f,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("invalid GGUF: "));
            return;
        }
    };
    let mut n_kv = 0;
    for (k, v) in f.metadata() {
        assert_eq!(f.get(k).map(|g| g.value_type()), Some(v.value_type()));
        walk(v, 0);
        n_kv += 1;
    }
    assert_eq!(n_kv, f.metadata_count());
    let base = data.as_ptr() as usize;
    let mut n_t = 0;
    for t in f.tensors() {
        let start = t.data.as_ptr() as usize - base;
        assert_eq!(start, f.data_offset() + t.offset as usize);
        assert!(start + t.data.len() <= data.len());
        assert_eq!(t.offset % f.alignment() as u64, 0);
        assert!(t.n_dims >= 1 && t.n_dims <= 4);
        assert_eq!(f.tensor(t.name).map(|x| x.offset), Some(t.offset));
        n_t += 1;
    }
    assert_eq!(n_t, f.tensor_count());
    let again = File::with_layout(data, f.layout());
    assert_eq!(again.tensors().count(), n_t);
    assert_eq!(again.metadata().count(), n_kv);
});
