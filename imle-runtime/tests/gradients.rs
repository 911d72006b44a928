//! The math of the layer: sampling distributions, gradients against closed forms and exact
//! enumeration, and the identities between options. Fixed seeds; every statistical tolerance
//! is derived from a standard error in the comment above it.

use candle_core::{D, DType, Device, Module, ModuleT, Result, Tensor, Var};
use imle_runtime::{
    Argmax, GridShortestPath, ImleConfig, ImleLayer, MapSolver, NegativeCosts, Neighbourhood,
    Noise, Reduce, Sense, Target, TopK,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const CPU: &Device = &Device::Cpu;

fn softmax(theta: &[f64]) -> Vec<f64> {
    let max = theta.iter().cloned().fold(f64::MIN, f64::max);
    let exps: Vec<f64> = theta.iter().map(|t| (t - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn row(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Gradient of `sum(z ⊙ weights)` with respect to θ through `layer`.
fn linear_loss_gradient<S: MapSolver>(
    layer: &ImleLayer<S>,
    theta: &Var,
    weights: &Tensor,
) -> Result<Tensor> {
    let z = layer.forward(theta.as_tensor())?;
    let weights = weights.broadcast_as(z.shape())?;
    let grads = (z * weights)?.sum_all()?.backward()?;
    Ok(grads.get(theta).unwrap().clone())
}

/// Each frequency is a mean of N Bernoulli(p_i) draws: standard error sqrt(p(1-p)/N). Five
/// standard errors: a false alarm per entry has probability ~6e-7.
fn assert_frequencies_match_softmax(frequencies: &[f64], theta: &[f64], draws: u32) {
    for (i, (f, p)) in frequencies.iter().zip(softmax(theta)).enumerate() {
        let se = (p * (1.0 - p) / draws as f64).sqrt();
        assert!(
            (f - p).abs() < 5.0 * se,
            "entry {i}: frequency {f} vs softmax {p}"
        );
    }
}

#[test]
fn gumbel_argmax_samples_softmax() -> Result<()> {
    let theta = [0.5f64, -1.0, 1.5, 0.0, 0.3];
    let draws = 40_000;
    let layer = ImleLayer::new(
        Argmax,
        ImleConfig::new(Noise::Gumbel)
            .with_samples(draws)?
            .with_reduce(Reduce::Mean)
            .with_seed(11),
    )?;
    let t = Tensor::new(&[theta.map(|x| x as f32)], CPU)?;
    assert_frequencies_match_softmax(&row(&layer.forward(&t)?), &theta, draws);
    Ok(())
}

#[test]
fn sum_of_gamma_with_k_1_is_gumbel_like_for_argmax() -> Result<()> {
    // With k = 1 a Sum-of-Gamma draw is Σ_{i<=s} Exp(1)/i - ln s, which tends to a Gumbel
    // variable as s grows; with s = 255 its variance falls short of π²/6 by Σ_{i>255} 1/i²
    // ≈ 0.004, a negligible change to the argmax probabilities next to the test's tolerance.
    let theta = [0.5f64, -1.0, 1.5, 0.0, 0.3];
    let draws = 40_000;
    let layer = ImleLayer::new(
        Argmax,
        ImleConfig::new(Noise::SumOfGamma { k: 1.0, terms: 255 })
            .with_samples(draws)?
            .with_reduce(Reduce::Mean)
            .with_seed(12),
    )?;
    let t = Tensor::new(&[theta.map(|x| x as f32)], CPU)?;
    assert_frequencies_match_softmax(&row(&layer.forward(&t)?), &theta, draws);
    Ok(())
}

#[test]
fn argmax_gradient_matches_its_closed_form_and_the_exact_gradient() -> Result<()> {
    let theta = [0.2f64, -0.5, 1.0, 0.4, -1.2, 0.0];
    let c = [1.0f64, -2.0, 0.5, 3.0, 0.0, -1.0];
    let draws = 200_000u32;
    let lambda = 0.25;
    // Reduce::Mean: dL/dz̄ = c is the target direction of every sample.
    let layer = ImleLayer::new(
        Argmax,
        ImleConfig::new(Noise::Gumbel)
            .with_samples(draws)?
            .with_reduce(Reduce::Mean)
            .with_lambda(lambda as f32)?
            .with_scale_by_lambda(true)
            .with_seed(5),
    )?;
    let var = Var::new(&[theta.map(|x| x as f32)], CPU)?;
    let weights = Tensor::new(&[c.map(|x| x as f32)], CPU)?;
    let estimate = row(&linear_loss_gradient(&layer, &var, &weights)?);

    // With Gumbel noise, z ~ softmax(θ) and z' ~ softmax(θ - λc), so the estimator's mean is
    // exactly (softmax(θ) - softmax(θ - λc)) / λ.
    let p = softmax(&theta);
    let target: Vec<f64> = theta
        .iter()
        .zip(&c)
        .map(|(t, ci)| t - lambda * ci)
        .collect();
    let p_target = softmax(&target);
    let expected: Vec<f64> = p
        .iter()
        .zip(&p_target)
        .map(|(a, b)| (a - b) / lambda)
        .collect();
    // Each term (z_i - z'_i)/λ takes values in {-1/λ, 0, 1/λ}, so its variance is at most
    // P(z_i != z'_i)/λ² <= (p_i + p'_i)/λ²; five standard errors of the mean of N terms.
    for i in 0..theta.len() {
        let se = ((p[i] + p_target[i]) / draws as f64).sqrt() / lambda;
        assert!(
            (estimate[i] - expected[i]).abs() < 5.0 * se,
            "entry {i}: estimate {} vs closed form {}",
            estimate[i],
            expected[i]
        );
    }
    // The exact gradient of E[<c, z>] = <c, softmax(θ)> is p ⊙ (c - <p, c>); the finite
    // difference above approaches it as λ → 0, and so does the estimate.
    let mean_c: f64 = p.iter().zip(&c).map(|(a, b)| a * b).sum();
    let exact: Vec<f64> = p
        .iter()
        .zip(&c)
        .map(|(pi, ci)| pi * (ci - mean_c))
        .collect();
    let cos_closed = cosine(&expected, &exact);
    let cos_estimate = cosine(&estimate, &exact);
    println!(
        "argmax, λ = {lambda}: cos(closed form, exact) = {cos_closed:.4}, cos(estimate, exact) = {cos_estimate:.4}"
    );
    let small = 1e-3;
    let target_small: Vec<f64> = theta.iter().zip(&c).map(|(t, ci)| t - small * ci).collect();
    let fd_small: Vec<f64> = p
        .iter()
        .zip(softmax(&target_small))
        .map(|(a, b)| (a - b) / small)
        .collect();
    for (f, e) in fd_small.iter().zip(&exact) {
        assert!((f - e).abs() < 1e-2, "finite difference {f} vs exact {e}");
    }
    assert!(cos_estimate > 0.95, "cos(estimate, exact) = {cos_estimate}");
    Ok(())
}

/// All 0/1 vectors of length n with exactly k ones.
fn subsets(n: usize, k: usize) -> Vec<Vec<f64>> {
    (0u32..1 << n)
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..n).map(|i| ((mask >> i) & 1) as f64).collect())
        .collect()
}

/// ∇_θ E_p[L(z)] for p(z) ∝ exp<z, θ> over k-subsets: Cov_p(L(z), z) = E[L z] - E[L] E[z].
fn exact_topk_gradient(theta: &[f64], k: usize, loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let all = subsets(theta.len(), k);
    let scores: Vec<f64> = all
        .iter()
        .map(|z| z.iter().zip(theta).map(|(a, b)| a * b).sum())
        .collect();
    let p = softmax(&scores);
    let mut e_l = 0.0;
    let mut e_z = vec![0.0; theta.len()];
    let mut e_lz = vec![0.0; theta.len()];
    for (z, pz) in all.iter().zip(&p) {
        let l = loss(z);
        e_l += pz * l;
        for i in 0..theta.len() {
            e_z[i] += pz * z[i];
            e_lz[i] += pz * l * z[i];
        }
    }
    (0..theta.len()).map(|i| e_lz[i] - e_l * e_z[i]).collect()
}

#[test]
fn top_k_gradient_points_like_the_exact_gradient_by_enumeration() -> Result<()> {
    let (n, k) = (10, 5);
    let mut rng = StdRng::seed_from_u64(2021);
    let theta: Vec<f64> = (0..n)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect();
    let b: Vec<f64> = (0..n)
        .map(|_| rng.sample::<f64, _>(StandardNormal).abs())
        .collect();
    let loss = |z: &[f64]| {
        z.iter()
            .zip(&b)
            .map(|(zi, bi)| (zi - bi).powi(2))
            .sum::<f64>()
    };
    let exact = exact_topk_gradient(&theta, k, loss);

    let samples = 20_000u32;
    let var =
        Var::new(theta.iter().map(|&x| x as f32).collect::<Vec<_>>(), CPU)?.reshape((1, n))?;
    let var = Var::from_tensor(&var)?;
    let b_t = Tensor::new(b.iter().map(|&x| x as f32).collect::<Vec<_>>(), CPU)?.reshape((1, n))?;
    println!("top-k (n = 10, k = 5), {samples} samples: cosine(I-MLE gradient, exact gradient)");
    let lambdas = [0.05f32, 0.1, 0.25, 0.5, 1.0, 2.0, 10.0];
    println!(
        "{:<16}{}",
        "noise \\ λ",
        lambdas.map(|l| format!(" {l:>7}")).concat()
    );
    let mut cosines = std::collections::HashMap::new();
    for (name, noise) in [
        (
            "sum_of_gamma",
            Noise::SumOfGamma {
                k: k as f32,
                terms: 10,
            },
        ),
        ("gumbel", Noise::Gumbel),
    ] {
        let mut line = format!("{name:<16}");
        for lambda in lambdas {
            let layer = ImleLayer::new(
                TopK::new(k)?,
                ImleConfig::new(noise)
                    .with_samples(samples)?
                    .with_lambda(lambda)?
                    .with_seed(3),
            )?;
            // Summed (not averaged) over samples so that each sample's g = 2(z - b).
            let z = layer.forward(var.as_tensor())?;
            let loss = (z.broadcast_sub(&b_t))?.sqr()?.sum_all()?;
            let grad = row(loss.backward()?.get(&var).unwrap());
            let cos = cosine(&grad, &exact);
            cosines.insert((name, lambda.to_bits()), cos);
            line += &format!(" {cos:>7.4}");
        }
        println!("{line}");
    }
    // I-MLE follows the gradient of the perturb-and-MAP distribution, which is p only
    // approximately, so the cosine is below 1 and falls as λ grows (the target saturates).
    // Sum-of-Gamma noise makes the *sum* over the k chosen elements Gumbel-like, which leaves
    // perturb-and-MAP sharper than p (its marginals are nearer 0 and 1; an independent NumPy
    // implementation gives the same cosines), hence lower cosines than per-element Gumbel.
    // A sign error or a broken target gives cosines near 0 or negative. With 20k samples the
    // cosine varies by about 0.02 across seeds (3, 4, 5 checked), far below the margins.
    let at = |name: &str, lambda: f32| cosines[&(name, lambda.to_bits())];
    assert!(
        at("gumbel", 0.1) > 0.95,
        "gumbel cosine {}",
        at("gumbel", 0.1)
    );
    assert!(
        at("sum_of_gamma", 0.05) > 0.7,
        "SoG cosine {}",
        at("sum_of_gamma", 0.05)
    );
    Ok(())
}

fn random_theta(rng: &mut StdRng, rows: usize, n: usize) -> Tensor {
    let values: Vec<f32> = (0..rows * n).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_vec(values, (rows, n), CPU).unwrap()
}

#[test]
fn top_k_gradient_rows_sum_to_zero() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(4);
    let theta = Var::from_tensor(&random_theta(&mut rng, 8, 30))?;
    let layer = ImleLayer::new(
        TopK::new(7)?,
        ImleConfig::new(Noise::SumOfGamma { k: 7.0, terms: 10 })
            .with_samples(4)?
            .with_marginal_samples(3)?,
    )?;
    let weights = random_theta(&mut rng, 32, 30);
    let grad = linear_loss_gradient(&layer, &theta, &weights)?;
    let row_sums = grad.sum(D::Minus1)?.to_vec1::<f32>()?;
    let max_abs = grad.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(max_abs > 0.0, "the gradient is identically zero");
    // Both solutions of every term have exactly k ones, so each term sums to 0 exactly; the
    // mean over 12 draws rounds each entry by at most half an ulp of 1.
    for s in row_sums {
        assert!(s.abs() < 30.0 * f32::EPSILON, "row sum {s}");
    }
    Ok(())
}

/// Rows of a `[rows, n]` tensor as vectors.
fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2().unwrap()
}

#[test]
fn symmetric_gradient_is_the_central_difference() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(6);
    let (batch, n, lambda) = (5, 12, 2.0f32);
    let theta = random_theta(&mut rng, batch, n);
    let noise = random_theta(&mut rng, batch, n);
    let g = random_theta(&mut rng, batch, n);
    let layer = ImleLayer::new(
        TopK::new(4)?,
        ImleConfig::new(Noise::Gumbel).with_lambda(lambda)?,
    )?
    .with_symmetric(true);
    let var = Var::from_tensor(&theta)?;
    let z = layer.forward_with_noise(var.as_tensor(), &noise)?;
    let grad = (z * &g)?.sum_all()?.backward()?.get(&var).unwrap().clone();
    // [MAP(θ + λg + ε) - MAP(θ - λg + ε)] / 2, computed with eval-mode MAP calls.
    let step = (&g * lambda as f64)?;
    let plus = layer.map(&((&theta + &step)? + &noise)?)?;
    let minus = layer.map(&((&theta - &step)? + &noise)?)?;
    let expected = ((plus - minus)? * 0.5)?;
    assert_eq!(rows(&grad), rows(&expected));
    Ok(())
}

