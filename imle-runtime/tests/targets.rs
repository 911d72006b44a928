//! The normalized target (a step relative to ‖θ‖/‖g‖) and the gradient density every target
//! reports: hand-computed cases, and the invariance to the loss's reduction that is the
//! normalized target's reason to exist.

use candle_core::{DType, Device, Result, Tensor, Var};
use imle_runtime::loss::{Reduction, hamming};
use imle_runtime::{Argmax, ImleConfig, ImleLayer, MapSolver, Noise, Target, TopK};

const CPU: &Device = &Device::Cpu;

/// Gradient of `Σ z ⊙ weights` with respect to θ, and the layer's density afterwards.
fn gradient<S: MapSolver>(
    layer: &ImleLayer<S>,
    theta: &Var,
    weights: &Tensor,
) -> Result<(Vec<Vec<f32>>, f32)> {
    let z = layer.forward(theta.as_tensor())?;
    let grads = (z * weights.broadcast_as(theta.shape())?)?
        .sum_all()?
        .backward()?;
    let g = grads.get(theta).unwrap().to_vec2::<f32>()?;
    Ok((g, layer.gradient_density()))
}

/// θ = (3, 4), ‖θ‖ = 5; g = (0, 2), ‖g‖ = 2; no noise. The normalized step is
/// λ·(5/2)·g = (0, 5λ): with λ = 0.5, θ' = (3, 1.5), whose argmax (entry 0) differs from
/// MAP(θ) (entry 1), so the gradient is e1 − e0 = (−1, 1); with λ = 0.1, θ' = (3, 3.5) has
/// the same argmax and the gradient is 0. The same holds for g scaled by 1e-6 (a mean over a
/// million entries): that is the invariance.
#[test]
fn normalized_target_matches_the_hand_computation_at_any_gradient_scale() -> Result<()> {
    let theta = Var::new(&[[3f32, 4.0]], CPU)?;
    for scale in [1.0f32, 1e-6, 1e3] {
        let weights = Tensor::new(&[[0f32, 2.0 * scale]], CPU)?;
        let layer = |lambda| -> Result<ImleLayer<Argmax>> {
            ImleLayer::new(
                Argmax,
                ImleConfig::new(Noise::None)
                    .with_target(Target::Normalized)?
                    .with_lambda(lambda)?,
            )
        };
        let (g, density) = gradient(&layer(0.5)?, &theta, &weights)?;
        assert_eq!(g, [[-1.0, 1.0]], "scale {scale}");
        assert_eq!(density, 2.0, "two entries differ");
        let (g, density) = gradient(&layer(0.1)?, &theta, &weights)?;
        assert_eq!(g, [[0.0, 0.0]], "scale {scale}");
        assert_eq!(density, 0.0);
    }
    // The perturb target is not invariant: λ = 0.5 with g = (0, 2e-6) moves θ by 1e-6 only.
    let perturb = ImleLayer::new(Argmax, ImleConfig::new(Noise::None).with_lambda(0.5)?)?;
    let (g, density) = gradient(&perturb, &theta, &Tensor::new(&[[0f32, 2e-6]], CPU)?)?;
    assert_eq!((g, density), (vec![vec![0.0, 0.0]], 0.0));
    Ok(())
}

/// The same noisy top-k layer, trained on a Hamming loss reduced by a sum and by a mean: with
/// the normalized target the gradients agree (up to f32 rounding of the per-row λ, which moves
/// no MAP for these draws); with the perturb target the mean's gradient is mostly zero.
#[test]
fn normalized_gradient_does_not_depend_on_the_loss_reduction() -> Result<()> {
    let (batch, n, samples) = (16, 20, 4);
    let theta_values: Vec<f32> = (0..batch * n)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    let theta = Var::from_vec(theta_values, (batch, n), CPU)?;
    let y_values: Vec<f32> = (0..batch * n).map(|i| (i % 4 == 0) as u8 as f32).collect();
    let y = Tensor::from_vec(y_values, (batch, n), CPU)?;
    let run = |target: Target, reduction: Reduction| -> Result<(Vec<Vec<f32>>, f32)> {
        let config = ImleConfig::new(Noise::SumOfGamma { k: 5.0, terms: 10 })
            .with_target(target)?
            .with_lambda(1.0)?
            .with_samples(samples)?
            .with_seed(3);
        let layer = ImleLayer::new(TopK::new(5)?, config)?;
        let z = layer.forward(theta.as_tensor())?;
        let loss = hamming(&z, &layer.repeat_for_samples(&y)?, reduction)?;
        let g = loss.backward()?.get(&theta).unwrap().to_vec2::<f32>()?;
        Ok((g, layer.gradient_density()))
    };
    let (summed, density_sum) = run(Target::Normalized, Reduction::Sum)?;
    let (mean, density_mean) = run(Target::Normalized, Reduction::Mean)?;
    assert_eq!(summed, mean);
    assert_eq!(density_sum, density_mean);
    assert!(density_sum > 1.0, "the gradient is alive: {density_sum}");
    // λ = 1 with a summed loss changes MAPs; with a mean (g = ±1/(B·S·n) = ±1/1280) it cannot
    // move θ across the gaps between its entries (≥ 1/101 here, noise apart) often.
    let (_, perturb_sum) = run(Target::Perturb, Reduction::Sum)?;
    let (_, perturb_mean) = run(Target::Perturb, Reduction::Mean)?;
    assert!(perturb_sum > 1.0, "{perturb_sum}");
    assert!(
        perturb_mean < 0.1 * perturb_sum,
        "{perturb_mean} vs {perturb_sum}"
    );
    Ok(())
}

