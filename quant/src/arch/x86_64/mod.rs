//! x86_64 kernels: AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL; VNNI where it pays).
//! One file per format and ISA, e.g. `q4_0_avx2.rs`.
//!
//! **Float order.** The kernels of the formats llama.cpp's reference outputs
//! use (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K) and the Q8_0/Q8_1
//! activation quantizers compute exactly what ggml's x86 code computes (its
//! AVX2 code, which llama.cpp's AVX-512 builds also run): the same integer
//! lanes, the same fused multiply-adds in the same order, the same
//! reduction. Greedy decoding is decided by logits that are often within a
//! few hundredths of each other, so this is what lets ember's token ids
//! match llama.cpp's. `tests/kernels_vs_generic.rs` checks it bit for bit
//! against scalar statements of ggml's code; the other formats (Q2_K, Q3_K,
//! Q5_K, IQ4_NL, floats) are only within rounding of generic.
//!
//! Each format has a one-row kernel (`vec_dot_*`) and a `gemv` that passes over
//! the activation once for several weight rows where that measured faster:
//! - Q4_1, Q5_0, Q5_1 (AVX2): four rows per pass, sharing each
//!   activation block, its offsets and one conversion of the rows' scales
//!   (`gemv_*`, `gemv_entry!`);
//! - IQ4_NL (AVX2): the activation prepared once per product, two blocks per
//!   vector, four rows per pass;
//! - Q8_0 (AVX2): four rows per pass, one from each of four interleaved
//!   streams (`RowStreams`);
//! - the other k-quants and floats (AVX2): one row per pass ([`crate::dot_entry!`]);
//! - Q4_0 and Q4_K (AVX2 and AVX-512): llama.cpp's repacked order
//!   (`x8_avx2`, `x8_avx512`): one f32 lane per output. On AVX-512 two
//!   rows' blocks share a 512-bit vector and four vectors reduce into one
//!   lane per row, then the AVX2 f32 chain runs lane for lane: Q4_0 eight
//!   rows per gemv pass, sixteen per gemm pass (VNNI or BW-only), Q4_K two
//!   and four (BW-only);
//! - AVX-512, other formats: one block of two rows per 512-bit vector (each
//!   256-bit half keeps its row's AVX2 float order), four rows per pass for
//!   Q4_1 and Q5_0 (BW-only builds), two for Q8_0 and Q6_K (BW-only builds;
//!   for Q6_K, whose scales multiply i16 pair sums, VNNI gains nothing);
//!   Q4_1's gemm stays the AVX2 one (two activation rows per weight load,
//!   same bits), Q6_K batches of 8+ rows the AVX2 tiled order;
//! - AVX-512 with VNNI, 256-bit: the Q5_0 and Q8_0 gemvs and prompt gemms
//!   and the Q4_0 prompt gemm are the AVX2 kernels' layouts with one
//!   `vpdpbusd` per 4 values (`q5_0_avx512`, `q8_0_avx512`, `x8_avx512`;
//!   the same bits), in the AVX-512 table too;
//! - AVX-512 F, 512-bit: attention's value accumulation in f16 arithmetic
//!   with embedded rounding (`floats_avx512`; the same bits).
//!
//! On AVX-512 one row (`vec_dot`) stays on the AVX2 kernel (`avx512_entry!`,
//! `x8_entry!`). `scripts/test-x86-avx512.sh` runs the AVX-512 kernels under
//! Bochs and checks them bit for bit against the AVX2 ones; the tests run
//! them natively where the CPU has AVX-512.
//!
//! **The AVX-512 table is opt-in** ([`crate::Kernels::best`] takes the AVX2
//! table on AVX-512 CPUs, plus the five 256-bit VNNI kernels above where
//! the CPU has VNNI and the 512-bit attention accumulation;
//! `EMBER_KERNELS=avx512` selects the whole table): on the one
//! AVX-512 CPU measured, a Zen 4 VM, it lost to the AVX2 table end to end
//! (figures in `quant/README.md`, "AVX-512 on Zen 4").

use crate::kernels::{DotEntry, Tier};
use crate::{iq4_nl, q2_k, q3_k, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, q8_1, q8_k};
use crate::{quantize_entry, Kernels};
use half::{bf16, f16};

