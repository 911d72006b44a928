//! The Sum-of-Gamma sampler: one uniform per value, through a table of the quantile
//! function of Y = sum_{i=1..s} Gamma(1/k, k/i) (see `sog_exact.rs`), built once per
//! (k, s) in `f64` and cached for the life of the process.
//!
//! # The table
//!
//! A random word `w` gives a half (its top bit: 0 lower, 1 upper) and a probability
//! `m = ((w & 0x7fff_ffff) as f32 + 0.5) * 2^-32`, at most `0.5 - 2^-25` (the largest
//! `f32` below 1/2), so `m` runs from 2^-33 to just below 1/2. The value is Y = F^-1(m) in
//! the lower half and Y = S^-1(m) = F^-1(1 - m) in the upper: one word covers both tails
//! down to probability 2^-33 = 1.2e-10 each.
//!
//! Each of the 32 binades of `m` ([2^e, 2^(e+1)), e = -33..=-2) is cut into 64 equal
//! intervals: an interval is addressed by the exponent and the top 6 mantissa bits of
//! `m`, and its local coordinate x in [0, 1) is the remaining 17 mantissa bits, all
//! exact. On each interval a cubic Hermite polynomial through the exact values and
//! derivatives at both ends is stored as four `f32` coefficients `c0..c3`:
//! `p = c0 + x (c1 + x (c2 + x c3))`. In the upper half p is Y. In the lower half p is
//! ln Y, so that the lower tail, where F(y) ~ C y^(s/k) is extremely steep for large k
//! (k = 1000: the median of Y is about 1e-298), is a smooth, nearly linear function; Y
//! is then `exp(p)`. A value is `(max(Y, 0) - ln s) / k`, all in `f32`, with the
//! operations of `math.rs`, so the CUDA kernels reproduce it bit for bit from the same
//! table.
//!
//! The accuracy (tested at every table interval of 21 configurations): within
//! 1e-6 max(1, Y) of the exact Y for every word, measured against the `f64` quantile at
//! the same `m`.

use super::math::exp;
use super::sog_exact::SogExact;
use std::sync::{Arc, Mutex};

/// Binades of m: exponents -33 ..= -2.
pub(crate) const BINADES: usize = 32;
/// log2 of the intervals per binade.
pub(crate) const LOG_SUB: u32 = 6;
/// Intervals per binade.
pub(crate) const SUB: usize = 1 << LOG_SUB;
/// Intervals per half.
pub(crate) const INTERVALS: usize = BINADES * SUB;
/// Coefficients in a table: 2 halves, 4 per interval (a power of two, so that an index
/// can be masked into range for free).
pub(crate) const TABLE_LEN: usize = 2 * INTERVALS * 4;
const _: () = assert!(TABLE_LEN.is_power_of_two());
/// The exponent of the smallest m.
const MIN_EXP: i32 = -33;
/// 2^-32: a 31-bit integer times this is m before the half-cell shift.
const TWO_POW_M32: f32 = 1.0 / 4_294_967_296.0;
/// The largest `f32` below 1/2: m is clamped to it (`0x7fff_ffff as f32` rounds up to
/// 2^31, which would give exactly 1/2).
const M_MAX: f32 = f32::from_bits(0x3eff_ffff);

/// The quantile table of one Sum-of-Gamma configuration (k, s), as the sampler reads it (see
/// the module documentation of `noise` for the sampler). Public so that the CUDA path (and its
/// host emulation in the tests) can upload the very same coefficients; get one with
/// `imle_runtime::cuda::params::sog_coefficients` (feature `cuda` or `cuda-dry-run`).
pub struct SogTable {
    k: f32,
    terms: u32,
    /// ln s, computed in `f64` and rounded.
    ln_s: f32,
    coef: Box<[f32; TABLE_LEN]>,
}

impl std::fmt::Debug for SogTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SogTable")
            .field("k", &self.k)
            .field("terms", &self.terms)
            .finish_non_exhaustive()
    }
}

/// The probability m of node `n` (0 ..= INTERVALS) of a half: 2^(e) (1 + j / 64) with
/// e = n / 64 - 33, j = n % 64; node INTERVALS is 1/2.
fn node_m(n: usize) -> f64 {
    let e = (n / SUB) as i32 + MIN_EXP;
    2f64.powi(e) * (1.0 + (n % SUB) as f64 / SUB as f64)
}

