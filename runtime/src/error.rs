use core::fmt;

/// Every error of the `ember` crate. no_std-friendly: no heap in any variant.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A kernel-level error (sizes, unsupported tensor types).
    Quant(ember_quant::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Quant(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<ember_quant::Error> for Error {
    fn from(e: ember_quant::Error) -> Self {
        Error::Quant(e)
    }
}