/// Every target reports the density of its last backward pass, and keeps a running mean.
#[test]
fn every_target_reports_its_gradient_density() -> Result<()> {
    let theta = Var::new(&[[3f32, 4.0], [1.0, 0.0]], CPU)?;
    let weights = Tensor::new(&[[0f32, 2.0]], CPU)?;
    for target in [Target::Perturb, Target::Normalized, Target::ADAPTIVE] {
        let config = ImleConfig::new(Noise::None)
            .with_target(target)?
            .with_lambda(5.0)?;
        let layer = ImleLayer::new(Argmax, config)?;
        assert_eq!(layer.gradient_density(), 0.0);
        let (_, density) = gradient(&layer, &theta, &weights)?;
        // Row 0 flips its argmax (2 entries differ), row 1 (θ = (1, 0), step −2λ' on entry
        // 1) keeps it: one row of two has a non-zero term.
        assert_eq!(density, 1.0, "{target:?}");
        assert_eq!(layer.running_gradient_density(), 0.1, "{target:?}");
    }
    Ok(())
}

/// A row with g = 0 gets λ = 0 under the normalized target: no step, a zero gradient row,
/// and no NaN from 0/0.
#[test]
fn normalized_target_with_a_zero_gradient_row_is_zero_not_nan() -> Result<()> {
    let theta = Var::new(&[[3f32, 4.0], [0.0, 0.0]], CPU)?;
    let config = ImleConfig::new(Noise::Gumbel)
        .with_target(Target::Normalized)?
        .with_lambda(1.0)?
        .with_scale_by_lambda(true);
    let layer = ImleLayer::new(Argmax, config)?;
    let z = layer.forward(theta.as_tensor())?;
    let weights = Tensor::new(&[[0f32, 0.0], [1.0, -1.0]], CPU)?;
    let g = (z * weights)?.sum_all()?.backward()?;
    let g = g
        .get(&theta)
        .unwrap()
        .to_dtype(DType::F32)?
        .to_vec2::<f32>()?;
    assert!(g.iter().flatten().all(|v| v.is_finite()), "{g:?}");
    assert_eq!(g[0], [0.0, 0.0], "g = 0 on row 0");
    assert_eq!(g[1], [0.0, 0.0], "θ = 0 on row 1: λ = 0");
    Ok(())
}

/// Straight-through: the value is MAP(θ) (or the perturbed sample), the gradient σ·g, summed
/// over the samples of an instance.
#[test]
fn straight_through_passes_the_incoming_gradient() -> Result<()> {
    let theta = Var::new(&[[1f32, 2.0], [5.0, -1.0]], CPU)?;
    let g = Tensor::new(&[[3f32, -1.0], [0.5, 2.0]], CPU)?;
    let gradient = |layer: &ImleLayer<Argmax>, train: bool| -> Result<Vec<Vec<f32>>> {
        let z = layer.straight_through(theta.as_tensor(), train)?;
        let g = layer.repeat_for_samples(&g)?;
        let grads = (z * g)?.sum_all()?.backward()?;
        grads.get(&theta).unwrap().to_vec2::<f32>()
    };
    let plain = ImleLayer::new(Argmax, ImleConfig::new(Noise::None))?;
    let z = plain.straight_through(theta.as_tensor(), false)?;
    assert_eq!(z.to_vec2::<f32>()?, [[0.0, 1.0], [1.0, 0.0]]);
    assert_eq!(gradient(&plain, false)?, [[3.0, -1.0], [0.5, 2.0]]);
    // Minimise: the identity of the maximising form on −θ, so −g.
    let minimise = ImleLayer::new(
        Argmax,
        ImleConfig::new(Noise::None).with_sense(imle_runtime::Sense::Minimize),
    )?;
    assert_eq!(gradient(&minimise, false)?, [[-3.0, 1.0], [-0.5, -2.0]]);
    // Three noisy samples per instance: each sample's g (the same row here) adds up.
    let noisy = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel).with_samples(3)?)?;
    assert_eq!(
        noisy.straight_through(theta.as_tensor(), true)?.dims(),
        &[6, 2]
    );
    assert_eq!(gradient(&noisy, true)?, [[9.0, -3.0], [1.5, 6.0]]);
    Ok(())
}

/// Blackbox differentiation: θ = (3, 4), g = (0, 2), λ = 0.5: θ' = θ − λg = (3, 3), whose
/// argmax (ties to the lowest index) is entry 0, while MAP(θ) is entry 1, so the gradient is
/// (MAP(θ) − MAP(θ'))/λ = (−2, 2). With λ = 0.1, θ' = (3, 3.8) keeps entry 1: zero.
#[test]
fn blackbox_matches_the_hand_computation() -> Result<()> {
    let theta = Var::new(&[[3f32, 4.0]], CPU)?;
    let weights = Tensor::new(&[[0f32, 2.0]], CPU)?;
    let config = ImleConfig::blackbox(0.5)?;
    assert_eq!(
        config,
        ImleConfig::new(Noise::None)
            .with_lambda(0.5)?
            .with_scale_by_lambda(true)
    );
    let (g, _) = gradient(&ImleLayer::new(Argmax, config)?, &theta, &weights)?;
    assert_eq!(g, [[-2.0, 2.0]]);
    let (g, _) = gradient(
        &ImleLayer::new(Argmax, ImleConfig::blackbox(0.1)?)?,
        &theta,
        &weights,
    )?;
    assert_eq!(g, [[0.0, 0.0]]);
    assert!(ImleConfig::blackbox(0.0).is_err());
    Ok(())
}