#[test]
fn marginal_samples_average_single_draw_gradients() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let (batch, n, draws) = (4, 9, 3);
    let theta = random_theta(&mut rng, batch, n);
    let g = random_theta(&mut rng, batch, n);
    // Draw d of instance b is row b·M + d.
    let noise = random_theta(&mut rng, batch * draws, n);
    let config = ImleConfig::new(Noise::Gumbel)
        .with_lambda(3.0)?
        .with_tau(0.5)?
        .with_target_tau(2.0)?;
    let marginal = ImleLayer::new(TopK::new(3)?, config.with_marginal_samples(draws as u32)?)?;
    let var = Var::from_tensor(&theta)?;
    let z = marginal.forward_with_noise(var.as_tensor(), &noise)?;
    let grad = (z * &g)?.sum_all()?.backward()?.get(&var).unwrap().clone();

    let single = ImleLayer::new(TopK::new(3)?, config)?;
    let noise_rows = noise.reshape((batch, draws, n))?;
    let mut sum = Tensor::zeros((batch, n), DType::F32, CPU)?;
    for d in 0..draws {
        let var = Var::from_tensor(&theta)?;
        let eps = noise_rows.narrow(1, d, 1)?.squeeze(1)?;
        let z = single.forward_with_noise(var.as_tensor(), &eps)?;
        sum = (sum + (z * &g)?.sum_all()?.backward()?.get(&var).unwrap())?;
    }
    let expected = (sum / draws as f64)?;
    // Terms are in {-1, 0, 1}; their mean differs from ours only by the rounding of 1/3.
    let diff = (grad - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff <= 2.0 * f32::EPSILON, "max difference {diff}");
    Ok(())
}

