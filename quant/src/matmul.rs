//! Safe matrix-vector and matrix-matrix drivers over whole weight tensors: the
//! unit the model calls. They check every buffer's length and alignment, then
//! call the kernels chosen in [`Kernels`].
//!
//! Shapes follow ggml: a weight tensor of `rows` rows of `cols` values each
//! (`ne0 = cols`), rows stored contiguously in the weight's block format.

use crate::{cast, q6_k, q8_k, Error, GgmlType, Kernels};

/// Bytes of one activation row of `cols` values in format `act`.
pub fn act_row_bytes(act: GgmlType, cols: usize) -> Result<usize, Error> {
    act.row_bytes(cols).ok_or(Error::NotBlockMultiple { ty: act, n: cols })
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), Error> {
    if expected != got {
        return Err(Error::Length { what, expected, got });
    }
    Ok(())
}

fn align_of_blocks(ty: GgmlType) -> usize {
    match ty {
        GgmlType::F32 | GgmlType::Q8_K => 4,
        GgmlType::I8 => 1,
        _ => 2,
    }
}

fn check_align(what: &'static str, ty: GgmlType, bytes: &[u8]) -> Result<(), Error> {
    let align = align_of_blocks(ty);
    // An empty slice holds no blocks, whatever its (dangling) address.
    if !bytes.is_empty() && !(bytes.as_ptr() as usize).is_multiple_of(align) {
        return Err(Error::Misaligned { what, align });
    }
    Ok(())
}

/// The smallest batch ggml-cpu's tiled K-quant matmul takes (`ggml_tiled_min_batch`).
pub const TILED_MIN_BATCH: usize = 8;

impl Kernels {
    /// Quantizes one activation row `x` into `out`, in the format `act` that
    /// pairs with some weight type (see [`GgmlType::vec_dot_type`]). For F32
    /// this is a copy.
    pub fn quantize_activations(&self, act: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), Error> {
        let bytes = act_row_bytes(act, x.len())?;
        check_len("activation buffer", bytes, out.len())?;
        check_align("activation buffer", act, out)?;
        if act == GgmlType::F32 {
            cast::blocks_mut::<f32>("activation buffer", out)?.copy_from_slice(x);
            return Ok(());
        }
        let q = self.quantizer(act).ok_or(Error::Unsupported(act))?;
        // SAFETY: the table was built for this CPU; `out` holds exactly the
        // aligned blocks for `x.len()` values (checked above).
        unsafe { (q.quantize)(x, out) };
        Ok(())
    }

    /// Dot product of one weight row (`w`, format `wty`) with one activation
    /// row `a` already quantized to `wty.vec_dot_type()`, over `cols` values.
    pub fn vec_dot(&self, wty: GgmlType, cols: usize, w: &[u8], a: &[u8]) -> Result<f32, Error> {
        let (e, act) = self.entry(wty)?;
        check_len("weight row", wty.row_bytes(cols).ok_or(Error::NotBlockMultiple { ty: wty, n: cols })?, w.len())?;
        check_len("activation row", act_row_bytes(act, cols)?, a.len())?;
        check_align("weight row", wty, w)?;
        check_align("activation row", act, a)?;
        // SAFETY: table built for this CPU; buffers checked above.
        Ok(unsafe { (e.vec_dot)(w, a) })
    }

    /// Matrix-vector product: `out[r] = W[r] · a` for the `out.len()` rows of `w`
    /// (each `cols` values in format `wty`), with `a` quantized to the paired
    /// format.
    pub fn gemv(&self, wty: GgmlType, cols: usize, w: &[u8], a: &[u8], out: &mut [f32]) -> Result<(), Error> {
        let (e, act) = self.entry(wty)?;
        let row_bytes = wty.row_bytes(cols).ok_or(Error::NotBlockMultiple { ty: wty, n: cols })?;
        let total = row_bytes.checked_mul(out.len()).ok_or(Error::Length {
            what: "weights",
            expected: usize::MAX,
            got: w.len(),
        })?;
        check_len("weights", total, w.len())?;
        check_len("activation row", act_row_bytes(act, cols)?, a.len())?;
        check_align("weights", wty, w)?;
        check_align("activation row", act, a)?;
        if row_bytes % align_of_blocks(wty) != 0 {
            return Err(Error::Misaligned { what: "weight rows", align: align_of_blocks(wty) });
        }
        if out.is_empty() || cols == 0 {
            out.fill(0.0);
            return Ok(());
        }
        // SAFETY: table built for this CPU; buffers checked above.
        unsafe { (e.gemv)(w, row_bytes, a, out) };
        Ok(())
    }