impl SogTable {
    /// Builds the table for k > 0 (finite) and s in 1..=255 (about 2 ms for k = 10,
    /// s = 10; the time grows with the number of mixture terms, s^2 / k or so).
    pub(crate) fn build(k: f32, terms: u32) -> Result<Self, String> {
        let exact = SogExact::new(f64::from(k), terms)?;
        // The two halves are independent: build them on two threads. Plain scoped threads,
        // not rayon: `get` builds under its lock, and a rayon worker waiting in `join` may
        // pick up another job that wants the same lock, which would deadlock.
        let (lower, upper) = std::thread::scope(|scope| {
            let upper = scope.spawn(|| Self::half(&exact, terms, true));
            let lower = Self::half(&exact, terms, false);
            (
                lower,
                upper.join().expect("the table's upper half panicked"),
            )
        });
        let mut coef = lower?;
        coef.extend(upper?);
        Ok(Self {
            k,
            terms,
            ln_s: f64::from(terms).ln() as f32,
            coef: coef
                .into_boxed_slice()
                .try_into()
                .expect("TABLE_LEN coefficients"),
        })
    }

    /// The coefficients of one half.
    fn half(exact: &SogExact, terms: u32, upper: bool) -> Result<Vec<f32>, String> {
        let mut coef = vec![0.0f32; INTERVALS * 4];
        {
            // Nodes from the median outwards, each starting from its neighbour's solution
            // moved along the tangent.
            let mut nodes = vec![(0.0f64, 0.0f64); INTERVALS + 1];
            let mut guess = (f64::from(terms).ln() + 0.1).ln().max(-1.0);
            let mut prev: Option<(f64, f64, f64)> = None; // (ln m, ln y, slope)
            for n in (0..=INTERVALS).rev() {
                let m = node_m(n);
                if let Some((lm, ly, slope)) = prev {
                    let step = (m.ln() - lm) / slope;
                    if step.is_finite() {
                        guess = ly + if upper { -step } else { step };
                    }
                }
                let sol = exact.ln_quantile(m, upper, guess);
                if !sol.ln_y.is_finite() {
                    return Err(format!("no quantile at probability {m:e}"));
                }
                // d ln F / d ln y = y f / F = y f / m (also for S).
                let slope = (sol.ln_yf - m.ln()).exp();
                prev = Some((m.ln(), sol.ln_y, slope));
                guess = sol.ln_y;
                // Value and d/dm: lower ln Y and 1 / (Y f); upper Y and -1 / f = -Y / (Y f).
                nodes[n] = if upper {
                    let y = sol.ln_y.exp();
                    (y, -(sol.ln_y - sol.ln_yf).exp())
                } else {
                    (sol.ln_y, (-sol.ln_yf).exp())
                };
            }
            for i in 0..INTERVALS {
                let h = node_m(i + 1) - node_m(i);
                let ((y0, d0), (y1, d1)) = (nodes[i], nodes[i + 1]);
                let c = [
                    y0,
                    h * d0,
                    3.0 * (y1 - y0) - h * (2.0 * d0 + d1),
                    2.0 * (y0 - y1) + h * (d0 + d1),
                ];
                for (slot, v) in coef[4 * i..][..4].iter_mut().zip(c) {
                    *slot = v as f32;
                }
            }
        }
        Ok(coef)
    }

    /// The cached table of (k, s), built on first use. One lock per call, never per
    /// value: callers fetch the table once per row or launch.
    pub(crate) fn get(k: f32, terms: u32) -> Result<Arc<SogTable>, String> {
        type Cache = Vec<Arc<SogTable>>;
        static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
        thread_local! {
            static LAST: std::cell::RefCell<Option<Arc<SogTable>>> =
                const { std::cell::RefCell::new(None) };
        }
        let same = |t: &SogTable| t.k.to_bits() == k.to_bits() && t.terms == terms;
        if let Some(t) = LAST.with_borrow(|l| l.as_ref().filter(|t| same(t)).cloned()) {
            return Ok(t);
        }
        // Building under the lock makes concurrent first uses wait for one build instead
        // of each building its own.
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let table = match cache.iter().find(|t| same(t)) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(Self::build(k, terms)?);
                cache.push(t.clone());
                t
            }
        };
        drop(cache);
        LAST.with_borrow_mut(|l| *l = Some(table.clone()));
        Ok(table)
    }

    /// The coefficients, `[half][interval][c0, c1, c2, c3]`: half 0 is the lower tail
    /// (the cubic gives ln Y), half 1 the upper (it gives Y); interval `b * 64 + j` covers
    /// m in 2^(b - 33) [1 + j/64, 1 + (j + 1)/64).
    pub fn coefficients(&self) -> &[f32; TABLE_LEN] {
        &self.coef
    }

    /// k.
    pub fn k(&self) -> f32 {
        self.k
    }

    /// s, the number of terms.
    pub fn terms(&self) -> u32 {
        self.terms
    }

    /// ln s as the sampler uses it.
    pub(crate) fn ln_s(&self) -> f32 {
        self.ln_s
    }

    /// The Sum-of-Gamma value of random word `w` (without the temperature).
    #[cfg(test)]
    #[inline(always)]
    pub(crate) fn value(&self, w: u32) -> f32 {
        let (index, x, lower) = locate(w);
        let c = &self.coef[index..index + 4];
        let p = c[0] + x * (c[1] + x * (c[2] + x * c[3]));
        finish(p, lower, self.ln_s, self.k)
    }
}

