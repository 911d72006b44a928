//! Branch-free `f32` elementary functions for the noise kernels.
//!
//! `std`'s `ln`/`exp`/`sin_cos` are calls into libm, which LLVM cannot vectorise, so the
//! lane loops would run one element at a time. These versions use only `+ - * /`,
//! integer bit operations and selects, so loops over lanes vectorise, and since IEEE
//! arithmetic is exactly rounded (and Rust never fuses `a * b + c` into an FMA) every
//! code path -- scalar, SSE2, AVX2, AVX-512, or a CUDA kernel compiled without FMA
//! contraction and with IEEE division and square root (nvcc's defaults) -- gets
//! bit-identical results.
//!
//! Accuracy against the exact (`f64`) results, measured once over all inputs:
//! `ln` 0.96 ulp at most over all positive normal floats; `exp` 1.23 ulp at most over
//! all inputs with a normal result (subnormal results are within one subnormal step);
//! over all multiples of 2^-24 in [0, 1], `sincos_turns` 9.0e-8 and `cos_turns`
//! 2.05e-7 absolute error at most. The tests below check 1, 1.5 ulp, 2^-23 and 2^-22
//! on sweeps of some 10 million inputs each.

/// Bits of `sqrt(1/2)` (0.70710677), the lower end of the reduced mantissa range of `ln`.
const SQRT_HALF_BITS: i32 = 0x3f35_04f3;
/// High part of ln 2 (0x3f317200): its low 9 significand bits are zero, so `n * LN2_HI`
/// is exact for |n| < 512.
const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
/// ln 2 - LN2_HI, rounded to `f32`.
const LN2_LO: f32 = (std::f64::consts::LN_2 - 0.693_145_751_953_125) as f32;
/// 1.5 * 2^23. For |x| < 2^22, `x + SHIFT` has ulp 1, so the addition rounds x to the
/// nearest integer (ties to even) and leaves that integer in the low significand bits.
const SHIFT: f32 = 12_582_912.0;

/// Maps a random word to a uniform variate strictly inside (0, 1).
///
/// The top 23 bits j of `w` select one of 2^23 cells and the result is the cell's
/// centre, `(j + 0.5) * 2^-23`, which is exact in `f32` (24 significant bits). So the
/// values run from 2^-24 to 1 - 2^-24, and `ln u` and `ln(-ln u)` are always finite.
/// (With 24 bits, `((w >> 8) + 0.5) * 2^-24`, the top cell would round to exactly 1.0.)
///
/// Computed as (1 + j 2^-23) - (1 - 2^-24): the first number is j placed in the
/// significand of 1.0, and the subtraction is exact (Sterbenz), so this equals
/// `((w >> 9) as f32 + 0.5) * 2^-23` bit for bit, in three integer-friendly operations.
#[inline(always)]
pub(crate) fn uniform(w: u32) -> f32 {
    const ONE_MINUS_HALF_CELL: f32 = 1.0 - 1.0 / 16_777_216.0;
    f32::from_bits(0x3f80_0000 | (w >> 9)) - ONE_MINUS_HALF_CELL
}

/// Natural logarithm for positive, normal, finite `x` (no special cases are handled:
/// zero, subnormals, infinities and NaN give meaningless results).
///
/// Writes x = 2^e * m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), and uses
/// ln(1 + f) = 2 atanh(s) with s = f / (2 + f), |s| <= 0.1716:
/// 2 atanh(s) = 2s + s R(s^2), R = 2s^2/3 + 2s^4/5 + 2s^6/7 + 2s^8/9 (+ 2s^10/11 + ...,
/// whose omission is a relative error below 4e-9). Since 2s = f - s f, this is
/// f - s (f - R): the exact f dominates and the rounded correction is at most 21 % of it,
/// which keeps the error near 1 ulp also for x close to 1.
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    const R1: f32 = 2.0 / 3.0;
    const R2: f32 = 2.0 / 5.0;
    const R3: f32 = 2.0 / 7.0;
    const R4: f32 = 2.0 / 9.0;
    // Subtracting the bits of sqrt(1/2) moves the exponent boundary to sqrt(1/2): the
    // arithmetic shift then yields e and the low 23 bits the mantissa offset.
    let t = (x.to_bits() as i32).wrapping_sub(SQRT_HALF_BITS);
    let e = (t >> 23) as f32;
    let m = f32::from_bits(((t & 0x007f_ffff) + SQRT_HALF_BITS) as u32);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * (R1 + z * (R2 + z * (R3 + z * R4)));
    let ln_m = f - s * (f - r);
    e * LN2_HI + (ln_m + e * LN2_LO)
}

/// 2^n as `f32` for n in [-126, 127], built from the exponent field.
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits(((n + 127) << 23) as u32)
}