mod act_avx2;
mod attn_tile_avx2;
mod avx2;
mod avx512;
mod floats_avx2;
mod iq4_nl_avx2;
mod q2_k_avx2;
mod q3_k_avx2;
mod q4_0_avx2;
mod q4_1_avx2;
mod q4_k_avx2;
mod q5_0_avx2;
mod q5_1_avx2;
mod q5_k_avx2;
pub(crate) mod q6_k_avx2;
mod q8_0_avx2;
mod q8_1_avx2;
mod q8_k_avx2;
mod x8_avx2;

mod floats_avx512;
mod q4_1_avx512;
mod q5_0_avx512;
mod q6_k_avx512;
mod q8_0_avx512;
mod q8_1_avx512;
mod q8_k_avx512;
mod x8_avx512;

/// Whether this CPU runs `tier` (run-time detection with `std`, compile-time
/// target features without).
pub(crate) fn tier_available(tier: Tier) -> bool {
    #[cfg(feature = "std")]
    {
        match tier {
            Tier::Generic => true,
            Tier::Avx2 => {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c")
            }
            Tier::Avx512 => {
                tier_available(Tier::Avx2)
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            _ => false,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        match tier {
            Tier::Generic => true,
            Tier::Avx2 => cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c")),
            Tier::Avx512 => cfg!(all(
                target_feature = "avx2",
                target_feature = "fma",
                target_feature = "f16c",
                target_feature = "avx512f",
                target_feature = "avx512bw",
                target_feature = "avx512vl"
            )),
            _ => false,
        }
    }
}

/// A [`DotEntry`] from a typed one-row kernel `$one(&[W], &[A]) -> f32` and a
/// byte-level [`crate::kernels::GemvFn`] of its own.
macro_rules! gemv_entry {
    ($tier:expr, $W:ty, $A:ty, $one:path, $gemv:path) => {{
        unsafe fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: the caller upholds `VecDotFn`'s contract (CPU tier, whole
            // aligned blocks of the same count), which is `$one`'s.
            unsafe { $one(bytemuck::cast_slice::<u8, $W>(w), bytemuck::cast_slice::<u8, $A>(a)) }
        }
        DotEntry {
            tier: $tier,
            vec_dot,
            gemv_tier: $tier,
            gemv: $gemv,
            gemm_tier: $tier,
            gemm: crate::gemm_by_rows!($gemv),
        }
    }};
}

/// A [`DotEntry`] whose `gemv` and `gemm` (of tier `$tier`) follow
/// llama.cpp's repacked (8-row) x86 kernels ([`x8_avx2`], [`x8_avx512`]) and
/// whose `vec_dot` (one row, AVX2) is ggml's `vec_dot` order.
macro_rules! x8_entry {
    ($tier:expr, $W:ty, $A:ty, $one:path, $gemv:path, $gemm:path) => {{
        unsafe fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: the caller upholds `VecDotFn`'s contract (CPU tier, whole
            // aligned blocks of the same count), which is `$one`'s.
            unsafe { $one(bytemuck::cast_slice::<u8, $W>(w), bytemuck::cast_slice::<u8, $A>(a)) }
        }
        DotEntry { tier: Tier::Avx2, vec_dot, gemv_tier: $tier, gemv: $gemv, gemm_tier: $tier, gemm: $gemm }
    }};
}

