//! Helpers shared by the k-quant reference quantizers, ported from the
//! "2-6 bit quantization in super-blocks" helpers of ggml's `ggml-quants.c`
//! (`nearest_int`, `make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`,
//! `get_scale_min_k4`).
//!
//! The quantizers must produce the same bytes as ggml's, so every float
//! expression keeps ggml's operand order and single-precision rounding (no
//! fused multiply-add), and every integer conversion keeps C's truncation
//! (`as u8` / `as i8` where ggml assigns an `int` to a narrower type).

/// Values whose magnitude is below this count as zero (`GROUP_MAX_EPS`).
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Round to nearest, ties to even, through the float-adding trick of ggml's
/// `nearest_int`: exact for `|fval| <= 4194303`; beyond that (or for NaN) the
/// result is a deterministic value in `-4194304..=4194303`, as in ggml.
#[inline(always)]
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12582912.0;
    let i = val.to_bits() as i32;
    (i & 0x007f_ffff) - 0x0040_0000
}

/// Correctly rounded single-precision square root (IEEE 754, like C's
/// `sqrtf`), computed with integers so that it exists without `std` (core
/// has no `f32::sqrt`) and gives the same bits on every target.
pub(crate) fn sqrt_f32(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 || x == f32::INFINITY {
        return x; // sqrt(-0) = -0
    }
    let bits = x.to_bits();
    let mut exp = (bits >> 23) as i32;
    let mut man = (bits & 0x7f_ffff) as u64;
    if exp == 0 {
        // Subnormal: bring the leading one to bit 23.
        let shift = man.leading_zeros() - 40;
        man <<= shift;
        exp = 1 - shift as i32;
    } else {
        man |= 1 << 23;
    }
    // x = man * 2^e with man in [2^23, 2^24); make e even.
    let mut e = exp - 150;
    if e & 1 != 0 {
        man <<= 1;
        e -= 1;
    }
    // sqrt(x) = sqrt(man * 2^38) * 2^((e - 38) / 2), with man * 2^38 < 2^63.
    let n = man << 38;
    let r = n.isqrt(); // floor, 31 or 32 bits
    let sticky = r * r != n;
    let drop = (64 - r.leading_zeros()) - 24;
    let mut q = r >> drop;
    let rest = r & ((1 << drop) - 1);
    let half = 1u64 << (drop - 1);
    if rest > half || (rest == half && (sticky || q & 1 == 1)) {
        q += 1;
    }
    let mut s = drop as i32 + (e - 38) / 2;
    if q == 1 << 24 {
        q >>= 1;
        s += 1;
    }
    // q in [2^23, 2^24): the result q * 2^s is a normal float.
    f32::from_bits((((s + 150) as u32) << 23) | (q as u32 & 0x7f_ffff))
}

