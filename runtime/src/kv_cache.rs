//! The KV cache: per layer, the keys and values of every cached position,
//! stored f32 or f16 (llama.cpp's default, and the default here).
//!
//! Rows are not transposed (llama.cpp's flash-attention layout): layer `il`
//! holds `cells(il)` K rows of `n_head_kv * head_dim_k` values, then as many
//! V rows of `n_head_kv * head_dim_v`. Position `p` lives in row
//! `p % cells(il)`. Full-attention layers have `ctx_len` cells; a
//! sliding-window layer keeps only what its window can still see while a batch
//! is written: `window + batch - 1` cells (at most `ctx_len`).

use crate::model::Config;

/// Element type of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvType {
    /// 32-bit floats.
    F32,
    /// 16-bit floats (IEEE half), rounded to nearest even on store.
    F16,
}

impl KvType {
    /// Bytes per value.
    pub const fn elem_bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }

    /// The name used by options and `ember info --plan` (`f32`, `f16`).
    pub const fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
        }
    }

    /// Parses `f32` / `f16` (any case).
    pub fn from_name(s: &str) -> Option<KvType> {
        match s.trim() {
            x if x.eq_ignore_ascii_case("f32") => Some(KvType::F32),
            x if x.eq_ignore_ascii_case("f16") => Some(KvType::F16),
            _ => None,
        }
    }

    /// Stores `src` into `dst` (exactly `src.len() * elem_bytes()` bytes).
    pub fn store(self, src: &[f32], dst: &mut [u8]) {
        debug_assert_eq!(dst.len(), src.len() * self.elem_bytes());
        match self {
            KvType::F32 => {
                for (d, &v) in dst.chunks_exact_mut(4).zip(src) {
                    d.copy_from_slice(&v.to_le_bytes());
                }
            }
            KvType::F16 => {
                for (d, &v) in dst.chunks_exact_mut(2).zip(src) {
                    d.copy_from_slice(&crate::ops::f32_to_f16(v).to_le_bytes());
                }
            }
        }
    }

    /// What storing and loading `x` gives back (tests' reference values).
    #[cfg(test)]
    pub(crate) fn round_trip(self, x: &[f32]) -> std::vec::Vec<f32> {
        match self {
            KvType::F32 => x.to_vec(),
            KvType::F16 => x.iter().map(|&v| crate::ops::f16_to_f32(crate::ops::f32_to_f16(v))).collect(),
        }
    }
}

impl core::fmt::Display for KvType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

const ALIGN: usize = 64;

fn round_up(n: usize) -> Option<usize> {
    n.checked_add(ALIGN - 1).map(|v| v / ALIGN * ALIGN)
}

/// Where each layer's K and V rows live inside the cache region.
#[derive(Clone, Debug, PartialEq)]
pub struct KvLayout {
    /// Element type.
    pub ty: KvType,
    /// Cells of a full-attention layer (the context length).
    pub full_cells: usize,
    /// Cells of a sliding-window layer.
    pub swa_cells: usize,
    /// Bytes of one K row (all KV heads).
    pub k_row_bytes: usize,
    /// Bytes of one V row.
    pub v_row_bytes: usize,
    n_layer: usize,
    /// Per layer kind (full, sliding): bytes of K and of V, each 64-aligned.
    full_k: usize,
    full_v: usize,
    swa_k: usize,
    swa_v: usize,
    window: usize,
    pattern: crate::model::SwaPattern,
}

impl KvLayout {
    /// The layout for `cfg` with `ctx_len` positions written `batch` at a
    /// time. `None` if a size overflows.
    pub fn new(cfg: &Config, ctx_len: usize, batch: usize, ty: KvType) -> Option<KvLayout> {
        let full_cells = ctx_len;
        let swa_cells = if cfg.sliding_window > 0 {
            cfg.sliding_window.checked_add(batch.max(1) - 1)?.min(ctx_len)
        } else {
            ctx_len
        };
        let k_row_bytes = cfg.k_dim().checked_mul(ty.elem_bytes())?;
        let v_row_bytes = cfg.v_dim().checked_mul(ty.elem_bytes())?;
        Some(KvLayout {
            ty,
            full_cells,
            swa_cells,
            k_row_bytes,
            v_row_bytes,
            n_layer: cfg.n_layer,
            full_k: round_up(full_cells.checked_mul(k_row_bytes)?)?,
            full_v: round_up(full_cells.checked_mul(v_row_bytes)?)?,
            swa_k: round_up(swa_cells.checked_mul(k_row_bytes)?)?,
            swa_v: round_up(swa_cells.checked_mul(v_row_bytes)?)?,
            window: cfg.sliding_window,
            pattern: cfg.swa_pattern,
        })
        .filter(|l| l.checked_total().is_some())
    }

    /// Whether layer `il` is a sliding-window layer.
    pub fn is_swa(&self, il: usize) -> bool {
        crate::model::config::is_swa_layer(self.window, self.pattern, il)
    }

    /// Cells (cached positions) of layer `il`.
    pub fn cells(&self, il: usize) -> usize {
        if self.is_swa(il) {
            self.swa_cells
        } else {
            self.full_cells
        }
    }

    fn layer_bytes(&self, il: usize) -> (usize, usize) {
        if self.is_swa(il) {
            (self.swa_k, self.swa_v)
        } else {
            (self.full_k, self.full_v)
        }
    }