/// Replaces table entries with their AVX2 versions.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
pub(crate) unsafe fn plug_avx2(k: &mut Kernels) {
    use Tier::Avx2 as T;
    k.tier = T;
    k.f32 = crate::dot_entry!(T, f32, f32, floats_avx2::vec_dot_f32_avx2);
    k.f16 = crate::dot_entry!(T, f16, f16, floats_avx2::vec_dot_f16_avx2);
    k.bf16 = crate::dot_entry!(T, bf16, bf16, floats_avx2::vec_dot_bf16_avx2);
    k.q4_0 = x8_entry!(
        T,
        q4_0::BlockQ4_0,
        q8_0::BlockQ8_0,
        q4_0_avx2::vec_dot_q4_0_q8_0_avx2,
        x8_avx2::gemv_q4_0_q8_0_x8_avx2,
        x8_avx2::gemm_q4_0_q8_0_x8_avx2
    );
    k.q4_1 = gemv_entry!(
        T,
        q4_1::BlockQ4_1,
        q8_1::BlockQ8_1,
        q4_1_avx2::vec_dot_q4_1_q8_1_avx2,
        q4_1_avx2::gemv_q4_1_q8_1_avx2
    );
    // Prompt batches: two activation rows per pass, same per-output order.
    k.q4_1.gemm = q4_1_avx2::gemm_q4_1_q8_1_avx2;
    k.q5_0 = gemv_entry!(
        T,
        q5_0::BlockQ5_0,
        q8_0::BlockQ8_0,
        q5_0_avx2::vec_dot_q5_0_q8_0_avx2,
        q5_0_avx2::gemv_q5_0_q8_0_avx2
    );
    // Prompt batches: two activation rows per pass, same per-output order.
    k.q5_0.gemm = q5_0_avx2::gemm_q5_0_q8_0_avx2;
    k.q5_1 = gemv_entry!(
        T,
        q5_1::BlockQ5_1,
        q8_1::BlockQ8_1,
        q5_1_avx2::vec_dot_q5_1_q8_1_avx2,
        q5_1_avx2::gemv_q5_1_q8_1_avx2
    );
    k.q8_0 = gemv_entry!(
        T,
        q8_0::BlockQ8_0,
        q8_0::BlockQ8_0,
        q8_0_avx2::vec_dot_q8_0_q8_0_avx2,
        q8_0_avx2::gemv_q8_0_q8_0_avx2
    );
    k.q8_0.gemm = q8_0_avx2::gemm_q8_0_q8_0_avx2;
    k.iq4_nl = gemv_entry!(
        T,
        iq4_nl::BlockIq4Nl,
        q8_0::BlockQ8_0,
        iq4_nl_avx2::vec_dot_iq4_nl_q8_0_avx2,
        iq4_nl_avx2::gemv_iq4_nl_q8_0_avx2
    );
    k.q2_k = crate::dot_entry!(T, q2_k::BlockQ2K, q8_k::BlockQ8K, q2_k_avx2::vec_dot_q2_k_q8_k_avx2);
    k.q3_k = crate::dot_entry!(T, q3_k::BlockQ3K, q8_k::BlockQ8K, q3_k_avx2::vec_dot_q3_k_q8_k_avx2);
    k.q4_k = x8_entry!(
        T,
        q4_k::BlockQ4K,
        q8_k::BlockQ8K,
        q4_k_avx2::vec_dot_q4_k_q8_k_avx2,
        x8_avx2::gemv_q4_k_q8_k_x8_avx2,
        x8_avx2::gemm_q4_k_q8_k_x8_avx2
    );
    k.q5_k = crate::dot_entry!(T, q5_k::BlockQ5K, q8_k::BlockQ8K, q5_k_avx2::vec_dot_q5_k_q8_k_avx2);
    k.q6_k = gemv_entry!(
        T,
        q6_k::BlockQ6K,
        q8_k::BlockQ8K,
        q6_k_avx2::vec_dot_q6_k_q8_k_avx2,
        q6_k_avx2::gemv_q6_k_q8_k_avx2
    );
    k.quantize_q8_0 = quantize_entry!(T, q8_0::BlockQ8_0, q8_0_avx2::quantize_q8_0_avx2);
    k.quantize_q8_1 = quantize_entry!(T, q8_1::BlockQ8_1, q8_1_avx2::quantize_q8_1_avx2);
    k.quantize_q8_k = quantize_entry!(T, q8_k::BlockQ8K, q8_k_avx2::quantize_q8_k_avx2);
    k.attn = crate::attn::AttnEntry {
        tier: T,
        dot_f16: floats_avx2::attn_dot_f16_avx2,
        mad_f16: floats_avx2::attn_mad_f16_avx2,
        mad_f16_ph: floats_avx2::attn_mad_f16_ph_avx2,
        scale_f16: floats_avx2::attn_scale_f16_avx2,
        dots_f16: floats_avx2::attn_dots_f16_avx2,
        mads_f16: floats_avx2::attn_mads_f16_avx2,
        widen_f16: floats_avx2::attn_widen_f16_avx2,
        dot_f32_x4: floats_avx2::attn_dot_f32_x4_avx2,
        dot_f32_x4_pair: floats_avx2::attn_dot_f32_x4_pair_avx2,
        mad_f32: floats_avx2::attn_mad_f32_avx2,
    };
    k.act = crate::act::ActEntry {
        tier: T,
        exp: act_avx2::exp_avx2,
        silu: act_avx2::silu_avx2,
        swiglu: act_avx2::swiglu_avx2,
        geglu: act_avx2::geglu_avx2,
    };
    k.tile = crate::attn_tile::TileEntry {
        tier: T,
        gemm: attn_tile_avx2::gemm_f32_avx2,
        softmax: attn_tile_avx2::softmax_tile_avx2,
    };
}