    /// Matrix-matrix product for `m` activation rows: `out[i * rows + r] =
    /// W[r] · a_i`, where `acts` holds `m` activation rows back to back and `w`
    /// holds `rows` weight rows. Weight rows are taken in tiles that stay in
    /// cache while every activation row passes over them (the entry's `gemm`
    /// per tile).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        wty: GgmlType,
        cols: usize,
        w: &[u8],
        rows: usize,
        acts: &[u8],
        m: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (_, act) = self.entry(wty)?;
        let row_bytes = wty.row_bytes(cols).ok_or(Error::NotBlockMultiple { ty: wty, n: cols })?;
        let act_bytes = act_row_bytes(act, cols)?;
        check_len("weights", row_bytes.saturating_mul(rows), w.len())?;
        check_len("activations", act_bytes.saturating_mul(m), acts.len())?;
        check_len("output", rows.saturating_mul(m), out.len())?;
        if rows == 0 || m == 0 {
            return Ok(());
        }
        if cols == 0 {
            out.fill(0.0);
            return Ok(());
        }
        // About 32 KiB of weights per tile, at least 8 rows (ggml's repacked
        // kernels take weight rows eight at a time).
        const TILE_BYTES: usize = 32 * 1024;
        let tile = (TILE_BYTES / row_bytes.max(1)).clamp(8, 256).next_multiple_of(8);
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + tile).min(rows);
            self.gemm_strided(wty, cols, &w[r0 * row_bytes..r1 * row_bytes], acts, &mut out[r0..], rows)?;
            r0 = r1;
        }
        Ok(())
    }

    /// Matrix-matrix product with a strided output: `out[i * out_stride + r] =
    /// W[r] · a_i` for the `w.len() / row_bytes` weight rows of `w` (each `cols`
    /// values in format `wty`) and the activation rows `acts` holds back to
    /// back (quantized to the paired format). Values of `out` between one
    /// activation row's outputs and the next are left as they are. The float
    /// order per output is the one llama.cpp uses for this many activation
    /// rows (see the format's kernel), so call it with the whole batch, or
    /// with groups of a multiple of four rows, to keep that order.
    pub fn gemm_strided(
        &self,
        wty: GgmlType,
        cols: usize,
        w: &[u8],
        acts: &[u8],
        out: &mut [f32],
        out_stride: usize,
    ) -> Result<(), Error> {
        let Some((e, row_bytes, act_bytes)) = self.gemm_checks(wty, cols, w, acts, out, out_stride)? else {
            return Ok(());
        };
        if acts.len() == act_bytes {
            // One activation row (decode): the gemv, which is llama.cpp's order
            // for one row (its gemv or vec_dot) and does no per-batch
            // unpacking of the weights.
            let rows = w.len() / row_bytes;
            // SAFETY: table built for this CPU; whole aligned blocks in every
            // row and one aligned activation row; `gemm_checks` checked
            // `out.len() >= (m - 1) * out_stride + rows`, which is `rows` here.
            unsafe { (e.gemv)(w, row_bytes, acts, &mut out[..rows]) };
            return Ok(());
        }
        // SAFETY: table built for this CPU; whole aligned blocks in every row
        // and `out` long enough for every (row, activation) pair (checked above).
        unsafe { (e.gemm)(w, row_bytes, acts, act_bytes, out, out_stride) };
        Ok(())
    }

    /// [`Self::gemm_strided`] on part of a batch of `batch` activation rows
    /// (`acts` holds some of them): the float order llama.cpp gives each
    /// output for a batch of that size. On x86, ggml-cpu runs Q6_K weights
    /// through its tiled K-quant matmul when the batch has 8 rows or more
    /// ([`q6_k::gemm_tiled_order`]); every other case is `gemm_strided`'s.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_strided_batch(
        &self,
        wty: GgmlType,
        cols: usize,
        w: &[u8],
        acts: &[u8],
        out: &mut [f32],
        out_stride: usize,
        batch: usize,
    ) -> Result<(), Error> {
        if !(cfg!(target_arch = "x86_64") && wty == GgmlType::Q6_K && batch >= TILED_MIN_BATCH) {
            return self.gemm_strided(wty, cols, w, acts, out, out_stride);
        }
        if self.gemm_checks(wty, cols, w, acts, out, out_stride)?.is_none() {
            return Ok(());
        }
        let (Ok(wb), Ok(ab)) =
            (bytemuck::try_cast_slice::<u8, q6_k::BlockQ6K>(w), bytemuck::try_cast_slice::<u8, q8_k::BlockQ8K>(acts))
        else {
            return Err(Error::Misaligned { what: "Q6_K weights or Q8_K activations", align: 4 });
        };
        let nb = cols / crate::QK_K;
        #[cfg(target_arch = "x86_64")]
        if matches!(self.tier(), crate::Tier::Avx2 | crate::Tier::Avx512) {
            // SAFETY: a table of the AVX2 or AVX-512 tier is only built on a
            // CPU with AVX2, FMA and F16C; the sizes were checked above.
            unsafe { crate::arch::x86_64::q6_k_avx2::gemm_tiled_order_avx2(wb, ab, nb, out, out_stride) };
            return Ok(());
        }
        q6_k::gemm_tiled_order(wb, ab, nb, out, out_stride);
        Ok(())
    }

    /// The checks of [`Self::gemm_strided`]: `None` when there is nothing to
    /// compute, else the kernel entry and the weight and activation row sizes.
    fn gemm_checks(
        &self,
        wty: GgmlType,
        cols: usize,
        w: &[u8],
        acts: &[u8],
        out: &[f32],
        out_stride: usize,
    ) -> Result<Option<(&crate::kernels::DotEntry, usize, usize)>, Error> {
        let (e, act) = self.entry(wty)?;
        let row_bytes = wty.row_bytes(cols).ok_or(Error::NotBlockMultiple { ty: wty, n: cols })?;
        let act_bytes = act_row_bytes(act, cols)?;
        if row_bytes == 0 || act_bytes == 0 {
            return Err(Error::Length { what: "matrix columns", expected: 1, got: 0 });
        }
        if !w.len().is_multiple_of(row_bytes) {
            return Err(Error::Length { what: "weights", expected: w.len() / row_bytes * row_bytes, got: w.len() });
        }
        if !acts.len().is_multiple_of(act_bytes) {
            return Err(Error::Length {
                what: "activations",
                expected: acts.len() / act_bytes * act_bytes,
                got: acts.len(),
            });
        }
        let (rows, m) = (w.len() / row_bytes, acts.len() / act_bytes);
        if rows == 0 || m == 0 {
            return Ok(None);
        }
        if out_stride < rows {
            return Err(Error::Length { what: "output stride", expected: rows, got: out_stride });
        }
        let need = (m - 1).checked_mul(out_stride).and_then(|v| v.checked_add(rows)).ok_or(Error::Length {
            what: "output",
            expected: usize::MAX,
            got: out.len(),
        })?;
        if out.len() < need {
            return Err(Error::Length { what: "output", expected: need, got: out.len() });
        }
        check_align("weights", wty, w)?;
        check_align("activations", act, acts)?;
        if row_bytes % align_of_blocks(wty) != 0 {
            return Err(Error::Misaligned { what: "weight rows", align: align_of_blocks(wty) });
        }
        if act_bytes % align_of_blocks(act) != 0 {
            return Err(Error::Misaligned { what: "activation rows", align: align_of_blocks(act) });
        }
        Ok(Some((e, row_bytes, act_bytes)))
    }

    fn entry(&self, wty: GgmlType) -> Result<(&crate::kernels::DotEntry, GgmlType), Error> {
        let e = self.dot(wty).ok_or(Error::Unsupported(wty))?;
        let act = wty.vec_dot_type().ok_or(Error::Unsupported(wty))?;
        Ok((e, act))
    }
}