/// ggml's `make_qx_quants` for the reference quantizers: symmetric levels
/// `L[i] in 0..2*nmax` around `nmax`, the scale refined over 18 candidate
/// inverse scales with weights `x*x` (`rmse_type == 1`, no importance matrix).
/// Returns the scale; `x.len() == l.len()`.
pub(crate) fn make_qx_quants_rmse1(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    debug_assert_eq!(x.len(), l_out.len());
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let mut iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (&xi, li) in x.iter().zip(l_out.iter_mut()) {
        let l = clamp(nearest_int(iscale * xi));
        *li = (l + nmax) as i8;
        let w = xi * xi;
        let lf = l as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &xi in x {
            let lf = clamp(nearest_int(iscale * xi)) as f32;
            let w = xi * xi;
            sumlx += w * xi * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (&xi, li) in x.iter().zip(l_out.iter_mut()) {
                *li = (nmax + clamp(nearest_int(iscale * xi))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_q3_quants` with `do_rmse = true`: levels `L[i] in 0..2*nmax`
/// refined by up to five passes of coordinate descent on the weighted error
/// (weights `x*x`). Returns the scale; `x.len() == l.len()`.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    debug_assert_eq!(x.len(), l_out.len());
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (&xi, li) in x.iter().zip(l_out.iter_mut()) {
        let l = clamp(nearest_int(iscale * xi));
        *li = l as i8;
        let w = xi * xi;
        let lf = l as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (&xi, li) in x.iter().zip(l_out.iter_mut()) {
            let w = xi * xi;
            let lf = *li as f32;
            let mut slx = sumlx - w * xi * lf;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * lf * lf;
                let new_l = clamp(nearest_int(xi * sl2 / slx));
                if new_l != *li as i32 {
                    let nf = new_l as f32;
                    slx += w * xi * nf;
                    sl2 += w * nf * nf;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for li in l_out.iter_mut() {
        *li = (*li as i32 + nmax) as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// ggml's `make_qkx2_quants`: asymmetric levels `L[i] in 0..=nmax` with a
/// scale and a minimum, searched over `nstep + 1` inverse scales starting at
/// `rmin` in steps of `rdelta`, minimizing the weighted absolute (`use_mad`)
/// or squared error. Returns `(scale, the_min)` where `the_min >= 0` is the
/// value subtracted (`x ~ scale * L - the_min`). All slices have `x.len()`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    l_aux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    debug_assert!(n > 0 && weights.len() == n && l_out.len() == n && l_aux.len() == n);
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let err = |diff: f32| if use_mad { diff.abs() } else { diff * diff };
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * err(diff);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let mut sum_l = 0.0f32;
        let mut sum_l2 = 0.0f32;
        let mut sum_xl = 0.0f32;
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            l_aux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * l_aux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * err(diff);
            }
            if cur_error < best_error {
                l_out.copy_from_slice(l_aux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and minimum of group `j`
/// (`0..8`) from the 12 packed bytes of a Q4_K / Q5_K block.
#[inline(always)]
pub(crate) fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Packs eight 6-bit scales and minimums the way ggml's Q4_K/Q5_K quantizers
/// do (the inverse of [`get_scale_min_k4`]).
pub(crate) fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        let (l_s, l_m) = (ls[j], lm[j]);
        if j < 4 {
            s[j] = l_s;
            s[j + 4] = l_m;
        } else {
            s[j + 4] = (l_s & 0xF) | ((l_m & 0xF) << 4);
            s[j - 4] |= (l_s >> 4) << 6;
            s[j] |= (l_m >> 4) << 6;
        }
    }
    s
}

/// All eight `(scale, min)` pairs of a Q4_K / Q5_K block, unpacked with
/// [`get_scale_min_k4`].
#[inline(always)]
pub(crate) fn scales_mins_k4(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = get_scale_min_k4(j, q);
    }
    (sc, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-2.4), -2);
        assert_eq!(nearest_int(4194303.0), 4194303);
        assert_eq!(nearest_int(-4194303.0), -4194303);
    }

    #[cfg(feature = "std")]
    #[test]
    fn sqrt_f32_is_correctly_rounded() {
        let check = |x: f32| {
            let (got, want) = (sqrt_f32(x), x.sqrt());
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "sqrt({x:e}) = {got:e}, want {want:e}"
            );
        };
        // Every 61st bit pattern (all exponents, subnormals, NaNs, negatives).
        let mut b = 0u32;
        while let Some(next) = b.checked_add(61) {
            check(f32::from_bits(b));
            b = next;
        }
        for x in [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE, f32::MAX, 1e-45, 2.0, 4.0, 0.25] {
            check(x);
        }
        // Perfect squares and their neighbours.
        for i in 1u32..5000 {
            let sq = (i * i) as f32;
            for x in [sq, f32::from_bits(sq.to_bits() + 1), f32::from_bits(sq.to_bits() - 1)] {
                check(x);
            }
        }
    }

    #[test]
    fn scale_min_packing_round_trips() {
        let ls = [0, 1, 17, 63, 32, 5, 48, 63];
        let lm = [63, 2, 0, 31, 33, 62, 7, 1];
        let q = pack_scale_min_k4(&ls, &lm);
        let (sc, m) = scales_mins_k4(&q);
        assert_eq!(sc, ls);
        assert_eq!(m, lm);
    }
}
