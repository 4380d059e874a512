//! The reader's limits. Each one is far above what real models use and low
//! enough that a crafted file cannot make parsing take unbounded time or memory.

/// Longest metadata key, in bytes.
pub const MAX_KEY: u64 = 64 * 1024;
/// Longest tensor name, in bytes (llama.cpp itself stops at 63).
pub const MAX_NAME: u64 = 64 * 1024;
/// Longest string value (also each string inside an array), in bytes. Chat
/// templates, the longest strings in real files, are tens of KiB.
pub const MAX_VALUE_STRING: u64 = 1024 * 1024;
/// Deepest nesting of arrays inside arrays (real files use 1 level).
pub const MAX_ARRAY_DEPTH: u32 = 8;

/// Most metadata entries. Real files have tens. Without `alloc` duplicate
/// keys are found by comparing pairs, so the limit is lower there.
#[cfg(feature = "alloc")]
pub const MAX_KVS: u64 = 1 << 16;
/// Most metadata entries. Real files have tens. Without `alloc` duplicate
/// keys are found by comparing pairs, so the limit is lower there.
#[cfg(not(feature = "alloc"))]
pub const MAX_KVS: u64 = 1 << 10;

/// Most tensors. Real files have hundreds to a few thousand. Without `alloc`
/// duplicate names and overlaps are found by comparing pairs (in chunks, see
/// `File::parse`), so the limit is lower there.
#[cfg(feature = "alloc")]
pub const MAX_TENSORS: u64 = 1 << 16;
/// Most tensors. Real files have hundreds to a few thousand. Without `alloc`
/// duplicate names and overlaps are found by comparing pairs (in chunks, see
/// `File::parse`), so the limit is lower there.
#[cfg(not(feature = "alloc"))]
pub const MAX_TENSORS: u64 = 1 << 12;

/// Most dimensions of a tensor (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// Alignment of tensor data when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: usize = 32;

/// Fewest bytes a metadata entry takes: key length (8), type (4), a 1-byte value.
pub(crate) const MIN_KV_SIZE: usize = 8 + 4 + 1;
/// Fewest bytes a tensor info takes: name length (8), n_dims (4), one dim (8), type (4), offset (8).
pub(crate) const MIN_TENSOR_INFO_SIZE: usize = 8 + 4 + 8 + 4 + 8;
