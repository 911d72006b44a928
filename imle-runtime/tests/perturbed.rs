//! The perturbed optimizer and its Fenchel-Young loss against closed forms. Fixed seeds; every
//! statistical tolerance is a number of standard errors, derived in the comment above it.

use candle_core::{DType, Device, Result, Tensor, Var};
use imle_runtime::loss::Reduction;
use imle_runtime::perturbed::{Perturbation, PerturbedConfig, PerturbedOptimizer};
use imle_runtime::{Argmax, MapSolver, Noise, Sense};

const CPU: &Device = &Device::Cpu;

fn softmax(theta: &[f64], sigma: f64) -> Vec<f64> {
    let max = theta.iter().cloned().fold(f64::MIN, f64::max);
    let exps: Vec<f64> = theta.iter().map(|t| ((t - max) / sigma).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// Φ, the standard normal CDF (Abramowitz & Stegun 7.1.26 for erf, |error| < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / 2f64.sqrt();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

/// Argmax, or argmin for `Sense::Minimize` (ties to the lowest index): the solver that
/// matches the configured sense.
struct Arg(Sense);

impl MapSolver for Arg {
    type Scratch = ();
    fn name(&self) -> &str {
        "arg"
    }
    fn solve(&self, theta: &[f32], shape: &[usize], z: &mut [f32], _: &mut ()) -> Result<()> {
        let signed: Vec<f32> = theta.iter().map(|&t| self.0.sign() * t).collect();
        Argmax.solve(&signed, shape, z, &mut ())
    }
}

fn optimizer(config: PerturbedConfig) -> PerturbedOptimizer<Arg> {
    PerturbedOptimizer::new(Arg(config.sense), config).unwrap()
}

/// The VJP of `forward` at θ with incoming gradient `g`.
fn vjp(opt: &PerturbedOptimizer<Arg>, theta: &[f32], g: &[f32]) -> Result<Vec<f64>> {
    let theta = Var::new(theta, CPU)?.reshape((1, theta.len()))?;
    let theta = Var::from_tensor(&theta)?;
    let y = opt.forward(theta.as_tensor())?;
    let g = Tensor::new(g, CPU)?.reshape((1, g.len()))?;
    let loss = (y * g)?.sum_all()?;
    let grad = loss.backward()?.get(&theta).unwrap().clone();
    Ok(rows(&grad).remove(0))
}

/// Gumbel-max: argmax(θ + σG) = i with probability softmax(θ/σ)_i, since
/// argmax(θ + σG) = argmax(θ/σ + G). Each entry of y_σ is then a mean of S Bernoulli(p_i),
/// standard error √(p_i(1 − p_i)/S); 5 s.e. with S = 20000. The Fenchel-Young gradient
/// y_σ − y has the same error.
#[test]
fn gumbel_argmax_is_the_softmax_and_the_fy_gradient_is_softmax_minus_y() -> Result<()> {
    let theta = [0.5f32, -0.3, 1.0, 0.0];
    let sigma = 0.7f32;
    let samples = 20_000u32;
    let t64: Vec<f64> = theta.iter().map(|&t| t as f64).collect();
    for sense in [Sense::Maximize, Sense::Minimize] {
        let config = PerturbedConfig::new(Noise::Gumbel, sigma, samples)
            .with_sense(sense)
            .with_seed(11);
        let opt = optimizer(config);
        // Minimising θ + (−σG) = maximising −θ + σG: softmax(−θ/σ).
        let signed: Vec<f64> = t64.iter().map(|t| sense.sign() as f64 * t).collect();
        let p = softmax(&signed, sigma as f64);
        let theta_t = Var::new(&[theta], CPU)?;
        let y = rows(&opt.forward(theta_t.as_tensor())?).remove(0);
        for i in 0..4 {
            let se = (p[i] * (1.0 - p[i]) / samples as f64).sqrt();
            assert!(
                (y[i] - p[i]).abs() < 5.0 * se,
                "{sense:?} {i}: {y:?} vs {p:?}"
            );
        }
        let target = [0f32, 1.0, 0.0, 0.0];
        let target_t = Tensor::new(&[target], CPU)?;
        let loss = opt.fenchel_young_loss(theta_t.as_tensor(), &target_t, Reduction::Sum)?;
        let grad = rows(loss.backward()?.get(&theta_t).unwrap()).remove(0);
        for i in 0..4 {
            let se = (p[i] * (1.0 - p[i]) / samples as f64).sqrt();
            // ∇_θ = s·(y_σ − y).
            let expected = sense.sign() as f64 * (p[i] - target[i] as f64);
            assert!(
                (grad[i] - expected).abs() < 5.0 * se,
                "{sense:?} {i}: {grad:?}"
            );
        }
    }
    Ok(())
}

/// Gaussian noise, two items: argmax(θ + σZ) = e₁ iff Z₂ − Z₁ < (θ₁ − θ₂)/σ, and
/// Z₂ − Z₁ ~ N(0, 2), so p₁ = Φ(Δ/(σ√2)), Δ = θ₁ − θ₂, p₂ = 1 − p₁. Then
/// ∂p₁/∂θ₁ = −∂p₁/∂θ₂ = φ(Δ/(σ√2))/(σ√2) and the VJP with g is
/// (g₁ − g₂)·φ/(σ√2)·(1, −1). Minimising: p₁ = Φ(−Δ/(σ√2)), the VJP negated.
/// Multiplicative (θ > 0): u₁ > u₂ iff log θ₁ + σZ₁ > log θ₂ + σZ₂, so Δ = log θ₁ − log θ₂
/// and ∂/∂θ_i picks up 1/θ_i.
///
/// Standard error: each term of the estimator is ⟨y*_s, g⟩ ∇ν(Z_s)/(σ θ-factor) with
/// |⟨y*_s, g⟩| ≤ max|g| and E[∇ν(Z)_i²] = 1 (Gaussian: E[Z²] = 1; Gumbel:
/// E[(1 − e^{−G})²] = 1 − 2Γ(2) + Γ(3) = 1), so s.e. ≤ max|g|/(σ·θ-factor·√S); 5 s.e.
#[test]
fn gaussian_jacobian_matches_the_normal_cdf_closed_form() -> Result<()> {
    let samples = 40_000u32;
    let g = [1.0f32, -0.5];
    let g_max = 1.0;
    for (perturbation, theta, sigma) in [
        (Perturbation::Additive, [0.3f32, -0.2], 1.0f32),
        (Perturbation::Additive, [0.3f32, -0.2], 0.5),
        (Perturbation::Multiplicative, [1.5f32, 1.0], 0.6),
    ] {
        for sense in [Sense::Maximize, Sense::Minimize] {
            let config = PerturbedConfig::new(Noise::Gaussian, sigma, samples)
                .with_perturbation(perturbation)
                .with_sense(sense)
                .with_seed(3);
            let opt = optimizer(config);
            let s = sense.sign() as f64;
            let sigma = sigma as f64;
            let (delta, factor) = match perturbation {
                Perturbation::Additive => ((theta[0] - theta[1]) as f64, [1.0, 1.0]),
                Perturbation::Multiplicative => (
                    (theta[0] as f64).ln() - (theta[1] as f64).ln(),
                    [1.0 / theta[0] as f64, 1.0 / theta[1] as f64],
                ),
            };
            let x = s * delta / (sigma * 2f64.sqrt());
            // y_σ: p₁ = Φ(x).
            let theta_t = Tensor::new(&[theta], CPU)?;
            let y = rows(&opt.forward(&theta_t)?).remove(0);
            let p1 = normal_cdf(x);
            let se = (p1 * (1.0 - p1) / samples as f64).sqrt();
            assert!(
                (y[0] - p1).abs() < 5.0 * se,
                "{perturbation:?} {sense:?}: {y:?} {p1}"
            );
            // ∂p₁/∂θ₁ = s·φ(x)/(σ√2)·factor₁, ∂p₁/∂θ₂ = −s·φ(x)/(σ√2)·factor₂.
            let d = s * normal_pdf(x) / (sigma * 2f64.sqrt());
            let dg = (g[0] - g[1]) as f64;
            let expected = [dg * d * factor[0], -dg * d * factor[1]];
            let got = vjp(&opt, &theta, &g)?;
            for i in 0..2 {
                let se = g_max * factor[i] / (sigma * (samples as f64).sqrt());
                assert!(
                    (got[i] - expected[i]).abs() < 5.0 * se,
                    "{perturbation:?} {sense:?} σ={sigma} {i}: {got:?} vs {expected:?}"
                );
            }
        }
    }
    Ok(())
}

/// Gumbel additive: y_σ = softmax(θ/σ), whose Jacobian is (diag(p) − ppᵀ)/σ, so the VJP is
/// p ⊙ (g − ⟨p, g⟩)/σ. Tolerance as above (the Gumbel score has E[(1 − e^{−G})²] = 1).
#[test]
fn gumbel_jacobian_matches_the_softmax_jacobian() -> Result<()> {
    let theta = [0.4f32, -0.5, 0.9];
    let g = [1.0f32, 0.0, -1.0];
    let (sigma, samples) = (0.8f32, 40_000u32);
    let opt = optimizer(PerturbedConfig::new(Noise::Gumbel, sigma, samples).with_seed(5));
    let t64: Vec<f64> = theta.iter().map(|&t| t as f64).collect();
    let p = softmax(&t64, sigma as f64);
    let pg: f64 = p.iter().zip(&g).map(|(p, &g)| p * g as f64).sum();
    let got = vjp(&opt, &theta, &g)?;
    let se = 1.0 / (sigma as f64 * (samples as f64).sqrt());
    for i in 0..3 {
        let expected = p[i] * (g[i] as f64 - pg) / sigma as f64;
        assert!((got[i] - expected).abs() < 5.0 * se, "{i}: {got:?}");
    }
    Ok(())
}

/// Minimising θ with seed k solves exactly the problems of maximising −θ with seed k (the
/// solver sees θ − σZ and −θ + σZ = −(θ − σZ)), so y is identical and the gradients w.r.t.
/// θ are negated: bit for bit, ties aside (none with continuous noise).
#[test]
fn minimising_theta_is_maximising_minus_theta() -> Result<()> {
    let theta = Tensor::new(&[[0.3f32, -1.0, 0.2, 0.9], [2.0, 0.0, 0.1, -0.4]], CPU)?;
    let g = Tensor::new(&[[1f32, -2.0, 0.5, 0.0], [0.3, 0.0, -1.0, 2.0]], CPU)?;
    let target = Tensor::new(&[[0f32, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]], CPU)?;
    for noise in [Noise::Gaussian, Noise::Gumbel] {
        let run = |sense: Sense, theta: &Tensor| -> Result<(Tensor, Tensor, Tensor, f32)> {
            let config = PerturbedConfig::new(noise, 0.9, 16)
                .with_sense(sense)
                .with_seed(21);
            let opt = optimizer(config);
            let var = Var::from_tensor(theta)?;
            let y = opt.forward(var.as_tensor())?;
            let grad = (&y * &g)?.sum_all()?.backward()?.get(&var).unwrap().clone();
            let loss = opt.fenchel_young_loss(var.as_tensor(), &target, Reduction::Sum)?;
            let fy_grad = loss.backward()?.get(&var).unwrap().clone();
            Ok((y, grad, fy_grad, loss.to_scalar::<f32>()?))
        };
        let (y_min, grad_min, fy_min, loss_min) = run(Sense::Minimize, &theta)?;
        let (y_max, grad_max, fy_max, loss_max) = run(Sense::Maximize, &theta.neg()?)?;
        assert_eq!(rows(&y_min), rows(&y_max), "{noise:?}");
        assert_eq!(rows(&grad_min), rows(&grad_max.neg()?), "{noise:?}");
        assert_eq!(rows(&fy_min), rows(&fy_max.neg()?), "{noise:?}");
        // The loss value is the same function of η = sθ.
        assert!((loss_min - loss_max).abs() < 1e-5, "{loss_min} {loss_max}");
    }
    Ok(())
}

/// Picks the smallest cost; errors on a cost that is not positive.
struct PositiveArgmin;

impl MapSolver for PositiveArgmin {
    type Scratch = ();
    fn name(&self) -> &str {
        "positive argmin"
    }
    fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> Result<()> {
        if let Some(i) = theta.iter().position(|&c| c <= 0.0) {
            candle_core::bail!("cost {} at {i} is not positive", theta[i]);
        }
        let best = (0..theta.len())
            .min_by(|&a, &b| theta[a].total_cmp(&theta[b]))
            .unwrap();
        z[best] = 1.0;
        Ok(())
    }
}

#[test]
fn multiplicative_perturbation_keeps_positive_costs_positive() -> Result<()> {
    let theta = Tensor::new(&[[0.05f32, 0.2, 1.0], [0.01, 3.0, 0.5]], CPU)?;
    let config = PerturbedConfig::new(Noise::Gaussian, 1.0, 200)
        .with_sense(Sense::Minimize)
        .with_seed(1);
    let multiplicative = PerturbedOptimizer::new(
        PositiveArgmin,
        config.with_perturbation(Perturbation::Multiplicative),
    )?;
    let y = rows(&multiplicative.forward(&theta)?);
    for row in &y {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{y:?}");
    }
    // The additive form with σ = 1 makes small costs negative: the solver's check is real.
    let additive = PerturbedOptimizer::new(PositiveArgmin, config)?;
    let err = additive.forward(&theta).unwrap_err().to_string();
    assert!(err.contains("is not positive"), "{err}");
    Ok(())
}

#[test]
fn bad_configs_and_inputs_are_errors_that_say_why() -> Result<()> {
    let config = PerturbedConfig::new(Noise::Gaussian, 1.0, 4);
    let err = |config: PerturbedConfig| {
        PerturbedOptimizer::new(Argmax, config)
            .err()
            .expect("an error")
            .to_string()
    };
    for sigma in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(err(PerturbedConfig { sigma, ..config }).contains("sigma"));
    }
    assert!(
        err(PerturbedConfig {
            samples: 0,
            ..config
        })
        .contains("samples")
    );
    let sog = err(PerturbedConfig {
        noise: Noise::sum_of_gamma(2.0),
        ..config
    });
    assert!(
        sog.contains("score") && sog.contains("closed form"),
        "{sog}"
    );
    assert!(
        err(PerturbedConfig {
            noise: Noise::None,
            ..config
        })
        .contains("not supported")
    );
    let gumbel_mult =
        err(PerturbedConfig::new(Noise::Gumbel, 1.0, 4)
            .with_perturbation(Perturbation::Multiplicative));
    assert!(gumbel_mult.contains("Gaussian"), "{gumbel_mult}");

    let opt = optimizer(config);
    let message = |t: &Tensor| opt.forward(t).unwrap_err().to_string();
    assert!(message(&Tensor::new(&[1f32, 2.0], CPU)?).contains("rank >= 2"));
    assert!(message(&Tensor::zeros((0, 2), DType::F32, CPU)?).contains("empty"));
    assert!(message(&Tensor::new(&[[1u32, 2]], CPU)?).contains("float"));
    assert!(message(&Tensor::new(&[[1f32, f32::NAN]], CPU)?).contains("non-finite"));
    let theta = Tensor::new(&[[1f32, 2.0]], CPU)?;
    let y = Tensor::new(&[[1f32, 0.0, 0.0]], CPU)?;
    let fy = opt
        .fenchel_young_loss(&theta, &y, Reduction::Sum)
        .unwrap_err();
    assert!(fy.to_string().contains("shape"), "{fy}");
    // The multiplicative Jacobian divides by θ.
    let mult = optimizer(config.with_perturbation(Perturbation::Multiplicative));
    let zero = Var::new(&[[0f32, 1.0]], CPU)?;
    let y = mult.forward(zero.as_tensor())?;
    let err = y.sum_all()?.backward().unwrap_err().to_string();
    assert!(err.contains("θ = 0"), "{err}");
    Ok(())
}

/// Same seed and call sequence, same results; another seed, other results.
#[test]
fn results_are_reproducible_from_the_seed() -> Result<()> {
    let theta = Tensor::new(&[[0.1f32, 0.2, 0.0, -0.1]], CPU)?;
    let run = |seed| -> Result<Vec<Vec<f64>>> {
        let opt = optimizer(PerturbedConfig::new(Noise::Gaussian, 1.0, 50).with_seed(seed));
        Ok(rows(&opt.forward(&theta)?))
    };
    assert_eq!(run(4)?, run(4)?);
    assert_ne!(run(4)?, run(5)?);
    Ok(())
}

/// The loss value with Gumbel noise, maximising: max_i(θ_i + σG_i) is Gumbel with location
/// σ·LSE(θ/σ) and scale σ, so F_σ(θ) = σ·LSE(θ/σ) + σγ (γ Euler's constant) and the value is
/// F_σ(θ) − ⟨θ, y⟩; the Monte-Carlo mean has standard error σπ/√(6S); 5 s.e. The
/// reductions: `None` gives [B], `Sum`, `InstanceMean` (÷B) and `Mean` (÷B·d) agree with it.
#[test]
fn fy_value_is_the_perturbed_max_minus_the_target_score() -> Result<()> {
    let theta = [[0.5f32, -0.3, 1.0], [0.0, 0.2, -1.0]];
    let target = [[0f32, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let (sigma, samples) = (0.6f64, 20_000u32);
    let opt = optimizer(PerturbedConfig::new(Noise::Gumbel, sigma as f32, samples).with_seed(8));
    let theta_t = Tensor::new(&theta, CPU)?;
    let target_t = Tensor::new(&target, CPU)?;
    let per_instance = opt.fenchel_young_loss(&theta_t, &target_t, Reduction::None)?;
    assert_eq!(per_instance.dims(), &[2]);
    let values = per_instance.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    let gamma = 0.577_215_664_901_532_9;
    let se = sigma * std::f64::consts::PI / (6.0 * samples as f64).sqrt();
    for b in 0..2 {
        let max = theta[b].iter().fold(f64::MIN, |m, &t| m.max(t as f64));
        let lse = max
            + sigma
                * theta[b]
                    .iter()
                    .map(|&t| ((t as f64 - max) / sigma).exp())
                    .sum::<f64>()
                    .ln();
        let score: f64 = theta[b]
            .iter()
            .zip(&target[b])
            .map(|(&t, &y)| (t * y) as f64)
            .sum();
        let expected = lse + sigma * gamma - score;
        assert!(
            (values[b] - expected).abs() < 5.0 * se,
            "{b}: {values:?} vs {expected}"
        );
    }
    // Each call draws new noise, so compare the reductions on one seed's first call.
    let reduced = |reduction| -> Result<f64> {
        let opt =
            optimizer(PerturbedConfig::new(Noise::Gumbel, sigma as f32, samples).with_seed(8));
        opt.fenchel_young_loss(&theta_t, &target_t, reduction)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()
    };
    let sum = values[0] + values[1];
    assert!((reduced(Reduction::Sum)? - sum).abs() < 1e-5);
    assert!((reduced(Reduction::InstanceMean)? - sum / 2.0).abs() < 1e-5);
    assert!((reduced(Reduction::Mean)? - sum / 6.0).abs() < 1e-5);
    Ok(())
}

/// θ of shape `[B, instance…]`: the solver sees each instance in its shape, and every value
/// equals the flattened `[B, d]` problem's bit for bit (the noise depends on the flat element
/// index only), for `forward`, its Jacobian and the Fenchel-Young loss.
#[test]
fn instances_of_any_shape_match_their_flattened_form() -> Result<()> {
    let config = PerturbedConfig::new(Noise::Gaussian, 0.7, 8).with_seed(3);
    let values = [
        [0.1f32, 0.4, -0.2, 0.3, 0.0, 0.2],
        [1.0, -1.0, 0.5, 0.5, 0.2, 0.1],
    ];
    let weights = Tensor::new(&[[1f32, -2.0, 0.5, 0.0, 3.0, 1.0]; 2], CPU)?;
    let target = Tensor::new(&[[0f32, 1.0, 0.0, 0.0, 0.0, 0.0]; 2], CPU)?;
    // One fresh optimizer per shape, so both calls draw the same noise (call 0).
    // y_σ(θ), its Jacobian applied to the weights, the Fenchel-Young losses and their gradient.
    type Outputs = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);
    let run = |shape: &[usize]| -> Result<Outputs> {
        let optimizer = PerturbedOptimizer::new(Argmax, config)?;
        let theta = Var::from_tensor(&Tensor::new(&values, CPU)?.reshape(shape)?)?;
        let y = optimizer.forward(theta.as_tensor())?;
        assert_eq!(y.dims(), shape);
        let grads = (y.reshape((2, 6))? * &weights)?.sum_all()?.backward()?;
        let jacobian = grads.get(&theta).unwrap().flatten_all()?.to_vec1()?;
        let fy = optimizer.fenchel_young_loss(
            theta.as_tensor(),
            &target.reshape(shape)?,
            Reduction::None,
        )?;
        let fy_grad = fy.sum_all()?.backward()?;
        let fy_grad = fy_grad.get(&theta).unwrap().flatten_all()?.to_vec1()?;
        Ok((
            y.flatten_all()?.to_vec1()?,
            jacobian,
            fy.to_vec1()?,
            fy_grad,
        ))
    };
    let flat = run(&[2, 6])?;
    let grid = run(&[2, 2, 3])?;
    assert_eq!(flat, grid);
    Ok(())
}

/// A solver that needs its instance's shape (a grid shortest path on `[B, H, W]`) works
/// directly: every sample is a path from the top-left to the bottom-right corner, so the mean
/// is 1 at both corners and in [0, 1] everywhere.
#[test]
fn a_grid_solver_gets_its_grids() -> Result<()> {
    use imle_runtime::{GridShortestPath, Neighbourhood};
    let optimizer = PerturbedOptimizer::new(
        GridShortestPath::new(Neighbourhood::Eight),
        PerturbedConfig::new(Noise::Gaussian, 0.5, 4)
            .with_sense(Sense::Minimize)
            .with_perturbation(Perturbation::Multiplicative),
    )?;
    let costs = Tensor::rand(0.5f32, 2.0, (3, 4, 5), CPU)?;
    let y = optimizer.forward(&costs)?;
    assert_eq!(y.dims(), &[3, 4, 5]);
    for grid in y.to_vec3::<f32>()? {
        assert_eq!((grid[0][0], grid[3][4]), (1.0, 1.0));
        assert!(grid.iter().flatten().all(|&v| (0.0..=1.0).contains(&v)));
    }
    Ok(())
}
