//! The bounded cursor every GGUF read goes through: each read checks the
//! bytes are there before slicing, so a crafted file can make a read fail
//! but never read out of bounds.

use super::error::GgufError;

/// A failed read: where, and what was wrong. The parser adds the [`super::Location`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Fail {
    pub offset: usize,
    pub kind: GgufError,
}

/// A position in a byte slice; reads advance it only when they succeed.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8], pos: usize) -> Self {
        Cursor { bytes, pos }
    }

    /// Bytes left after the cursor.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub fn fail(&self, kind: GgufError) -> Fail {
        Fail { offset: self.pos, kind }
    }

    /// The next `n` bytes, or `Truncated` naming `what`.
    pub fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], Fail> {
        let available = self.remaining();
        if n > available as u64 {
            return Err(self.fail(GgufError::Truncated { what, needed: n, available: available as u64 }));
        }
        let start = self.pos;
        let end = start + n as usize; // n <= remaining, so no overflow and end <= len
        self.pos = end;
        Ok(self.bytes.get(start..end).unwrap_or(&[]))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Fail> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Fail> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Fail> {
        self.array(what).map(u16::from_le_bytes)
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Fail> {
        self.array(what).map(u32::from_le_bytes)
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Fail> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// The raw bytes of a GGUF string (u64 length + bytes), length checked against `max`.
    pub fn string_bytes(&mut self, max: u64, what: &'static str) -> Result<&'a [u8], Fail> {
        let at = self.pos;
        let len = self.u64("string length")?;
        if len > max {
            return Err(Fail { offset: at, kind: GgufError::StringTooLong { len, max } });
        }
        self.take(len, what)
    }

    /// A GGUF string, length checked against `max`, UTF-8 validated.
    pub fn string(&mut self, max: u64, what: &'static str) -> Result<&'a str, Fail> {
        let at = self.pos;
        let b = self.string_bytes(max, what)?;
        core::str::from_utf8(b).map_err(|_| Fail { offset: at, kind: GgufError::BadUtf8 })
    }
}
