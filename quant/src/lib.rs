#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "std")]
extern crate std;

pub mod act;
pub mod arch;
pub mod attn;
pub mod attn_tile;
pub mod cast;
mod error;
pub mod floats;
mod k_common;
pub mod kernels;
pub mod matmul;
pub mod types;

pub mod iq4_nl;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_1;
pub mod q8_k;

pub use error::Error;
pub use kernels::{Kernels, Tier};
pub use types::{GgmlType, QK_K};

pub use half::{bf16, f16};