/// Dequantizes `out.len()` values of type `ty` from `bytes` (which must hold
/// exactly that many values) into f32. Supports every format with a module here.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), Error> {
    use crate::*;
    let n = out.len();
    check_len("tensor bytes", ty.row_bytes(n).ok_or(Error::NotBlockMultiple { ty, n })?, bytes.len())?;
    // Float and block data in a GGUF is only 2-aligned per row in general, so
    // copy unaligned inputs through a small aligned chunk rather than failing.
    macro_rules! blocks {
        ($T:ty, $f:path) => {{
            const CHUNK: usize = 64;
            let size = core::mem::size_of::<$T>();
            let per = ty.block_size();
            let mut tmp = [<$T as bytemuck::Zeroable>::zeroed(); CHUNK];
            for (bc, oc) in bytes.chunks(CHUNK * size).zip(out.chunks_mut(CHUNK * per)) {
                let nb = bc.len() / size;
                bytemuck::cast_slice_mut::<$T, u8>(&mut tmp[..nb]).copy_from_slice(bc);
                $f(&tmp[..nb], oc);
            }
        }};
    }
    match ty {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::Q4_0 => blocks!(q4_0::BlockQ4_0, q4_0::dequantize),
        GgmlType::Q4_1 => blocks!(q4_1::BlockQ4_1, q4_1::dequantize),
        GgmlType::Q5_0 => blocks!(q5_0::BlockQ5_0, q5_0::dequantize),
        GgmlType::Q5_1 => blocks!(q5_1::BlockQ5_1, q5_1::dequantize),
        GgmlType::Q8_0 => blocks!(q8_0::BlockQ8_0, q8_0::dequantize),
        GgmlType::Q8_1 => blocks!(q8_1::BlockQ8_1, q8_1::dequantize),
        GgmlType::Q2_K => blocks!(q2_k::BlockQ2K, q2_k::dequantize),
        GgmlType::Q3_K => blocks!(q3_k::BlockQ3K, q3_k::dequantize),
        GgmlType::Q4_K => blocks!(q4_k::BlockQ4K, q4_k::dequantize),
        GgmlType::Q5_K => blocks!(q5_k::BlockQ5K, q5_k::dequantize),
        GgmlType::Q6_K => blocks!(q6_k::BlockQ6K, q6_k::dequantize),
        GgmlType::Q8_K => blocks!(q8_k::BlockQ8K, q8_k::dequantize),
        GgmlType::IQ4_NL => blocks!(iq4_nl::BlockIq4Nl, iq4_nl::dequantize),
        _ => return Err(Error::Unsupported(ty)),
    }
    Ok(())
}