/// Whether this CPU has AVX-512 VNNI (`vpdpbusd`), detected on its own: the
/// AVX-512 tier does not require it, and kernels that use it have a twin
/// without it.
fn has_avx512_vnni() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx512vnni")
    }
}

/// A [`DotEntry`] whose `gemv` is an AVX-512 kernel and whose `vec_dot` (one
/// row) is the AVX2 kernel `$one` of the same float order: the AVX-512
/// kernels put two rows in one vector.
macro_rules! avx512_entry {
    ($W:ty, $A:ty, $one:path, $gemv:path) => {{
        unsafe fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: the caller upholds `VecDotFn`'s contract (the CPU has the
            // AVX-512 tier, which includes AVX2, FMA and F16C; whole aligned
            // blocks of the same count), which is `$one`'s.
            unsafe { $one(bytemuck::cast_slice::<u8, $W>(w), bytemuck::cast_slice::<u8, $A>(a)) }
        }
        DotEntry {
            tier: Tier::Avx2,
            vec_dot,
            gemv_tier: Tier::Avx512,
            gemv: $gemv,
            gemm_tier: Tier::Avx512,
            gemm: crate::gemm_by_rows!($gemv),
        }
    }};
}

/// The default table's share of the AVX-512 tier ([`crate::Kernels::best`]):
/// only the kernels that measured faster than their AVX2 twins on the one
/// AVX-512 CPU at hand (a Zen 4 VM), on top of the AVX2 table. So far
/// those are the Q8_0 and Q5_0 prompt gemms and gemvs and the Q4_0 prompt
/// gemm, with 256-bit VNNI (`ember bench -r 3`, AVX2 table → default table, two or three rounds:
/// SmolLM2 Q8_0 pp512 -t 1 307/312 → 395/395 t/s, -t 2 570/607 → 762/740;
/// Gemma 3 pp512 -t 1 403/393 → 464/463, -t 2 722/775 → 879/863; Gemma 3
/// tg64 -t 1, Q5_0 gemv added, 80.1/77.9/79.8 → 85.7/82.1/84.2, -t 2
/// within the noise; the Q8_0 gemv added, 4 rounds in rotated order, means:
/// SmolLM2 Q8_0 tg64 -t 1 169.6 → 173.8, -t 2 249.2 → 249.0, Gemma 3 -t 1
/// 90.0 → 92.8, -t 2 143.7 → 148.0; the Q4_0 gemm, three rounds: SmolLM2
/// Q4_0 pp512 -t 1 600/593/590 → 700/695/705, -t 2 1138/1146/1132 →
/// 1304/1346/1293); without VNNI, none of those. With AVX-512 F
/// alone, attention's f16 value accumulation ([`floats_avx512`]; Gemma 3
/// tg128 -t 1 87.0/88.6 → 89.7/89.7 t/s). The whole AVX-512 table
/// ([`plug_avx512`]) takes them too.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL (and AVX2, FMA, F16C).
pub(crate) unsafe fn plug_avx512_measured(k: &mut Kernels) {
    // The entry's tier is what its functions need: now AVX-512 F for one.
    k.attn.tier = Tier::Avx512;
    k.attn.mads_f16 = floats_avx512::attn_mads_f16_avx512;
    if has_avx512_vnni() {
        k.tier = Tier::Avx512;
        k.q8_0.gemm_tier = Tier::Avx512;
        k.q8_0.gemm = q8_0_avx512::gemm_q8_0_q8_0_vnni256;
        k.q5_0.gemm_tier = Tier::Avx512;
        k.q5_0.gemm = q5_0_avx512::gemm_q5_0_q8_0_vnni256;
        k.q5_0.gemv_tier = Tier::Avx512;
        k.q5_0.gemv = q5_0_avx512::gemv_q5_0_q8_0_vnni256;
        k.q8_0.gemv_tier = Tier::Avx512;
        k.q8_0.gemv = q8_0_avx512::gemv_q8_0_q8_0_vnni256;
        k.q4_0.gemm_tier = Tier::Avx512;
        k.q4_0.gemm = x8_avx512::gemm_q4_0_q8_0_x8_vnni256;
    }
}

