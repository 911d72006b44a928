use candle_core::Tensor;
use imle::imle_layer;

// The perturbed optimizer's gradient needs the noise's score in closed form.
#[imle_layer(estimator = "perturbed", noise = "sum_of_gamma", k = 5)]
fn top5(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

// ... and some noise.
#[imle_layer(estimator = "perturbed", noise = "none")]
fn noiseless(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

// The multiplicative form's normalisation is the Gaussian one.
#[imle_layer(estimator = "perturbed", noise = "gumbel", perturbation = "multiplicative")]
fn multiplicative(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

// It calls a per-instance solver.
#[imle_layer(estimator = "perturbed", sigma = 0.1)]
fn batched(theta: &Tensor) -> candle_core::Result<Tensor> {
    theta.gt(0.0)
}

// The straight-through estimator's noise is "none" unless given.
#[imle_layer(estimator = "straight_through", tau = 0.5)]
fn ste_without_noise(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = Top5::default().config();
    let _ = Noiseless::default();
    let _ = Multiplicative::default();
    let _ = Batched::default();
    let _ = SteWithoutNoise::default().into_layer();
}
