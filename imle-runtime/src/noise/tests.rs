//! Tests of the public noise API: code paths, determinism, distributions.
//!
//! Statistical tests use fixed keys, so they are deterministic; their tolerances are
//! five standard errors (or a Kolmogorov–Smirnov critical value at alpha = 1e-3), so a
//! correct implementation passes them for all but a tiny fraction of keys, and a wrong
//! mean, variance or shape fails them.

use super::test_stats::{Moments, ks_critical, ks_one_sample, ks_two_sample, normal_cdf};
use super::*;

const SOG_10: Noise = Noise::SumOfGamma { k: 10.0, terms: 10 };

/// Every kind of noise and parameter regime: boosted and unboosted gamma shapes, one
/// term and the maximum of 255 (which makes Sum-of-Gamma windows only 16 wide).
const ALL: [Noise; 7] = [
    Noise::Gumbel,
    Noise::Gaussian,
    SOG_10,
    Noise::SumOfGamma { k: 2.5, terms: 3 },
    Noise::SumOfGamma { k: 1.0, terms: 10 },
    Noise::SumOfGamma { k: 0.5, terms: 1 },
    Noise::SumOfGamma {
        k: 100.0,
        terms: 255,
    },
];

fn row(path: Path, noise: &Noise, key: NoiseKey, instance: u32, stream: u32, n: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; n];
    fill_with(path, noise, key, instance, stream, &mut out);
    out
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// `count` values of `noise`, as rows of 1000 of consecutive instances.
fn sample(noise: &Noise, key: NoiseKey, count: usize) -> Vec<f32> {
    let mut out = vec![0f32; count];
    for (b, r) in out.chunks_mut(1000).enumerate() {
        fill_instance(noise, key, b as u32, 0, r);
    }
    out
}

/// Every supported vector path gives exactly the reference's bits: row lengths around
/// the vector width (16), the Gumbel/Gaussian chunk (64), the short-row buffer, and
/// rows spanning several Sum-of-Gamma windows (400 elements for s = 10, 16 for s = 255),
/// which also exercises the vector and the scalar retries of rejected gamma attempts.
#[test]
fn all_paths_are_bit_identical_to_the_reference() {
    let paths = [Path::Portable, Path::detect()];
    #[cfg(target_arch = "x86_64")]
    let paths = [paths[0], paths[1], Path::Avx2, Path::Avx512];
    let key = NoiseKey::new(11, 3);
    for noise in &ALL {
        let lens: &[usize] = match noise {
            Noise::SumOfGamma { terms: 255, .. } => &[1, 17, 40],
            _ => &[1, 3, 15, 16, 17, 63, 64, 65, 100, 1001],
        };
        for &n in lens {
            for (instance, stream) in [(0, 0), (5, 2), (u32::MAX, u32::MAX)] {
                let want = bits(&row(Path::Reference, noise, key, instance, stream, n));
                for path in paths.into_iter().filter(|p| p.is_supported()) {
                    let got = bits(&row(path, noise, key, instance, stream, n));
                    assert_eq!(got, want, "{noise:?} {path:?} n={n} ({instance}, {stream})");
                }
            }
        }
    }
}

#[test]
fn same_coordinates_give_same_values() {
    let key = NoiseKey::new(1, 1);
    for noise in &ALL {
        let a = row(Path::detect(), noise, key, 4, 9, 500);
        let b = row(Path::detect(), noise, key, 4, 9, 500);
        assert_eq!(bits(&a), bits(&b), "{noise:?}");
        assert!(a.iter().all(|x| x.is_finite()), "{noise:?}");
    }
}

/// A row of length n equals the first n elements of a longer row.
#[test]
fn shorter_rows_are_prefixes() {
    let key = NoiseKey::new(2, 0);
    for noise in &ALL {
        let long = row(Path::detect(), noise, key, 1, 1, 1200);
        for n in [1, 2, 5, 16, 33, 399, 400, 401, 1199] {
            let short = row(Path::detect(), noise, key, 1, 1, n);
            assert_eq!(bits(&short), bits(&long[..n]), "{noise:?} n={n}");
        }
    }
}