/// A maximising solver made from a minimising one: `argmax <z, u> = argmin <z, -u>`.
struct Negated<S>(S);

impl<S: MapSolver> MapSolver for Negated<S> {
    type Scratch = (Vec<f32>, S::Scratch);
    fn name(&self) -> &str {
        "negated"
    }
    fn solve(
        &self,
        theta: &[f32],
        shape: &[usize],
        z: &mut [f32],
        scratch: &mut Self::Scratch,
    ) -> Result<()> {
        scratch.0.clear();
        scratch.0.extend(theta.iter().map(|t| -t));
        self.0.solve(&scratch.0, shape, z, &mut scratch.1)
    }
}

#[test]
fn minimize_is_exactly_maximize_on_negated_theta() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(8);
    let (batch, h, w) = (6, 5, 5);
    let costs: Vec<f32> = (0..batch * h * w)
        .map(|_| rng.random_range(0.5..3.0f32))
        .collect();
    let theta = Tensor::from_vec(costs, (batch, h, w), CPU)?;
    let g = Tensor::from_vec(
        (0..batch * h * w)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect::<Vec<_>>(),
        (batch, h, w),
        CPU,
    )?;
    let grid =
        GridShortestPath::new(Neighbourhood::Eight).with_negative_costs(NegativeCosts::ClampToZero);
    for noise in [
        Noise::SumOfGamma { k: 9.0, terms: 10 },
        Noise::Gumbel,
        Noise::Gaussian,
    ] {
        let config = ImleConfig::new(noise)
            .with_lambda(1.5)?
            .with_alpha(0.75)?
            .with_tau(0.3)?
            .with_samples(2)?;
        let minimizing = ImleLayer::new(grid, config.with_sense(Sense::Minimize))?;
        let maximizing = ImleLayer::new(Negated(grid), config)?;

        let var_min = Var::from_tensor(&theta)?;
        let z_min = minimizing.forward(var_min.as_tensor())?;
        let g_rep = minimizing.repeat_for_samples(&g)?;
        let grad_min = (&z_min * &g_rep)?
            .sum_all()?
            .backward()?
            .get(&var_min)
            .unwrap()
            .clone();

        let var_max = Var::from_tensor(&theta)?;
        let z_max = maximizing.forward(&var_max.as_tensor().neg()?)?;
        let grad_max = (&z_max * &g_rep)?
            .sum_all()?
            .backward()?
            .get(&var_max)
            .unwrap()
            .clone();

        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&z_min), flat(&z_max), "{noise:?}: solutions differ");
        assert_eq!(
            flat(&grad_min),
            flat(&grad_max),
            "{noise:?}: gradients differ"
        );
        assert!(
            flat(&grad_min).iter().any(|&x| x != 0.0),
            "{noise:?}: zero gradient"
        );
    }
    Ok(())
}