    /// Byte ranges of layer `il`'s K and V inside the cache region.
    pub fn layer_ranges(&self, il: usize) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
        let mut off = 0;
        for l in 0..il {
            let (k, v) = self.layer_bytes(l);
            off += k + v;
        }
        let (k, v) = self.layer_bytes(il);
        (off..off + k, off + k..off + k + v)
    }

    fn checked_total(&self) -> Option<usize> {
        let mut t = 0usize;
        for l in 0..self.n_layer {
            let (k, v) = self.layer_bytes(l);
            t = t.checked_add(k)?.checked_add(v)?;
        }
        Some(t)
    }

    /// Bytes of the whole cache.
    pub fn total_bytes(&self) -> usize {
        self.checked_total().unwrap_or(usize::MAX)
    }

    /// Bytes the cache would take if every layer kept the whole context.
    pub fn total_bytes_without_window(&self) -> usize {
        self.n_layer * (self.full_k + self.full_v)
    }

    /// Number of layers.
    pub fn n_layer(&self) -> usize {
        self.n_layer
    }
}

/// The cache region of an arena, viewed through its layout.
pub struct KvCache<'a> {
    layout: &'a KvLayout,
    data: &'a mut [u8],
}

impl<'a> KvCache<'a> {
    /// Wraps `data` (at least `layout.total_bytes()` bytes).
    pub fn new(layout: &'a KvLayout, data: &'a mut [u8]) -> Option<KvCache<'a>> {
        (data.len() >= layout.total_bytes()).then_some(KvCache { layout, data })
    }

    /// The layout.
    pub fn layout(&self) -> &KvLayout {
        self.layout
    }

    /// Writes the K and V rows of position `pos` in layer `il`.
    pub fn store(&mut self, il: usize, pos: usize, k: &[f32], v: &[f32]) {
        let l = self.layout;
        let cell = pos % l.cells(il);
        let (kr, vr) = l.layer_ranges(il);
        let kd = &mut self.data[kr][cell * l.k_row_bytes..(cell + 1) * l.k_row_bytes];
        l.ty.store(k, kd);
        let vd = &mut self.data[vr][cell * l.v_row_bytes..(cell + 1) * l.v_row_bytes];
        l.ty.store(v, vd);
    }

    /// Layer `il`'s K and V bytes.
    pub fn layer(&self, il: usize) -> (&[u8], &[u8]) {
        let (kr, vr) = self.layout.layer_ranges(il);
        (&self.data[kr], &self.data[vr])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::tests::{gemma3_like, smollm2_like};

    #[test]
    fn full_layers_keep_the_context_and_sliding_layers_their_window() {
        let c = smollm2_like();
        let l = KvLayout::new(&c, 2048, 256, KvType::F16).unwrap();
        assert_eq!(l.k_row_bytes, 3 * 64 * 2);
        for il in 0..c.n_layer {
            assert_eq!(l.cells(il), 2048);
        }
        assert_eq!(l.total_bytes(), 30 * 2 * 2048 * 384);
        assert_eq!(l.total_bytes(), l.total_bytes_without_window());

        let g = gemma3_like();
        let l = KvLayout::new(&g, 4096, 64, KvType::F32).unwrap();
        let swa: std::vec::Vec<usize> = (0..18).filter(|&il| l.is_swa(il)).collect();
        assert_eq!(swa.len(), 15);
        assert!(!l.is_swa(5) && !l.is_swa(11) && !l.is_swa(17) && l.is_swa(0) && l.is_swa(16));
        assert_eq!(l.cells(0), 512 + 63);
        assert_eq!(l.cells(5), 4096);
        let row = 256 * 4;
        assert_eq!(l.total_bytes(), 15 * 2 * (575 * row) + 3 * 2 * 4096 * row);
        assert!(l.total_bytes() < l.total_bytes_without_window() / 3);
        // ranges tile the region
        let mut end = 0;
        for il in 0..18 {
            let (k, v) = l.layer_ranges(il);
            assert_eq!(k.start, end);
            assert_eq!(k.end, v.start);
            assert_eq!(k.start % 64, 0);
            end = v.end;
        }
        assert_eq!(end, l.total_bytes());
        // a short context caps the window
        let l = KvLayout::new(&g, 300, 64, KvType::F16).unwrap();
        assert_eq!(l.cells(0), 300);
    }

    #[test]
    fn store_writes_the_ring_cell() {
        let g = gemma3_like();
        let layout = KvLayout::new(&g, 2048, 1, KvType::F16).unwrap();
        let mut buf = std::vec![0u8; layout.total_bytes()];
        let mut kv = KvCache::new(&layout, &mut buf).unwrap();
        let k = std::vec![1.5f32; 256];
        let v = std::vec![-2.0f32; 256];
        kv.store(0, 512 + 3, &k, &v); // window 512, batch 1: 512 cells, cell 3
        let (kb, vb) = kv.layer(0);
        let h = crate::ops::f32_to_f16(1.5).to_le_bytes();
        assert_eq!(&kb[3 * 512..3 * 512 + 2], &h);
        assert_eq!(&vb[3 * 512..3 * 512 + 2], &crate::ops::f32_to_f16(-2.0).to_le_bytes());
        assert!(kb[..3 * 512].iter().all(|&b| b == 0));
    }
}
