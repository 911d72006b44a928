//! The reference sampler that the Sum-of-Gamma tests compare the table sampler against
//! (compiled for tests only; until version 0.2 it was the sampler itself).
//!
//! Gamma(shape a, scale 1) variates by Marsaglia and Tsang, "A simple method for
//! generating gamma variables" (ACM TOMS 26(3), 2000), made counter-based: attempt number
//! `j` of a draw consumes exactly one Philox block (see the layout in `mod.rs`), so a
//! draw is a pure function of its counter and can be produced one lane at a time, many
//! lanes at a time, or by a GPU thread, always with the same result.

use super::math::{cos_turns, exp, ln, uniform};
use super::philox::philox4x32_10;

/// Attempts after which the scalar sampler gives up. Each attempt is accepted with
/// probability above 0.95 (d >= 2/3 below), so 2^24 rejections in a row never happen;
/// the bound only makes termination explicit and keeps the attempt number inside the 24
/// bits the counter layout gives it.
pub(crate) const MAX_ATTEMPTS: u32 = 1 << 24;

/// Per-shape constants, computed once per call (in `f32`, with correctly rounded
/// operations, so a GPU kernel can compute the same values).
#[derive(Clone, Copy, Debug)]
pub(crate) struct GammaParams {
    /// d = a' - 1/3 with a' = a + 1 if a < 1, else a' = a.
    pub(crate) d: f32,
    /// c = 1 / sqrt(9 d).
    pub(crate) c: f32,
    /// 1 / a: exponent of the boost U^(1/a), used when a < 1.
    pub(crate) inv_a: f32,
    /// Whether a < 1, which samples Gamma(a + 1) and multiplies by U^(1/a).
    pub(crate) boost: bool,
}

impl GammaParams {
    /// Constants for shape `a` (> 0, finite).
    pub(crate) fn new(a: f32) -> Self {
        let boost = a < 1.0;
        let a_prime = if boost { a + 1.0 } else { a };
        let d = a_prime - 1.0 / 3.0;
        Self {
            d,
            c: 1.0 / (9.0 * d).sqrt(),
            inv_a: 1.0 / a,
            boost,
        }
    }
}

/// One Marsaglia–Tsang attempt from one Philox block `w`: the candidate draw and whether
/// it is accepted.
///
/// Words 0 and 1 give the normal x = sqrt(-2 ln U0) cos(2 pi U1) (Box–Muller, cosine
/// half), word 2 the acceptance uniform, word 3 the boost uniform (used only if `BOOST`).
/// The boost uniform is independent of everything the acceptance decision looks at, so
/// the accepted d v U3^(1/a) is Gamma(a)-distributed. Acceptance is the exact test
/// ln U2 < x^2/2 + d - d v + d ln v (no squeeze, so every path makes one decision).
///
/// U^(1/a) is computed as exp(ln U / a), which cannot produce NaN. For small a it can
/// underflow: for a = 0.1 the draw is below the smallest subnormal (1.4e-45) with
/// probability about (1.4e-45)^0.1 / Gamma(1.1) = 3.5e-5 and then becomes 0. That is
/// harmless: Sum-of-Gamma only adds the draws up, and a term below 1e-38 changes no sum.
#[inline(always)]
pub(crate) fn attempt<const BOOST: bool>(p: &GammaParams, w: [u32; 4]) -> (f32, bool) {
    let x = normal(w[0], w[1]);
    let ln_u = ln(uniform(w[2]));
    let boost = if BOOST { boost_factor(p, w[3]) } else { 1.0 };
    decide::<BOOST>(p, x, ln_u, boost)
}

/// Part of [`attempt`]: the normal x = sqrt(-2 ln U0) cos(2 pi U1). The lane kernels run
/// the parts of an attempt as separate loops, so that the long dependency chains of
/// several vectors overlap.
#[inline(always)]
pub(crate) fn normal(w0: u32, w1: u32) -> f32 {
    (-2.0 * ln(uniform(w0))).sqrt() * cos_turns(uniform(w1))
}

/// Part of [`attempt`]: the boost factor U3^(1/a) = exp(ln U3 / a).
#[inline(always)]
pub(crate) fn boost_factor(p: &GammaParams, w3: u32) -> f32 {
    exp(ln(uniform(w3)) * p.inv_a)
}

/// Last part of [`attempt`]: the candidate d v (times the boost) and the decision.
#[inline(always)]
pub(crate) fn decide<const BOOST: bool>(
    p: &GammaParams,
    x: f32,
    ln_u: f32,
    boost: f32,
) -> (f32, bool) {
    let t = 1.0 + p.c * x;
    let positive = t > 0.0;
    // t > 0 implies t >= 2^-24 (1 + c x is a multiple of 2^-24 below 1), so v >= 2^-72
    // is normal and ln v is valid; otherwise use 1 to keep the arithmetic harmless.
    let v = if positive { t * t * t } else { 1.0 };
    let bound = 0.5 * x * x + p.d - p.d * v + p.d * ln(v);
    let accept = positive & (ln_u < bound);
    let g = p.d * v;
    let g = if BOOST { g * boost } else { g };
    (g, accept)
}

/// Counter word 1 of attempt `attempt` of term `term` (1..=255).
#[inline(always)]
pub(crate) fn attempt_word(attempt: u32, term: u32) -> u32 {
    (attempt << 8) | term
}