/// Solutions and gradient of one training step, as flat vectors.
fn run_step<S: imle_runtime::Solver>(
    layer: &ImleLayer<S>,
    theta: &Tensor,
    weights: &Tensor,
) -> (Vec<f32>, Vec<f32>) {
    let var = Var::from_tensor(theta).unwrap();
    let z = layer.forward(var.as_tensor()).unwrap();
    let grad = (&z * weights.broadcast_as(z.shape()).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    (flat(&z), flat(grad.get(&var).unwrap()))
}

#[test]
fn results_do_not_depend_on_thread_count_and_follow_the_seed() {
    let mut rng = StdRng::seed_from_u64(9);
    let theta = random_theta(&mut rng, 64, 50);
    let weights = random_theta(&mut rng, 64 * 3, 50);
    let config = ImleConfig::new(Noise::SumOfGamma { k: 5.0, terms: 10 })
        .with_samples(3)
        .unwrap()
        .with_marginal_samples(2)
        .unwrap()
        .with_seed(42);
    let on_threads = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let layer = ImleLayer::new(TopK::new(5).unwrap(), config).unwrap();
            let first = run_step(&layer, &theta, &weights);
            let second = run_step(&layer, &theta, &weights);
            (first, second)
        })
    };
    let (one_a, one_b) = on_threads(1);
    let (two_a, two_b) = on_threads(2);
    assert_eq!(one_a, two_a);
    assert_eq!(one_b, two_b);
    assert_ne!(one_a.0, one_b.0, "successive calls must draw fresh noise");
    let other_seed = ImleLayer::new(TopK::new(5).unwrap(), config.with_seed(43)).unwrap();
    assert_ne!(run_step(&other_seed, &theta, &weights).0, one_a.0);
}

