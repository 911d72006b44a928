//! `estimator = "..."`: each estimator over the same kind of solver function, its type, its
//! `Default`, the context and batched forms, and one forward or loss call each.
#![deny(warnings, missing_docs)]

use candle_core::{DType, Device, ModuleT, Result, Tensor, Var};
use imle::imle_layer;
use imle::loss::Reduction;

fn argmax(theta: &[f32]) -> usize {
    (0..theta.len()).fold(0, |b, i| if theta[i] > theta[b] { i } else { b })
}

/// The default estimator, written out.
#[imle_layer(estimator = "imle", noise = "gumbel", lambda = 5)]
pub fn pick(theta: &[f32], z: &mut [f32]) {
    z[argmax(theta)] = 1.0;
}

/// Straight-through: `MAP(θ)` forward (no noise by default), identity backward.
#[imle_layer(estimator = "straight_through", samples = 2, seed = 1)]
pub fn pick_ste(theta: &[f32], z: &mut [f32]) {
    z[argmax(theta)] = 1.0;
}

/// Straight-through with perturb-and-MAP in the forward pass.
#[imle_layer(estimator = "straight_through", noise = "sum_of_gamma", k = 1, tau = 0.5)]
pub fn pick_noisy_ste(theta: &[f32], z: &mut [f32]) {
    z[argmax(theta)] = 1.0;
}

/// Blackbox differentiation.
#[imle_layer(estimator = "blackbox", lambda = 20, sense = "minimize")]
pub fn cheapest_bb(theta: &[f32], z: &mut [f32]) {
    let best = (0..theta.len()).fold(0, |b, i| if theta[i] < theta[b] { i } else { b });
    z[best] = 1.0;
}

/// The perturbed optimizer, with every key it takes.
#[imle_layer(
    estimator = "perturbed",
    noise = "gaussian",
    sigma = 0.5,
    samples = 4,
    perturbation = "multiplicative",
    sense = "maximize",
    seed = 3
)]
pub fn pick_perturbed(theta: &[f32], z: &mut [f32]) {
    z[argmax(theta)] = 1.0;
}

/// The perturbed optimizer with its defaults (Gaussian, σ = 1, one sample).
#[imle_layer(estimator = "perturbed")]
pub fn pick_perturbed_default(theta: &[f32]) -> Vec<f32> {
    let mut z = vec![0.0; theta.len()];
    z[argmax(theta)] = 1.0;
    z
}

/// SPO+ over a cost solver.
#[imle_layer(estimator = "spo_plus", sense = "minimize")]
pub fn cheapest_spo(theta: &[f32], z: &mut [f32]) {
    let best = (0..theta.len()).fold(0, |b, i| if theta[i] < theta[b] { i } else { b });
    z[best] = 1.0;
}

/// A context for the solvers below.
#[derive(Default)]
pub struct Mask(pub Vec<f32>);

/// A context solver under the straight-through estimator.
#[imle_layer(estimator = "straight_through")]
pub fn masked_ste(mask: &Mask, theta: &[f32], z: &mut [f32]) {
    let masked: Vec<f32> = theta.iter().zip(&mask.0).map(|(t, m)| t * m).collect();
    z[argmax(&masked)] = 1.0;
}

/// A context solver under the perturbed optimizer.
#[imle_layer(estimator = "perturbed", noise = "gumbel")]
pub fn masked_perturbed(mask: &Mask, theta: &[f32], z: &mut [f32]) {
    let masked: Vec<f32> = theta.iter().zip(&mask.0).map(|(t, m)| t * m).collect();
    z[argmax(&masked)] = 1.0;
}

/// A context solver under SPO+.
#[imle_layer(estimator = "spo_plus")]
pub fn masked_spo(mask: &Mask, theta: &[f32], z: &mut [f32]) {
    let masked: Vec<f32> = theta.iter().zip(&mask.0).map(|(t, m)| t * m).collect();
    z[argmax(&masked)] = 1.0;
}

/// A batched solver under SPO+ and blackbox.
#[imle_layer(estimator = "spo_plus", name = "PositivesSpo")]
pub fn positives_spo(theta: &Tensor) -> Result<Tensor> {
    theta.gt(0.0)?.to_dtype(DType::F32)
}

/// The same batched solver under blackbox.
#[imle_layer(estimator = "blackbox")]
pub fn positives_bb(theta: &Tensor) -> Result<Tensor> {
    theta.gt(0.0)?.to_dtype(DType::F32)
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let theta = Var::new(&[[1f32, 3.0, 2.0], [0.5, -1.0, 0.0]], &dev)?;
    let y = Tensor::new(&[[1f32, 0.0, 0.0], [0.0, 0.0, 1.0]], &dev)?;

    let layer: imle::ImleLayer<PickSolver> = Pick::default();
    assert_eq!(layer.config().lambda, 5.0);

    let ste: imle::StraightThrough<PickSteSolver> = PickSte::default();
    assert_eq!(ste.config().noise, imle::Noise::None);
    let z = ste.forward(theta.as_tensor())?;
    assert_eq!(z.dims(), &[4, 3]);
    let grads = (z * ste.repeat_for_samples(&y)?)?.sum_all()?.backward()?;
    assert_eq!(grads.get(&theta).unwrap().to_vec2::<f32>()?, [[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]]);
    assert_eq!(PickNoisySte::default().config().tau, 0.5);
    let ste_eval = ste.forward_t(theta.as_tensor(), false)?;
    assert_eq!(ste_eval.to_vec2::<f32>()?, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);

    let bb = CheapestBb::default();
    let expected = imle::ImleConfig::blackbox(20.0)?.with_sense(imle::Sense::Minimize);
    assert_eq!(bb.config(), &expected);

    let perturbed: imle::perturbed::PerturbedOptimizer<PickPerturbedSolver> =
        PickPerturbed::default();
    assert_eq!(perturbed.config().samples, 4);
    assert_eq!(perturbed.forward(theta.as_tensor())?.dims(), &[2, 3]);
    let fy = PickPerturbedDefault::default().fenchel_young_loss(theta.as_tensor(), &y, Reduction::Sum)?;
    assert_eq!(fy.dims(), &[] as &[usize]);

    let spo: imle::spo::SpoPlus<CheapestSpoSolver> = CheapestSpo::default();
    assert_eq!(spo.sense(), imle::Sense::Minimize);
    let loss = spo.loss(theta.as_tensor(), theta.as_tensor(), &y, Reduction::Sum)?;
    assert_eq!(loss.dims(), &[] as &[usize]);

    let mask = || Mask(vec![1.0, 0.0, 1.0]);
    assert_eq!(MaskedSte::from_context(mask()).context().0[1], 0.0);
    assert_eq!(MaskedPerturbed::from_context(mask()).config().noise, imle::Noise::Gumbel);
    assert_eq!(MaskedSpo::from_context(mask()).context().0.len(), 3);

    let batched: imle::spo::SpoPlus<imle::Batched<PositivesSpoSolver>> = PositivesSpo::default();
    assert_eq!(batched.sense(), imle::Sense::Maximize);
    assert_eq!(PositivesBb::default().map(theta.as_tensor())?.dims(), &[2, 3]);
    Ok(())
}
