//! Board profiles and detection. (Filled in by the foundation work.)
