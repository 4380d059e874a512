//! A fixed-capacity string for error messages: keeps `no_std` errors able to
//! name a tensor or a metadata key without a heap.

use core::fmt;

/// Capacity of a [`ShortStr`] in bytes. Longer names are cut at a char
/// boundary and printed with a trailing `…`. Tensor names and keys of real
/// models are almost all shorter; the cap keeps `crate::Error` under 128
/// bytes (it travels in every `Result` of the crate).
pub const SHORT_STR_CAP: usize = 40;

/// A name copied into a fixed inline buffer (at most [`SHORT_STR_CAP`] bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortStr {
    buf: [u8; SHORT_STR_CAP],
    len: u8,
    truncated: bool,
}

impl ShortStr {
    /// The empty name (used when the name itself could not be read).
    pub const EMPTY: ShortStr = ShortStr { buf: [0; SHORT_STR_CAP], len: 0, truncated: false };

    /// Copies `s`, cutting it at the last char boundary that fits.
    pub fn new(s: &str) -> ShortStr {
        let mut end = s.len().min(SHORT_STR_CAP);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut buf = [0; SHORT_STR_CAP];
        buf[..end].copy_from_slice(&s.as_bytes()[..end]);
        ShortStr { buf, len: end as u8, truncated: end < s.len() }
    }

    /// Copies the valid UTF-8 prefix of raw bytes (for names that failed UTF-8 validation).
    pub fn from_bytes_lossy(b: &[u8]) -> ShortStr {
        match core::str::from_utf8(b) {
            Ok(s) => ShortStr::new(s),
            Err(e) => {
                let mut s = ShortStr::new(core::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or(""));
                s.truncated = true;
                s
            }
        }
    }

    /// The stored (possibly cut) text.
    pub fn as_str(&self) -> &str {
        // `new` only stores whole chars, so this never fails; "" keeps it panic-free regardless.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }

    /// True if the original name was longer than what is stored.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && !self.truncated
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        !self.truncated && self.as_str() == other
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `N - 2` ASCII bytes then "é": the 2-byte char ends exactly at `N`.
    fn alloc_free_concat<const N: usize>() -> [u8; N] {
        let mut b = [b'a'; N];
        b[N - 2..].copy_from_slice("é".as_bytes());
        b
    }

    #[test]
    fn cuts_at_char_boundary() {
        let long = "é".repeat(SHORT_STR_CAP); // 2 bytes each
        let s = ShortStr::new(&long);
        assert!(s.is_truncated());
        assert_eq!(s.as_str().len(), SHORT_STR_CAP);
        let odd = alloc_free_concat::<{ SHORT_STR_CAP + 1 }>();
        let s = ShortStr::new(core::str::from_utf8(&odd).unwrap());
        assert_eq!(s.as_str().len(), SHORT_STR_CAP - 1, "a 2-byte char straddling the cap is dropped whole");
        assert_eq!(ShortStr::new("blk.0.attn_q.weight"), "blk.0.attn_q.weight");
        let bad = ShortStr::from_bytes_lossy(b"ab\xffcd");
        assert_eq!(bad.as_str(), "ab");
        assert!(bad.is_truncated());
    }
}