/// Exponential. Inputs are clamped to [-104, 88.72], so results run from 0 (through
/// gradual underflow) to about `f32::MAX`; NaN maps to e^-104 = 0.
///
/// x = n ln 2 + r with n = round(x / ln 2), |r| <= ln 2 / 2 (plus a rounding sliver);
/// e^r by its Taylor polynomial to r^7/7! (truncation error below 7e-9 relative), then
/// scaled by 2^n in two steps 2^(n/2) * 2^(n - n/2), so results down to the subnormal
/// range are rounded once instead of being flushed to zero.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const P2: f32 = 1.0 / 2.0;
    const P3: f32 = 1.0 / 6.0;
    const P4: f32 = 1.0 / 24.0;
    const P5: f32 = 1.0 / 120.0;
    const P6: f32 = 1.0 / 720.0;
    const P7: f32 = 1.0 / 5040.0;
    // Written as selects (not f32::max/min) so NaN handling costs no extra instructions.
    let x = if x > -104.0 { x } else { -104.0 };
    let x = if x < 88.72 { x } else { 88.72 };
    let k = x * LOG2_E + SHIFT;
    let n_f = k - SHIFT;
    let n = (k.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    // n_f * LN2_HI is exact and close to x, so the first subtraction is exact.
    let r = (x - n_f * LN2_HI) - n_f * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (P2 + r * (P3 + r * (P4 + r * (P5 + r * (P6 + r * P7))))));
    // n is in [-150, 128]; both halves are in [-75, 64], where pow2 is a normal number.
    let n1 = n >> 1;
    p * pow2(n1) * pow2(n - n1)
}

/// `(sin 2 pi u, cos 2 pi u)` for `u` in [0, 1] (the angle is given in turns).
///
/// 4u = q + f with q = round(4u) in 0..=4 and |f| <= 1/2; both steps are exact, so there
/// is no range-reduction error. With h = pi/2, sin(h f) and cos(h f) come from their
/// Taylor polynomials to degree 9 and 10 (truncation below 2e-9), and the quadrant q is
/// applied by swapping and sign-flipping, all without branches.
#[inline(always)]
pub(crate) fn sincos_turns(u: f32) -> (f32, f32) {
    const H: f64 = std::f64::consts::FRAC_PI_2;
    const S1: f32 = H as f32;
    const S3: f32 = (-H * H * H / 6.0) as f32;
    const S5: f32 = (H * H * H * H * H / 120.0) as f32;
    const S7: f32 = (-H * H * H * H * H * H * H / 5040.0) as f32;
    const S9: f32 = (H * H * H * H * H * H * H * H * H / 362_880.0) as f32;
    const C2: f32 = (-H * H / 2.0) as f32;
    const C4: f32 = (H * H * H * H / 24.0) as f32;
    const C6: f32 = (-H * H * H * H * H * H / 720.0) as f32;
    const C8: f32 = (H * H * H * H * H * H * H * H / 40_320.0) as f32;
    const C10: f32 = (-H * H * H * H * H * H * H * H * H * H / 3_628_800.0) as f32;
    let x = 4.0 * u;
    let k = x + SHIFT;
    let q = k.to_bits().wrapping_sub(SHIFT.to_bits());
    let f = x - (k - SHIFT);
    let z = f * f;
    let s = f * (S1 + z * (S3 + z * (S5 + z * (S7 + z * S9))));
    let c = 1.0 + z * (C2 + z * (C4 + z * (C6 + z * (C8 + z * C10))));
    // sin(h (q + f)) and cos(h (q + f)): odd quadrants swap sin and cos; sin is negative
    // in quadrants 2 and 3, cos in quadrants 1 and 2 (bit 1 of q, resp. of q + 1).
    let odd = q & 1 != 0;
    let (s, c) = if odd { (c, s) } else { (s, c) };
    let sin = f32::from_bits(s.to_bits() ^ ((q & 2) << 30));
    let cos = f32::from_bits(c.to_bits() ^ ((q.wrapping_add(1) & 2) << 30));
    (sin, cos)
}