/// Changing the instance, the stream or the key changes (essentially) every value: two
/// independent draws coincide with probability about 2^-23 (the uniforms' resolution),
/// so among 1000 elements we expect 1e-4 coincidences and allow none.
#[test]
fn other_coordinates_give_other_values() {
    let key = NoiseKey::new(3, 0);
    for noise in &ALL {
        let base = row(Path::detect(), noise, key, 0, 0, 1000);
        let others = [
            row(Path::detect(), noise, key, 1, 0, 1000),
            row(Path::detect(), noise, key, 0, 1, 1000),
            row(Path::detect(), noise, NoiseKey::new(3, 1), 0, 0, 1000),
            row(Path::detect(), noise, NoiseKey::new(4, 0), 0, 0, 1000),
        ];
        for other in &others {
            let same = base.iter().zip(other).filter(|(a, b)| a == b).count();
            assert_eq!(same, 0, "{noise:?}");
        }
    }
}

#[test]
fn none_writes_zeros_and_empty_rows_are_fine() {
    let mut out = vec![1.0f32; 37];
    fill_instance(&Noise::None, NoiseKey::new(0, 0), 0, 0, &mut out);
    assert!(out.iter().all(|&x| x == 0.0));
    for noise in &ALL {
        fill_instance(noise, NoiseKey::new(0, 0), 0, 0, &mut []);
    }
}

#[test]
fn noise_key_follows_its_definition() {
    let (seed, call) = (0x0123_4567_89ab_cdef_u64, 0xfedc_ba98_7654_3210_u64);
    let w = philox::philox4x32_10(
        [0x7654_3210, 0xfedc_ba98, 0x6e6f_6973, 0x654b_6579],
        [0x89ab_cdef, 0x0123_4567],
    );
    assert_eq!(NoiseKey::new(seed, call), NoiseKey([w[0], w[1]]));
    let keys: Vec<_> = (0..100).map(|c| NoiseKey::new(seed, c)).collect();
    for (i, a) in keys.iter().enumerate() {
        assert!(keys[i + 1..].iter().all(|b| a != b));
    }
}

#[test]
#[should_panic(expected = "terms must be in 1..=255")]
fn zero_terms_panic() {
    let noise = Noise::SumOfGamma { k: 1.0, terms: 0 };
    fill_instance(&noise, NoiseKey::new(0, 0), 0, 0, &mut [0.0; 4]);
}

/// Standard Gumbel: mean = Euler's gamma, variance = pi^2/6, kurtosis 5.4, so
/// mu4 - sigma^4 = 4.4 sigma^4. With N = 1e6: mean within 5 sigma / sqrt(N) = 0.0064,
/// variance within 5 sqrt(4.4 / N) sigma^2 = 0.017.
#[test]
fn gumbel_moments() {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    let var = std::f64::consts::PI.powi(2) / 6.0;
    let n = 1e6f64;
    let m = Moments::of(
        sample(&Noise::Gumbel, NoiseKey::new(5, 0), n as usize)
            .iter()
            .map(|&x| x as f64),
    );
    assert!(
        (m.mean - EULER_GAMMA).abs() < 5.0 * (var / n).sqrt(),
        "{m:?}"
    );
    assert!((m.var - var).abs() < 5.0 * (4.4 / n).sqrt() * var, "{m:?}");
}

/// One-sample KS against the Gumbel CDF exp(-exp(-x)) at alpha = 1e-3: critical value
/// c(alpha) / sqrt(N) = 1.9495 / sqrt(1e6) = 0.0019. (The uniforms' 2^-23 resolution
/// moves the CDF by far less than that.)
#[test]
fn gumbel_ks() {
    let n = 1_000_000;
    let xs = sample(&Noise::Gumbel, NoiseKey::new(6, 0), n);
    let d = ks_one_sample(xs, |x| (-(-x).exp()).exp());
    assert!(d < ks_critical(1e-3) / (n as f64).sqrt(), "D = {d}");
}

