#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "std")]
pub mod cache;
#[cfg(feature = "std")]
pub mod chat;
mod error;
pub mod gguf;
mod loader;
#[cfg(feature = "std")]
pub mod quantize;
#[cfg(feature = "alloc")]
pub mod tokenizer;

pub mod kv_cache;
pub mod memory;
pub mod model;
pub mod ops;
pub mod perplexity;
pub mod sampler;
#[cfg(feature = "alloc")]
pub mod session;
pub mod threads;

pub use ember_quant as quant;
pub use error::{Error, Number};
pub use loader::Model;