/// Where word `w` reads the table: the index of its interval's `c0`, its local coordinate
/// x in [0, 1) (exact), and whether it is in the lower half.
#[inline(always)]
pub(crate) fn locate(w: u32) -> (usize, f32, bool) {
    let lower = w >> 31 == 0;
    let m = (((w & 0x7fff_ffff) as i32) as f32 + 0.5) * TWO_POW_M32;
    let m = if m < M_MAX { m } else { M_MAX };
    let bits = m.to_bits();
    // (biased exponent << 6 | top 6 mantissa bits) - (biased exponent of 2^-33 << 6).
    let interval = (bits >> (23 - LOG_SUB)).wrapping_sub(((127 + MIN_EXP) as u32) << LOG_SUB);
    let x = f32::from_bits(0x3f80_0000 | ((bits << LOG_SUB) & 0x007f_ffff)) - 1.0;
    let half = if lower { 0 } else { INTERVALS };
    // The mask is a no-op for every m (interval < INTERVALS); it lets the compiler drop
    // the bounds checks.
    let index = ((half + interval as usize) * 4) & (TABLE_LEN - 4);
    (index, x, lower)
}

/// From the polynomial's value to the Sum-of-Gamma value: Y = e^p (lower half) or p
/// (upper), clamped at 0, then (Y - ln s) / k.
#[inline(always)]
pub(crate) fn finish(p: f32, lower: bool, ln_s: f32, k: f32) -> f32 {
    let y = if lower { exp(p) } else { p };
    let y = if y > 0.0 { y } else { 0.0 };
    (y - ln_s) / k
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// The m and half that `locate` decodes, recomputed independently.
    fn m_of(w: u32) -> f64 {
        let m = (((w & 0x7fff_ffff) as f32) + 0.5) * TWO_POW_M32;
        f64::from(m.min(M_MAX))
    }

    /// The words checked for one configuration: per half, per interval, its first word,
    /// its last word and one in between (rounding of m maps several words to one
    /// value; these cover every interval's both ends), plus the extreme words. That is
    /// 2 * 2048 * 3 + 4 = 12,292 words.
    fn words() -> Vec<u32> {
        let mut out = vec![0, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];
        for half in [0u32, 0x8000_0000] {
            for i in 0..INTERVALS {
                let lo = node_m(i);
                let hi = node_m(i + 1);
                for f in [0.0, 0.37, 0.999] {
                    let m = lo + f * (hi - lo);
                    let v = (m / f64::from(TWO_POW_M32) - 0.5)
                        .round()
                        .clamp(0.0, 2147483647.0);
                    out.push(half | v as u32);
                }
            }
        }
        out
    }

    /// The accuracy requirement: |eps_table - eps_exact| <= 1e-6 (1/k) max(1, Y)
    /// (tau = 1) for every word checked, where eps_exact = (Y - ln s) / k with Y the `f64`
    /// quantile at the same m, for k in {1, 2, 5, 10, 30, 144, 1000} and s in {1, 10, 50}.
    #[test]
    fn table_values_are_within_1e_6_of_the_exact_quantile() {
        let configs: Vec<(f32, u32)> = [1.0, 2.0, 5.0, 10.0, 30.0, 144.0, 1000.0]
            .into_iter()
            .flat_map(|k| [1, 10, 50].map(|s| (k, s)))
            .collect();
        let words = words();
        assert!(words.len() >= 10_000);
        let worst: Vec<String> = configs
            .par_iter()
            .filter_map(|&(k, s)| {
                let table = SogTable::build(k, s).unwrap();
                let exact = SogExact::new(f64::from(k), s).unwrap();
                let mut guess = [0.0f64; 2];
                let mut worst = (0.0f64, 0u32, 0.0, 0.0);
                for &w in &words {
                    let upper = w >> 31 == 1;
                    let sol = exact.ln_quantile(m_of(w), upper, guess[usize::from(upper)]);
                    guess[usize::from(upper)] = sol.ln_y;
                    let y = sol.ln_y.exp();
                    let want = (y - f64::from(s).ln()) / f64::from(k);
                    let got = f64::from(table.value(w));
                    let rel = (got - want).abs() / (1e-6 / f64::from(k) * y.max(1.0));
                    if rel > worst.0 {
                        worst = (rel, w, got, want);
                    }
                }
                (worst.0 > 1.0).then(|| {
                    format!(
                        "k {k} s {s}: word {:#x} gives {} vs {} ({:.2} of the tolerance)",
                        worst.1, worst.2, worst.3, worst.0
                    )
                })
            })
            .collect();
        assert!(worst.is_empty(), "{worst:#?}");
    }
}