/// N(0,1): mean within 5 / sqrt(N) = 0.005; variance (mu4 - sigma^4 = 2) within
/// 5 sqrt(2 / N) = 0.0071; N = 1e6.
#[test]
fn gaussian_moments() {
    let n = 1e6f64;
    let m = Moments::of(
        sample(&Noise::Gaussian, NoiseKey::new(7, 0), n as usize)
            .iter()
            .map(|&x| x as f64),
    );
    assert!(m.mean.abs() < 5.0 / n.sqrt(), "{m:?}");
    assert!((m.var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "{m:?}");
}

/// One-sample KS against Phi at alpha = 1e-3 (critical D = 0.0019 for N = 1e6). The
/// elements of a Box–Muller pair are independent, so the whole row is one sample.
#[test]
fn gaussian_ks() {
    let n = 1_000_000;
    let xs = sample(&Noise::Gaussian, NoiseKey::new(8, 0), n);
    let d = ks_one_sample(xs, normal_cdf);
    assert!(d < ks_critical(1e-3) / (n as f64).sqrt(), "D = {d}");
}

/// H_s - ln s and sum_{i <= s} 1/i^2.
fn sog_sum_moments(s: u32) -> (f64, f64) {
    let h: f64 = (1..=s).map(|i| 1.0 / i as f64).sum();
    let v: f64 = (1..=s).map(|i| 1.0 / (i as f64 * i as f64)).sum();
    (h - (s as f64).ln(), v)
}

/// Term i is Gamma(1/k, scale k/i), with mean 1/i and variance k/i^2, so the sum of k
/// independent Sum-of-Gamma variables, each (sum_i G_i - ln s) / k, has mean
/// H_s - ln s (0.6264 for s = 10) and variance sum_{i<=s} 1/i^2 (1.5498 for s = 10).
/// Checked for k = 1 (no boost: shape 1), 5 and 10, with M = 2e5 sums (the k elements
/// of a sum are consecutive elements of a row): mean within 5 sqrt(var / M) = 0.014,
/// variance within five standard errors sqrt((mu4 - sigma^4) / M) with mu4 estimated
/// from the sample (about 0.025 for s = 10).
#[test]
fn sog_sums_of_k_have_the_gumbel_like_moments() {
    let (mean, var) = sog_sum_moments(10);
    assert!((mean - 0.6264).abs() < 1e-4 && (var - 1.5498).abs() < 1e-4);
    let sums = 200_000;
    for k in [1usize, 5, 10] {
        let noise = Noise::SumOfGamma {
            k: k as f32,
            terms: 10,
        };
        let xs = sample(&noise, NoiseKey::new(9, k as u64), sums * k);
        let m = Moments::of(
            xs.chunks_exact(k)
                .map(|c| c.iter().map(|&x| x as f64).sum::<f64>()),
        );
        println!(
            "SoG k = {k}, s = 10, {sums} sums of k draws: mean {:.4} (exact {mean:.4}), \
             variance {:.4} (exact {var:.4})",
            m.mean, m.var
        );
        assert!(
            (m.mean - mean).abs() < 5.0 * (var / m.n).sqrt(),
            "k = {k}: {m:?}"
        );
        assert!(
            (m.var - var).abs() < 5.0 * m.var_std_err(),
            "k = {k}: {m:?}"
        );
    }
}

/// A single element for non-integer k = 2.5 and s = 3: mean (H_s - ln s) / k, variance
/// (sum 1/i^2) / k; tolerances as above, N = 2e5.
#[test]
fn sog_single_element_moments() {
    let (k, s) = (2.5f32, 3);
    let (mean, var) = sog_sum_moments(s);
    let (mean, var) = (mean / k as f64, var / k as f64);
    let noise = Noise::SumOfGamma { k, terms: s };
    let xs = sample(&noise, NoiseKey::new(10, 0), 200_000);
    let m = Moments::of(xs.iter().map(|&x| x as f64));
    assert!((m.mean - mean).abs() < 5.0 * (var / m.n).sqrt(), "{m:?}");
    assert!((m.var - var).abs() < 5.0 * m.var_std_err(), "{m:?}");
}

/// Sum-of-Gamma values of one row, drawn for `count` elements.
fn sog_sample(k: f32, terms: u32, seed: u64, count: usize) -> Vec<f32> {
    sample(
        &Noise::SumOfGamma { k, terms },
        NoiseKey::new(seed, 0),
        count,
    )
}

/// Two-sample Kolmogorov–Smirnov test of the table sampler against sums of s gamma draws
/// from rand_distr (an independent generator and algorithm), 10^6 values each, for k in
/// {1, 5, 10, 144} (s = 10) and k = 2.5 with s = 3. At alpha = 1e-3 the critical value is
/// c(alpha) sqrt(2 / 10^6) = 0.00276.
#[test]
fn sog_matches_rand_distr_gamma_sums_ks() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Gamma};
    const N: usize = 1_000_000;
    for (k, s) in [
        (1.0f32, 10u32),
        (5.0, 10),
        (10.0, 10),
        (144.0, 10),
        (2.5, 3),
    ] {
        let ours: Vec<f32> = sog_sample(k, s, 21, N);
        let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(k.to_bits()));
        let gammas: Vec<Gamma<f64>> = (1..=s)
            .map(|i| Gamma::new(1.0 / f64::from(k), f64::from(k) / f64::from(i)).unwrap())
            .collect();
        // The last step in our f32 arithmetic: for large k a quarter of the values have
        // Y below 1e-7, where eps is the single f32 value (0 - ln s) / k; computed in f64
        // and rounded, that atom would land one ulp away and dominate D.
        let ln_s = f64::from(s).ln() as f32;
        let theirs: Vec<f32> = (0..N)
            .map(|_| {
                let y: f64 = gammas.iter().map(|g| g.sample(&mut rng)).sum();
                (y as f32 - ln_s) / k
            })
            .collect();
        let d = ks_two_sample(ours, theirs);
        let crit = ks_critical(1e-3) * (2.0 / N as f64).sqrt();
        assert!(d < crit, "k {k}, s {s}: D = {d} >= {crit}");
    }
}

