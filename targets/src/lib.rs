#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cross;
mod detect;
mod profile;

pub use cross::CrossBuild;
pub use detect::{detect, detect_host, pi_generation, Detection};
pub use profile::{Profile, PROFILES};

#[cfg(test)]
mod tests;