/// The scalar sampler: the draw whose attempt `j` uses the Philox block at counter
/// `[ctr0, attempt_word(j, term), ctr2, ctr3]`, trying attempts `first_attempt`,
/// `first_attempt + 1`, and so on until one is accepted. From attempt 0 this is the
/// reference; the vector kernels use a later start to finish a draw whose earlier
/// attempts they already rejected.
#[inline(always)]
pub(crate) fn gamma_from<const BOOST: bool>(
    p: &GammaParams,
    key: [u32; 2],
    [ctr0, term, ctr2, ctr3]: [u32; 4],
    first_attempt: u32,
) -> f32 {
    for j in first_attempt..MAX_ATTEMPTS {
        let w = philox4x32_10([ctr0, attempt_word(j, term), ctr2, ctr3], key);
        let (g, accepted) = attempt::<BOOST>(p, w);
        if accepted {
            return g;
        }
    }
    // Unreachable in practice (see MAX_ATTEMPTS); the mode-like d keeps the result finite.
    p.d
}

/// [`gamma_from`] from attempt 0, with the boost chosen at run time.
pub(crate) fn gamma_ref(p: &GammaParams, key: [u32; 2], ctr: [u32; 4]) -> f32 {
    if p.boost {
        gamma_from::<true>(p, key, ctr, 0)
    } else {
        gamma_from::<false>(p, key, ctr, 0)
    }
}

/// A Sum-of-Gamma value drawn the direct way: s Marsaglia–Tsang gamma draws (term i from
/// the blocks at counters `[e, (attempt << 8) | i, instance, stream]`), each times k / i,
/// added in term order, then (sum - ln s) / k.
pub(crate) fn sog_direct(k: f32, terms: u32, key: [u32; 2], e: u32, instance: u32) -> f32 {
    let p = GammaParams::new(1.0 / k);
    let mut acc = 0.0f32;
    for term in 1..=terms {
        acc += gamma_ref(&p, key, [e, term, instance, 0]) * (k / term as f32);
    }
    (acc - (f64::from(terms).ln() as f32)) / k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::test_stats::{Moments, ks_critical, ks_two_sample};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Gamma};

    const N: usize = 100_000;
    const SHAPES: [f32; 5] = [0.1, 0.2, 0.5, 1.0, 2.5];

    fn ours(a: f32, n: usize) -> Vec<f32> {
        let p = GammaParams::new(a);
        let key = [0x1234_5678, a.to_bits()];
        (0..n as u32)
            .map(|i| gamma_ref(&p, key, [i, 1, 7, 3]))
            .collect()
    }

    /// Two-sample Kolmogorov–Smirnov test against rand_distr's Gamma at level
    /// alpha = 1e-3: reject if D > c(alpha) sqrt((n + m) / (n m)) with
    /// c(alpha) = sqrt(-ln(alpha / 2) / 2) = 1.9495 (asymptotic Kolmogorov distribution).
    /// With n = m = 1e5 the critical D is 0.0087.
    #[test]
    fn matches_rand_distr_gamma_ks() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(20_240_611);
        for a in SHAPES {
            let theirs_dist = Gamma::new(a, 1.0).unwrap();
            let theirs: Vec<f32> = (0..N).map(|_| theirs_dist.sample(&mut rng)).collect();
            let d = ks_two_sample(ours(a, N), theirs);
            let crit = ks_critical(1e-3) * ((2 * N) as f64 / (N * N) as f64).sqrt();
            assert!(d < crit, "shape {a}: KS D = {d} >= {crit}");
        }
    }

    /// Mean and variance of Gamma(a, 1) are both a; the central fourth moment is
    /// 3a(a + 2). Mean: |m - a| < 5 sqrt(a / N). Variance: the sample variance has standard
    /// error sqrt((mu4 - sigma^4) / N) = sqrt((2a^2 + 6a) / N); allow 5 of those.
    #[test]
    fn moments() {
        for a in SHAPES {
            let m = Moments::of(ours(a, N).iter().map(|&x| x as f64));
            let a = a as f64;
            let n = N as f64;
            let mean_tol = 5.0 * (a / n).sqrt();
            let var_tol = 5.0 * ((2.0 * a * a + 6.0 * a) / n).sqrt();
            assert!((m.mean - a).abs() < mean_tol, "shape {a}: mean {}", m.mean);
            assert!((m.var - a).abs() < var_tol, "shape {a}: var {}", m.var);
        }
    }

    /// The acceptance rate the documentation relies on: Marsaglia–Tsang accepts at least
    /// about 0.951 of the attempts (least at d = 2/3, i.e. a = 1 or a -> 0; measured 0.952
    /// there). With 1e5 trials the rate's standard error is sqrt(0.05 * 0.95 / 1e5) =
    /// 0.0007, so require rate > 0.95 - 5 * 0.0007. Also: no NaN, negative or infinite
    /// draw.
    #[test]
    fn acceptance_rate_and_range() {
        for a in [0.01, 0.1, 0.5, 1.0, 1.5, 10.0] {
            let p = GammaParams::new(a);
            let trials = 100_000u32;
            let mut accepted = 0;
            for i in 0..trials {
                let w = philox4x32_10([i, 0, 0, 0], [1, 2]);
                let (g, ok) = if p.boost {
                    attempt::<true>(&p, w)
                } else {
                    attempt::<false>(&p, w)
                };
                if ok {
                    accepted += 1;
                    assert!(g >= 0.0 && g.is_finite(), "shape {a}: draw {g}");
                }
            }
            let rate = accepted as f64 / trials as f64;
            let std_err = (0.05f64 * 0.95 / trials as f64).sqrt();
            assert!(rate > 0.95 - 5.0 * std_err, "shape {a}: acceptance {rate}");
        }
    }
}
