use imle::imle_layer;

// SPO+ takes `sense` only.
#[imle_layer(estimator = "spo_plus", sense = "minimize", target = "normalized", lambda = 10, k = 3)]
fn cheapest(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

// The straight-through backward pass is the identity: no target, λ or central difference.
#[imle_layer(estimator = "straight_through", target = "adaptive", lambda = 0, symmetric)]
fn ste(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

// Blackbox differentiation has no noise, one sample, and always divides by λ.
#[imle_layer(estimator = "blackbox", noise = "gumbel", samples = 4, scale_by_lambda = false, lambda = 20)]
fn bb(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

// `sigma` and `perturbation` belong to the perturbed optimizer.
#[imle_layer(sigma = 0.5, perturbation = "additive")]
fn imle_with_sigma(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

// The perturbed optimizer has no target, its noise scale is `sigma`, and it returns the mean.
#[imle_layer(estimator = "perturbed", lambda = 10, tau = 2, reduce = "mean", samples = 8)]
fn perturbed(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    // The stand-in types are the estimators' own, so these calls add no errors.
    let _ = Cheapest::default().sense();
    let _ = Ste::default().into_layer();
    let _ = Bb::default().lambda();
    let _ = ImleWithSigma::default().gradient_density();
    let _ = Perturbed::default().config().sigma;
}