/// `cos 2 pi u` for `u` in [0, 1] (the angle in turns), cheaper than [`sincos_turns`]
/// when the sine is not needed.
///
/// With a = |u - 1/2| and q = 1 - 4a in [-1, 1], cos(2 pi u) = -cos(2 pi a) =
/// -sin(h q), h = pi/2; for the multiples of 2^-24 that [`uniform`] produces both steps
/// are exact (for other u the reduction rounds by at most 2^-26 turns). sin(h q) comes
/// from its Taylor polynomial to degree 13 (truncation below 7e-10), evaluated as
/// q h + q z P(z) with z = q^2 so that the dominant product is rounded only once.
/// Absolute error within 2^-22 (2 ulp of 1; the rounding of h to `f32` alone costs
/// 4.4e-8 at |q| = 1), which is plenty for the normal deviate of the gamma sampler.
#[cfg(test)]
#[inline(always)]
pub(crate) fn cos_turns(u: f32) -> f32 {
    const H: f64 = std::f64::consts::FRAC_PI_2;
    // Coefficients of -sin(h q) = -(h q - (h q)^3/3! + ...), negated here for free.
    const N1: f32 = -H as f32;
    const N3: f32 = (H * H * H / 6.0) as f32;
    const N5: f32 = (-H * H * H * H * H / 120.0) as f32;
    const N7: f32 = (H * H * H * H * H * H * H / 5040.0) as f32;
    const N9: f32 = (-H * H * H * H * H * H * H * H * H / 362_880.0) as f32;
    const N11: f32 = (H * H * H * H * H * H * H * H * H * H * H / 39_916_800.0) as f32;
    const N13: f32 = (-H * H * H * H * H * H * H * H * H * H * H * H * H / 6_227_020_800.0) as f32;
    let a = f32::from_bits((u - 0.5).to_bits() & 0x7fff_ffff);
    let q = 1.0 - 4.0 * a;
    let z = q * q;
    let p = N3 + z * (N5 + z * (N7 + z * (N9 + z * (N11 + z * N13))));
    q * N1 + (q * z) * p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error of `got` against the exact value `want`, in units of the spacing of `f32`
    /// numbers at `want` (for subnormal results: the subnormal spacing 2^-149).
    fn ulps(got: f32, want: f64) -> f64 {
        let a = want.abs();
        let spacing = if a < f32::MIN_POSITIVE as f64 {
            2f64.powi(-149)
        } else {
            2f64.powi(a.log2().floor() as i32 - 23)
        };
        (got as f64 - want).abs() / spacing
    }

    #[test]
    fn uniform_is_strictly_inside_unit_interval() {
        assert_eq!(uniform(0), 2f32.powi(-24));
        assert_eq!(uniform(u32::MAX), 1.0 - 2f32.powi(-24));
        assert!(uniform(u32::MAX) < 1.0);
        assert!(ln(uniform(u32::MAX)) < 0.0);
        assert!((-ln(uniform(u32::MAX))).is_normal());
    }

    /// Every 211th bit pattern of the positive normal floats (about 10 million inputs),
    /// plus the neighbourhood of 1, where the result is small and relative error matters.
    #[test]
    fn ln_within_1_ulp() {
        let mut worst = 0f64;
        let lo = f32::MIN_POSITIVE.to_bits();
        let hi = f32::MAX.to_bits();
        let near_one = (1.0f32.to_bits() - 100_000)..(1.0f32.to_bits() + 100_000);
        for b in (lo..=hi).step_by(211).chain(near_one) {
            let x = f32::from_bits(b);
            let want = (x as f64).ln();
            if want == 0.0 {
                assert_eq!(ln(x), 0.0);
                continue;
            }
            worst = worst.max(ulps(ln(x), want));
        }
        assert!(worst <= 1.0, "ln: worst error {worst} ulp");
    }

    /// Every 257th bit pattern with |x| in [0, 104] (negative) and [0, 88.72] (positive):
    /// about 8 million inputs, some 30,000 in each binade.
    #[test]
    fn exp_within_1_5_ulp() {
        let mut worst = 0f64;
        let mut check = |x: f32| {
            let want = (x as f64).exp();
            let err = ulps(exp(x), want);
            if want >= f32::MIN_POSITIVE as f64 {
                worst = worst.max(err);
            } else {
                // Subnormal results: a single rounding of the 2^-150-scaled product, so
                // within one subnormal spacing.
                assert!(err <= 1.0, "exp({x}) = {} vs {want}", exp(x));
            }
        };
        for b in (0..=104f32.to_bits()).step_by(257) {
            check(-f32::from_bits(b));
        }
        for b in (0..=88.72f32.to_bits()).step_by(257) {
            check(f32::from_bits(b));
        }
        assert!(worst <= 1.5, "exp: worst error {worst} ulp");
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    /// All 2^23 + 1 inputs u = j 2^-23 and all cell centres u = (j + 1/2) 2^-23 that
    /// `uniform` produces.
    #[test]
    fn sincos_within_2_pow_minus_23() {
        let mut worst = 0f64;
        for j in 0..=(1u32 << 24) {
            let u = j as f32 * 2f32.powi(-24);
            let (s, c) = sincos_turns(u);
            let a = std::f64::consts::TAU * u as f64;
            worst = worst.max((s as f64 - a.sin()).abs());
            worst = worst.max((c as f64 - a.cos()).abs());
        }
        assert!(worst <= 2f64.powi(-23), "sincos: worst abs error {worst:e}");
        assert_eq!(sincos_turns(0.0), (0.0, 1.0));
        assert_eq!(sincos_turns(0.25), (1.0, 0.0));
    }

    /// The same inputs as `sincos_within_2_pow_minus_23`.
    #[test]
    fn cos_within_2_pow_minus_22() {
        let mut worst = 0f64;
        for j in 0..=(1u32 << 24) {
            let u = j as f32 * 2f32.powi(-24);
            let want = (std::f64::consts::TAU * u as f64).cos();
            worst = worst.max((cos_turns(u) as f64 - want).abs());
        }
        assert!(worst <= 2f64.powi(-22), "cos: worst abs error {worst:e}");
        assert_eq!(cos_turns(0.0), 1.0);
        assert_eq!(cos_turns(0.5), -1.0);
    }
}