/// Replaces table entries with their AVX-512 versions (the VNNI builds where
/// the CPU has VNNI). Formats without an AVX-512 kernel keep their AVX2 one.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL (and AVX2, FMA, F16C).
pub(crate) unsafe fn plug_avx512(k: &mut Kernels) {
    use Tier::Avx512 as T;
    k.tier = T;
    use q4_0_avx2::vec_dot_q4_0_q8_0_avx2 as q4_0_one;
    use q4_1_avx2::vec_dot_q4_1_q8_1_avx2 as q4_1_one;
    use q4_k_avx2::vec_dot_q4_k_q8_k_avx2 as q4_k_one;
    use q5_0_avx2::vec_dot_q5_0_q8_0_avx2 as q5_0_one;
    use q6_k_avx2::vec_dot_q6_k_q8_k_avx2 as q6_k_one;
    use q8_0_avx2::vec_dot_q8_0_q8_0_avx2 as q8_0_one;
    if has_avx512_vnni() {
        k.q4_0 = x8_entry!(
            T,
            q4_0::BlockQ4_0,
            q8_0::BlockQ8_0,
            q4_0_one,
            x8_avx512::gemv_q4_0_q8_0_x8_avx512vnni,
            x8_avx512::gemm_q4_0_q8_0_x8_avx512vnni
        );
        k.q4_1 = avx512_entry!(q4_1::BlockQ4_1, q8_1::BlockQ8_1, q4_1_one, q4_1_avx512::gemv_q4_1_q8_1_avx512vnni);
        // Q5_0 and Q8_0: the AVX2 entries with the 256-bit VNNI gemvs and
        // gemms (plug_avx512_measured, below).
    } else {
        k.q4_0 = x8_entry!(
            T,
            q4_0::BlockQ4_0,
            q8_0::BlockQ8_0,
            q4_0_one,
            x8_avx512::gemv_q4_0_q8_0_x8_avx512,
            x8_avx512::gemm_q4_0_q8_0_x8_avx512
        );
        k.q4_1 = avx512_entry!(q4_1::BlockQ4_1, q8_1::BlockQ8_1, q4_1_one, q4_1_avx512::gemv_q4_1_q8_1_avx512);
        k.q5_0 = avx512_entry!(q5_0::BlockQ5_0, q8_0::BlockQ8_0, q5_0_one, q5_0_avx512::gemv_q5_0_q8_0_avx512);
        k.q8_0 = avx512_entry!(q8_0::BlockQ8_0, q8_0::BlockQ8_0, q8_0_one, q8_0_avx512::gemv_q8_0_q8_0_avx512);
    }
    // Prompt batches of Q4_1, Q5_0 and Q8_0: the AVX2 gemms (several weight
    // rows × several activation rows per pass) give the gemvs' bits and
    // share each weight load between activation rows, which the AVX-512 gemv
    // run once per activation row does not.
    k.q4_1.gemm_tier = Tier::Avx2;
    k.q4_1.gemm = q4_1_avx2::gemm_q4_1_q8_1_avx2;
    k.q5_0.gemm_tier = Tier::Avx2;
    k.q5_0.gemm = q5_0_avx2::gemm_q5_0_q8_0_avx2;
    k.q8_0.gemm_tier = Tier::Avx2;
    k.q8_0.gemm = q8_0_avx2::gemm_q8_0_q8_0_avx2;
    // The kernels the default table takes from this tier: attention's f16
    // value accumulation (512-bit embedded rounding) and, with VNNI, Q8_0's
    // and Q5_0's gemms (the AVX2 tiled order with 256-bit `vpdpbusd`) and
    // Q5_0's gemv.
    // SAFETY: this function's contract is that one's.
    unsafe { plug_avx512_measured(k) };
    // Q4_K and Q6_K: BW-only builds (their scales multiply i16 pair sums, so
    // VNNI would add a 32-bit multiply, not save an instruction).
    k.q4_k = x8_entry!(
        T,
        q4_k::BlockQ4K,
        q8_k::BlockQ8K,
        q4_k_one,
        x8_avx512::gemv_q4_k_q8_k_x8_avx512,
        x8_avx512::gemm_q4_k_q8_k_x8_avx512
    );
    // Prompt batches of 8+ rows take the tiled order (`matmul`), AVX2 code.
    k.q6_k = avx512_entry!(q6_k::BlockQ6K, q8_k::BlockQ8K, q6_k_one, q6_k_avx512::gemv_q6_k_q8_k_avx512);
    k.quantize_q8_0 = quantize_entry!(T, q8_0::BlockQ8_0, q8_0_avx512::quantize_q8_0_avx512);
    k.quantize_q8_1 = quantize_entry!(T, q8_1::BlockQ8_1, q8_1_avx512::quantize_q8_1_avx512);
    k.quantize_q8_k = quantize_entry!(T, q8_k::BlockQ8K, q8_k_avx512::quantize_q8_k_avx512);
}