#[test]
fn reduce_mean_is_the_mean_of_the_samples() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(10);
    let theta = random_theta(&mut rng, 3, 8);
    let c = random_theta(&mut rng, 3, 8);
    let config = ImleConfig::new(Noise::Gumbel).with_samples(5)?.with_seed(1);
    let all = ImleLayer::new(TopK::new(2)?, config)?;
    let mean = ImleLayer::new(TopK::new(2)?, config.with_reduce(Reduce::Mean))?;
    let (z_all, grad_all) = run_step(&all, &theta, &all.repeat_for_samples(&c)?);
    let (z_mean, grad_mean) = run_step(&mean, &theta, &c);
    let expected: Vec<f32> = (0..3)
        .flat_map(|b| {
            let z_all = &z_all;
            (0..8).map(move |i| (0..5).map(|s| z_all[(b * 5 + s) * 8 + i]).sum::<f32>() / 5.0)
        })
        .collect();
    for (a, b) in z_mean.iter().zip(&expected) {
        assert!((a - b).abs() <= f32::EPSILON, "{a} vs {b}");
    }
    // The same target direction c for every sample on both paths: the same gradient.
    assert_eq!(grad_mean, grad_all);
    Ok(())
}

#[test]
fn scale_by_lambda_divides_the_gradient() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(12);
    let theta = random_theta(&mut rng, 4, 10);
    let c = random_theta(&mut rng, 4, 10);
    let config = ImleConfig::new(Noise::Gaussian)
        .with_lambda(4.0)?
        .with_seed(2);
    let plain = ImleLayer::new(TopK::new(3)?, config)?;
    let scaled = ImleLayer::new(TopK::new(3)?, config.with_scale_by_lambda(true))?;
    let (_, g_plain) = run_step(&plain, &theta, &c);
    let (_, g_scaled) = run_step(&scaled, &theta, &c);
    // λ = 4 is a power of two: the division is exact.
    assert_eq!(
        g_scaled,
        g_plain.iter().map(|g| g / 4.0).collect::<Vec<_>>()
    );
    assert!(g_plain.iter().any(|&g| g != 0.0));
    Ok(())
}

