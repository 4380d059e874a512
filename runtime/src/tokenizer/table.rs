//! Two small open-addressing hash tables the tokenizers look things up in:
//! [`StrTable`] (byte string ↔ dense id, strings stored in one arena) and
//! [`PairMap`] (a pair of ids → a value). `no_std` + `alloc`, no dependency.

use alloc::vec;
use alloc::vec::Vec;

const EMPTY: u32 = u32::MAX;
/// An empty [`StrTable`] slot.
const EMPTY_SLOT: u64 = u64::MAX;

/// Folded 64×64→128 multiply: mixes every input bit into the low bits used as the slot index.
#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let m = (a as u128).wrapping_mul(b as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

const K0: u64 = 0xa076_1d64_78bd_642f;
const K1: u64 = 0xe703_7ed1_a0b4_28db;

#[inline]
fn hash_bytes(s: &[u8]) -> u64 {
    let mut h = mix(s.len() as u64 ^ K0, K1);
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(w), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix(h ^ u64::from_le_bytes(w) ^ K0, K1);
    }
    h
}

/// Interned byte strings: id `i` is the `i`-th string pushed. Lookup by content in O(1).
pub(crate) struct StrTable {
    bytes: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is string `i` in `bytes`.
    offsets: Vec<u32>,
    /// Open addressing, linear probing: `hash tag << 32 | id`, so a probe that
    /// misses is decided without touching the strings.
    slots: Vec<u64>,
}

impl StrTable {
    /// An empty table sized for about `n` strings of `total_bytes` bytes in all.
    pub fn with_capacity(n: usize, total_bytes: usize) -> StrTable {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        StrTable { bytes: Vec::with_capacity(total_bytes), offsets, slots: vec![EMPTY_SLOT; slot_count(n)] }
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// String `id` (empty for an id out of range).
    #[inline]
    pub fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        if i + 1 >= self.offsets.len() {
            return &[];
        }
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The id of `s`, if it was interned.
    #[inline]
    pub fn find(&self, s: &[u8]) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let h = hash_bytes(s);
        let tag = h >> 32;
        let mut i = h as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY_SLOT {
                return None;
            }
            if slot >> 32 == tag && self.get(slot as u32) == s {
                return Some(slot as u32);
            }
            i = (i + 1) & mask;
        }
    }

    /// Interns `s`: `Ok(new id)`, or `Err(existing id)` if it is already there.
    /// `None` if the arena would pass 4 GiB (ids and offsets are `u32`).
    pub fn insert(&mut self, s: &[u8]) -> Option<Result<u32, u32>> {
        if let Some(id) = self.find(s) {
            return Some(Err(id));
        }
        let end = u32::try_from(self.bytes.len() + s.len()).ok()?;
        let id = u32::try_from(self.len()).ok().filter(|&id| id != EMPTY)?;
        self.bytes.extend_from_slice(s);
        self.offsets.push(end);
        if self.len() * 2 > self.slots.len() {
            self.rehash(self.slots.len() * 2);
        } else {
            self.place(id);
        }
        Some(Ok(id))
    }

    fn place(&mut self, id: u32) {
        let mask = self.slots.len() - 1;
        let h = hash_bytes(self.get(id));
        let mut i = h as usize & mask;
        while self.slots[i] != EMPTY_SLOT {
            i = (i + 1) & mask;
        }
        self.slots[i] = (h >> 32) << 32 | id as u64;
    }

    fn rehash(&mut self, n_slots: usize) {
        self.slots = vec![EMPTY_SLOT; n_slots];
        for id in 0..self.len() as u32 {
            self.place(id);
        }
    }

    /// Bytes held (arena + index), for size reports.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + 4 * self.offsets.capacity() + 8 * self.slots.capacity()
    }
}

fn slot_count(n: usize) -> usize {
    (n.max(4) * 2).next_power_of_two()
}

/// `(u32, u32)` → `V`, insert-if-absent (the first value for a key wins).
pub(crate) struct PairMap<V: Copy> {
    keys: Vec<u64>,
    values: Vec<V>,
    used: Vec<bool>,
    len: usize,
}

impl<V: Copy + Default> PairMap<V> {
    /// An empty map sized for about `n` entries.
    pub fn with_capacity(n: usize) -> PairMap<V> {
        let s = slot_count(n);
        PairMap { keys: vec![0; s], values: vec![V::default(); s], used: vec![false; s], len: 0 }
    }

    #[inline]
    fn slot(&self, key: u64) -> usize {
        mix(key ^ K0, K1) as usize & (self.keys.len() - 1)
    }

    /// The value for `(a, b)`.
    #[inline]
    pub fn get(&self, a: u32, b: u32) -> Option<V> {
        let key = (a as u64) << 32 | b as u64;
        let mask = self.keys.len() - 1;
        let mut i = self.slot(key);
        while self.used[i] {
            if self.keys[i] == key {
                return Some(self.values[i]);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Inserts `(a, b) → v` unless the key is present; returns whether it inserted.
    pub fn insert_if_absent(&mut self, a: u32, b: u32, v: V) -> bool {
        if (self.len + 1) * 2 > self.keys.len() {
            self.grow();
        }
        let key = (a as u64) << 32 | b as u64;
        let mask = self.keys.len() - 1;
        let mut i = self.slot(key);
        while self.used[i] {
            if self.keys[i] == key {
                return false;
            }
            i = (i + 1) & mask;
        }
        self.keys[i] = key;
        self.values[i] = v;
        self.used[i] = true;
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let old_keys = core::mem::take(&mut self.keys);
        let old_values = core::mem::take(&mut self.values);
        let old_used = core::mem::take(&mut self.used);
        let s = (old_keys.len() * 2).max(8);
        self.keys = vec![0; s];
        self.values = vec![V::default(); s];
        self.used = vec![false; s];
        self.len = 0;
        for i in 0..old_keys.len() {
            if old_used[i] {
                let k = old_keys[i];
                self.insert_if_absent((k >> 32) as u32, k as u32, old_values[i]);
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_table_interns_and_grows() {
        let mut t = StrTable::with_capacity(2, 8);
        let words: Vec<alloc::string::String> = (0..1000).map(|i| alloc::format!("w{i}")).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(t.insert(w.as_bytes()), Some(Ok(i as u32)));
        }
        assert_eq!(t.insert(b"w7"), Some(Err(7)));
        assert_eq!(t.insert(b""), Some(Ok(1000)));
        for (i, w) in words.iter().enumerate() {
            assert_eq!(t.find(w.as_bytes()), Some(i as u32));
            assert_eq!(t.get(i as u32), w.as_bytes());
        }
        assert_eq!(t.find(b""), Some(1000));
        assert_eq!(t.find(b"nope"), None);
        assert_eq!(t.get(5000), b"");
    }

    #[test]
    fn pair_map_first_insert_wins() {
        let mut m = PairMap::<u32>::with_capacity(1);
        for i in 0..500u32 {
            assert!(m.insert_if_absent(i, i + 1, i));
        }
        assert!(!m.insert_if_absent(3, 4, 99));
        assert_eq!(m.get(3, 4), Some(3));
        assert_eq!(m.get(4, 3), None);
        assert_eq!(m.len(), 500);
    }
}