/// Quantizes `x` into `out` (exactly the bytes for `x.len()` values of `ty`)
/// with the reference quantizer of `ty`. Supports F32, F16, BF16 and every
/// block format with a `quantize_ref`.
pub fn quantize(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), Error> {
    use crate::*;
    let n = x.len();
    check_len("output bytes", ty.row_bytes(n).ok_or(Error::NotBlockMultiple { ty, n })?, out.len())?;
    macro_rules! blocks {
        ($T:ty, $f:path) => {{
            const CHUNK: usize = 64;
            let size = core::mem::size_of::<$T>();
            let per = ty.block_size();
            let mut tmp = [<$T as bytemuck::Zeroable>::zeroed(); CHUNK];
            for (oc, xc) in out.chunks_mut(CHUNK * size).zip(x.chunks(CHUNK * per)) {
                let nb = oc.len() / size;
                $f(xc, &mut tmp[..nb]);
                oc.copy_from_slice(bytemuck::cast_slice::<$T, u8>(&tmp[..nb]));
            }
        }};
    }
    match ty {
        GgmlType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for (o, v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            let mut tmp = [bf16::ZERO; 1];
            for (o, v) in out.chunks_exact_mut(2).zip(x) {
                floats::quantize_bf16(core::slice::from_ref(v), &mut tmp);
                o.copy_from_slice(&tmp[0].to_le_bytes());
            }
        }
        GgmlType::Q4_0 => blocks!(q4_0::BlockQ4_0, q4_0::quantize_ref),
        GgmlType::Q4_1 => blocks!(q4_1::BlockQ4_1, q4_1::quantize_ref),
        GgmlType::Q5_0 => blocks!(q5_0::BlockQ5_0, q5_0::quantize_ref),
        GgmlType::Q5_1 => blocks!(q5_1::BlockQ5_1, q5_1::quantize_ref),
        GgmlType::Q8_0 => blocks!(q8_0::BlockQ8_0, q8_0::quantize_ref),
        GgmlType::Q8_1 => blocks!(q8_1::BlockQ8_1, q8_1::quantize_ref),
        GgmlType::Q2_K => blocks!(q2_k::BlockQ2K, q2_k::quantize_ref),
        GgmlType::Q3_K => blocks!(q3_k::BlockQ3K, q3_k::quantize_ref),
        GgmlType::Q4_K => blocks!(q4_k::BlockQ4K, q4_k::quantize_ref),
        GgmlType::Q5_K => blocks!(q5_k::BlockQ5K, q5_k::quantize_ref),
        GgmlType::Q6_K => blocks!(q6_k::BlockQ6K, q6_k::quantize_ref),
        GgmlType::Q8_K => blocks!(q8_k::BlockQ8K, q8_k::quantize_ref),
        GgmlType::IQ4_NL => blocks!(iq4_nl::BlockIq4Nl, iq4_nl::quantize_ref),
        _ => return Err(Error::Unsupported(ty)),
    }
    Ok(())
}
