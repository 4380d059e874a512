//! The reader's checks as a `no_std` build without `alloc` runs them
//! (duplicates and overlaps found by chunked pairwise comparison instead of
//! sorting). Run it both ways:
//!
//! ```text
//! cargo test -p ember --test gguf_noalloc                          # alloc: sorting
//! cargo test -p ember --no-default-features --test gguf_noalloc    # no alloc: chunked pairs
//! ```
//!
//! Files are assembled by hand here (the writer needs `alloc`); the real
//! models are read with `std::fs::read` (the loader needs `std`).

mod common;

use ember::gguf::{File, GgufError};
use ember::Error;

const MODE: &str = if cfg!(feature = "alloc") { "alloc (sorting)" } else { "no alloc (chunked pairs)" };

/// A GGUF v3 file with `n` tensors `t000..` (F32 [1], 4 bytes, data at 32 * i),
/// and metadata keys `k000..` (u32).
fn build(n_kv: usize, n: usize, edit: impl Fn(usize, &mut String, &mut u64)) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&(n as u64).to_le_bytes());
    b.extend_from_slice(&(n_kv as u64).to_le_bytes());
    for i in 0..n_kv {
        let mut key = format!("k{i:03}");
        let mut unused = 0;
        edit(usize::MAX - i, &mut key, &mut unused); // keys get "indices" from the top so edits can tell them apart
        b.extend_from_slice(&(key.len() as u64).to_le_bytes());
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&(i as u32).to_le_bytes());
    }
    for i in 0..n {
        let mut name = format!("t{i:03}");
        let mut offset = 32 * i as u64;
        edit(i, &mut name, &mut offset);
        b.extend_from_slice(&(name.len() as u64).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // F32
        b.extend_from_slice(&offset.to_le_bytes());
    }
    b.resize(b.len().next_multiple_of(32) + 32 * n, 0xab);
    b
}

fn kind(e: &Error) -> GgufError {
    match e {
        Error::Gguf { kind, .. } => *kind,
        e => panic!("{e:?}"),
    }
}

#[test]
fn valid_files_in_and_out_of_order() {
    eprintln!("checks under test: {MODE}");
    let f = build(70, 100, |_, _, _| {});
    let f = File::parse(&f).unwrap();
    assert_eq!((f.metadata_count(), f.tensor_count()), (70, 100));
    // Reverse order of data: valid, and takes the non-monotonic overlap check.
    let b = build(3, 100, |i, _, off| {
        if i < 100 {
            *off = 32 * (99 - i as u64)
        }
    });
    let f = File::parse(&b).unwrap();
    assert_eq!(f.tensor("t000").unwrap().offset, 32 * 99);
}

#[test]
fn duplicates_and_overlaps_are_found() {
    eprintln!("checks under test: {MODE}");
    for (i, j) in [(0usize, 1usize), (5, 77), (31, 32), (40, 99)] {
        let b = build(100, 3, |x, key, _| {
            if x == usize::MAX - j {
                *key = format!("k{i:03}")
            }
        });
        let e = File::parse(&b).unwrap_err();
        assert_eq!(kind(&e), GgufError::DuplicateKey { first: i as u64 }, "{e}");
        assert!(e.to_string().contains(&format!("duplicate metadata key 'k{i:03}'")));

        let b = build(1, 100, |x, name, _| {
            if x == j {
                *name = format!("t{i:03}")
            }
        });
        let e = File::parse(&b).unwrap_err();
        assert_eq!(kind(&e), GgufError::DuplicateTensor { first: i as u64 }, "{e}");
        assert!(e.to_string().contains(&format!("duplicate tensor 't{i:03}'")), "{e}");

        let b = build(1, 100, |x, _, off| {
            if x == j {
                *off = 32 * i as u64
            }
        });
        let e = File::parse(&b).unwrap_err();
        assert!(matches!(kind(&e), GgufError::Overlap { other, .. } if other == i as u64), "{e}");
        assert!(
            e.to_string().contains(&format!("tensor 't{j:03}': data overlaps the data of tensor 't{i:03}'")),
            "{e}"
        );
    }
}

#[test]
fn real_models_parse() {
    eprintln!("checks under test: {MODE}");
    for (path, n, arch) in [(common::smollm2(), 272, "llama"), (common::gemma3(), 236, "gemma3")] {
        let bytes = std::fs::read(&path).unwrap();
        let f = File::parse(&bytes).unwrap();
        assert_eq!(f.tensor_count(), n);
        assert_eq!(f.tensors().count(), n);
        assert_eq!(f.get_str("general.architecture"), Some(arch));
    }
}
