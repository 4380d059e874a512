//! Decoder-only transformer models: [`Config`] (hyperparameters and switches
//! from GGUF metadata), [`Weights`] (views into the file), and [`forward()`]
//! (the one decoder forward pass every supported architecture runs).

pub mod config;
pub mod forward;
pub mod weights;

pub use config::{ActFormats, Activation, Arch, Config, SwaPattern};
pub use forward::forward;
pub use weights::{LayerWeights, Weights};