/// The same against the previous sampler, s Marsaglia–Tsang draws per value (`gamma.rs`),
/// 10^6 values each, k = 10 and k = 1000 (s = 10), k = 1 with s = 50.
#[test]
fn sog_matches_marsaglia_tsang_sums_ks() {
    use rayon::prelude::*;
    const N: u32 = 1_000_000;
    for (k, s) in [(10.0f32, 10u32), (1000.0, 10), (1.0, 50)] {
        let ours = sog_sample(k, s, 22, N as usize);
        let key = NoiseKey::new(23, u64::from(k.to_bits())).0;
        let theirs: Vec<f32> = (0..N)
            .into_par_iter()
            .map(|e| super::gamma::sog_direct(k, s, key, e, 0))
            .collect();
        let d = ks_two_sample(ours, theirs);
        let crit = ks_critical(1e-3) * (2.0 / N as f64).sqrt();
        assert!(d < crit, "k {k}, s {s}: D = {d} >= {crit}");
    }
}

/// Tail frequencies: with N = 2^24 values, the fraction above the exact 0.999 and 0.99999
/// quantiles (and below the 0.001 and 0.00001 ones) of eps, from the `f64` distribution,
/// is within 5 standard errors sqrt(p (1 - p) / N) of p: expected counts 16,777 and 168,
/// tolerances 5 * 129 and 5 * 13. The lower tail only where its quantile Y is above 1e-4:
/// below, eps = (Y - ln s) / k no longer resolves Y in f32 (for k = 144, s = 10 a quarter
/// of the values have Y < 1e-7 and share one f32 value).
#[test]
fn sog_tail_frequencies_match_the_exact_quantiles() {
    const N: usize = 1 << 24;
    let mut lower_checked = 0;
    for (k, s) in [(10.0f32, 10u32), (144.0, 10), (1.0, 50), (2.5, 3)] {
        let xs = sog_sample(k, s, 24, N);
        let exact = super::sog_exact::SogExact::new(f64::from(k), s).unwrap();
        let eps = |ln_y: f64| ((ln_y.exp() - f64::from(s).ln()) / f64::from(k)) as f32;
        for p in [1e-3, 1e-5] {
            let std_err = (p * (1.0 - p) / N as f64).sqrt();
            for upper in [false, true] {
                let ln_y = exact.ln_quantile(p, upper, 0.0).ln_y;
                if !upper && ln_y < 1e-4f64.ln() {
                    continue;
                }
                lower_checked += usize::from(!upper);
                let q = eps(ln_y);
                let count = if upper {
                    xs.iter().filter(|&&x| x > q).count()
                } else {
                    xs.iter().filter(|&&x| x < q).count()
                };
                let freq = count as f64 / N as f64;
                assert!(
                    (freq - p).abs() < 5.0 * std_err,
                    "k {k}, s {s}, {} tail {p}: frequency {freq} (quantile {q})",
                    if upper { "upper" } else { "lower" }
                );
            }
        }
    }
    // (1, 50) and (2.5, 3) resolve both lower quantiles, (10, 10) the 0.001 one.
    assert!(
        lower_checked >= 5,
        "only {lower_checked} lower tails checked"
    );
}
