//! GGUF reader (and, with `alloc`, writer). See the GGUF specification in
//! ggml's `docs/gguf.md`.