#[test]
fn adaptive_target_moves_beta_towards_the_wanted_density() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(13);
    let theta = random_theta(&mut rng, 16, 20);
    let c = random_theta(&mut rng, 16, 20);
    let step = 0.01;
    let dense = ImleLayer::new(
        TopK::new(4)?,
        ImleConfig::new(Noise::Gumbel)
            .with_target(Target::Adaptive {
                target_density: 1000.0,
                step,
            })?
            .with_lambda(0.5)?,
    )?;
    for call in 1..=3 {
        run_step(&dense, &theta, &c);
        // The density can never reach 1000 (20 entries), so β grows by one step per call.
        assert!(
            (dense.lambda() - (0.5 + step * call as f32)).abs() < 1e-6,
            "β = {}",
            dense.lambda()
        );
    }
    assert!(dense.gradient_density() > 0.0);
    let sparse = ImleLayer::new(
        TopK::new(4)?,
        ImleConfig::new(Noise::Gumbel)
            .with_target(Target::Adaptive {
                target_density: 0.0,
                step: 0.3,
            })?
            .with_lambda(0.5)?,
    )?;
    for _ in 0..3 {
        run_step(&sparse, &theta, &c);
    }
    // Density > 0 after the first call, so β falls by 0.3 per call and is clamped at 0.
    assert_eq!(sparse.lambda(), 0.0);
    Ok(())
}

