//! Small statistics helpers for the noise tests (compiled only for tests).

/// Sample mean, variance and central fourth moment, accumulated in `f64`.
#[derive(Debug)]
pub(crate) struct Moments {
    pub(crate) n: f64,
    pub(crate) mean: f64,
    /// Unbiased sample variance.
    pub(crate) var: f64,
    /// Central fourth moment (biased estimate, which is fine for a standard error).
    pub(crate) m4: f64,
}

impl Moments {
    pub(crate) fn of(xs: impl Iterator<Item = f64> + Clone) -> Self {
        let (mut n, mut sum) = (0.0, 0.0);
        for x in xs.clone() {
            n += 1.0;
            sum += x;
        }
        let mean = sum / n;
        let (mut s2, mut s4) = (0.0, 0.0);
        for x in xs {
            let d2 = (x - mean) * (x - mean);
            s2 += d2;
            s4 += d2 * d2;
        }
        Self {
            n,
            mean,
            var: s2 / (n - 1.0),
            m4: s4 / n,
        }
    }

    /// Standard error of the sample variance, sqrt((mu4 - sigma^4) / n), with both moments
    /// estimated from the sample.
    pub(crate) fn var_std_err(&self) -> f64 {
        ((self.m4 - self.var * self.var) / self.n).sqrt()
    }
}

/// c(alpha) of the asymptotic Kolmogorov distribution, P(sqrt(n) D > c) = alpha, from
/// its leading term 2 exp(-2 c^2) (the next term, -2 exp(-8 c^2), is below 1e-12 for the
/// alphas used here).
pub(crate) fn ks_critical(alpha: f64) -> f64 {
    (-(alpha / 2.0).ln() / 2.0).sqrt()
}

/// One-sample Kolmogorov–Smirnov statistic sup |F_n(x) - F(x)|.
pub(crate) fn ks_one_sample(mut xs: Vec<f32>, cdf: impl Fn(f64) -> f64) -> f64 {
    xs.sort_by(f32::total_cmp);
    let n = xs.len() as f64;
    let mut d = 0f64;
    for (i, &x) in xs.iter().enumerate() {
        let f = cdf(x as f64);
        d = d.max(f - i as f64 / n).max((i + 1) as f64 / n - f);
    }
    d
}

/// Two-sample Kolmogorov–Smirnov statistic sup |F_n(x) - G_m(x)|.
pub(crate) fn ks_two_sample(mut a: Vec<f32>, mut b: Vec<f32>) -> f64 {
    a.sort_by(f32::total_cmp);
    b.sort_by(f32::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value in both samples before comparing.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

/// Standard normal CDF, from Phi(x) = 1/2 + phi(x) (x + x^3/3 + x^5/(3*5) + ...), a
/// series of positive terms (no cancellation) that converges for every x; used for
/// x >= 0 and by symmetry for x < 0. Absolute error ~1e-15 for |x| <= 8; beyond, the
/// tail is below 1e-15 and is returned as 0 or 1.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    let a = x.abs();
    if a > 8.0 {
        return if x > 0.0 { 1.0 } else { 0.0 };
    }
    let (mut term, mut sum, mut k) = (a, a, 1.0);
    while term > 1e-17 * sum {
        k += 2.0;
        term *= a * a / k;
        sum += term;
    }
    let phi = (-a * a / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let upper = 0.5 + phi * sum;
    if x >= 0.0 { upper } else { 1.0 - upper }
}

#[test]
fn normal_cdf_reference_values() {
    // Phi(1) = 0.841344746068543, Phi(1.96) = 0.975002104851780, Phi(-3) = 0.00134989803163.
    assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15);
    assert!((normal_cdf(1.0) - 0.841_344_746_068_543).abs() < 1e-13);
    assert!((normal_cdf(1.96) - 0.975_002_104_851_780).abs() < 1e-13);
    assert!((normal_cdf(-3.0) - 0.001_349_898_031_630_095).abs() < 1e-13);
}
