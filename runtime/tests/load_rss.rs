//! Opening a real model maps it and parses only the header, metadata and
//! tensor infos: it takes milliseconds and the process's resident memory
//! (VmRSS now, VmHWM at its peak) stays far below the file size, because no
//! tensor data is read or copied.
//!
//! One test per binary on purpose: VmHWM is a process-wide high-water mark.

mod common;

use ember::Model;
use std::time::Instant;

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (this test needs Linux)");
    let line = s.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} missing"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn open_gemma3_is_fast_and_copies_no_tensor_data() {
    let path = common::gemma3();
    let file_size = std::fs::metadata(&path).unwrap().len();
    assert!(file_size > 200 << 20, "expected the ~250 MB Gemma 3 file, got {file_size} bytes");

    let rss_before = status_bytes("VmRSS:");
    let t = Instant::now();
    let model = Model::open(&path).unwrap();
    let open_time = t.elapsed();
    let rss_after = status_bytes("VmRSS:");
    let hwm = status_bytes("VmHWM:");

    let f = model.gguf();
    assert_eq!(model.file_size(), file_size);
    assert_eq!(model.path(), Some(path.as_path()));
    assert_eq!(f.tensor_count(), 236);

    // Zero-copy: every tensor's bytes are a view into the one mapping.
    let base = model.bytes().as_ptr() as usize;
    let mut tensor_bytes = 0u64;
    for t in f.tensors() {
        let p = t.data.as_ptr() as usize;
        assert_eq!(p - base, f.data_offset() + t.offset as usize, "{} is not a view into the map", t.name);
        tensor_bytes += t.data.len() as u64;
    }
    let rss_walked = status_bytes("VmRSS:");

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "file {:.1} MiB ({:.1} MiB tensor data); open {:?}; VmRSS {:.1} -> {:.1} MiB (after walking all tensor infos {:.1}); VmHWM {:.1} MiB",
        mib(file_size),
        mib(tensor_bytes),
        open_time,
        mib(rss_before),
        mib(rss_after),
        mib(rss_walked),
        mib(hwm)
    );
    assert!(tensor_bytes > file_size * 9 / 10);
    // The metadata (262144 tokens, scores, types) is ~6 MB and is read; the tensor data is not.
    let grown = rss_walked.saturating_sub(rss_before);
    assert!(grown < file_size / 10, "RSS grew by {:.1} MiB on open", mib(grown));
    assert!(hwm < file_size / 4, "peak RSS {:.1} MiB is not far below the file size", mib(hwm));
    // Milliseconds in release; a debug build of the parser is ~10x slower.
    let limit_ms = if cfg!(debug_assertions) { 1500 } else { 100 };
    assert!(open_time.as_millis() < limit_ms, "open took {open_time:?}");
}