#[test]
fn evaluation_mode_is_plain_map_and_views_are_modules() -> Result<()> {
    let theta = Tensor::new(&[[0.1f32, 3.0, 2.0, -1.0]], CPU)?;
    let layer = ImleLayer::new(
        TopK::new(2)?,
        ImleConfig::new(Noise::Gumbel).with_samples(4)?,
    )?;
    let expected = vec![vec![0.0f32, 1.0, 1.0, 0.0]];
    assert_eq!(layer.forward_t(&theta, false)?.to_vec2::<f32>()?, expected);
    assert_eq!(
        layer.eval_mode().forward(&theta)?.to_vec2::<f32>()?,
        expected
    );
    assert_eq!(layer.forward_t(&theta, true)?.dims(), &[4, 4]);
    assert_eq!(layer.train_mode().forward(&theta)?.dims(), &[4, 4]);
    Ok(())
}

#[test]
fn a_linear_model_learns_through_the_top_k_layer() -> Result<()> {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
    let (inputs, n, k, batch) = (6, 10, 3, 64);
    let mut rng = StdRng::seed_from_u64(14);
    // Targets: the top-k mask of a hidden linear map of the inputs.
    let hidden = random_theta(&mut rng, inputs, n);
    let x = random_theta(&mut rng, batch, inputs);
    let solver = TopK::new(k)?;
    let layer = ImleLayer::new(
        solver,
        ImleConfig::new(Noise::SumOfGamma {
            k: k as f32,
            terms: 10,
        })
        .with_lambda(10.0)?
        .with_seed(1),
    )?;
    let targets = layer.map(&x.matmul(&hidden)?)?;

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, CPU);
    let model = candle_nn::linear(inputs, n, vb)?;
    let mut optimizer = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 0.05,
            ..Default::default()
        },
    )?;
    let hamming = |z: &Tensor| -> Result<f32> {
        (z - &targets)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f32>()
            .map(|s| s / batch as f32)
    };
    let before = hamming(&layer.map(&model.forward(&x)?)?)?;
    for _ in 0..150 {
        let z = layer.forward(&model.forward(&x)?)?;
        let loss = (z - &targets)?.sqr()?.sum_all()?;
        optimizer.backward_step(&loss)?;
    }
    let after = hamming(&layer.map(&model.forward(&x)?)?)?;
    println!(
        "mean Hamming distance to the target top-{k} mask: {before:.3} before, {after:.3} after training"
    );
    // Untrained, a random k-subset overlaps the target in k²/n = 0.9 entries: a Hamming
    // distance near 2(k - 0.9) = 4.2. The targets are realisable by the model, so training
    // must at least halve it; chance does not do that on 64 fixed instances.
    assert!(after < 0.5 * before, "before {before}, after {after}");
    Ok(())
}

/// One-hot argmax of each row with tensor operations (ties: every maximum; none occur here).
struct TensorArgmax;

impl imle_runtime::BatchSolver for TensorArgmax {
    fn name(&self) -> &str {
        "tensor argmax"
    }
    fn solve_batch(&self, theta: &Tensor) -> Result<Tensor> {
        let max = theta.max_keepdim(D::Minus1)?;
        theta.broadcast_eq(&max)?.to_dtype(theta.dtype())
    }
}

#[test]
fn a_batch_solver_gives_the_same_results_as_a_per_instance_one() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(15);
    let theta = random_theta(&mut rng, 16, 12);
    let weights = random_theta(&mut rng, 16 * 3, 12);
    let config = ImleConfig::new(Noise::Gumbel)
        .with_samples(3)?
        .with_marginal_samples(2)?
        .with_seed(4);
    let per_instance = ImleLayer::new(Argmax, config)?;
    let batched = ImleLayer::new(imle_runtime::Batched(TensorArgmax), config)?;
    assert_eq!(
        run_step(&per_instance, &theta, &weights),
        run_step(&batched, &theta, &weights)
    );
    Ok(())
}
