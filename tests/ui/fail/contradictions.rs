use imle::imle_layer;

#[imle_layer(target_density = 2, target = "perturb", adaptive_step = 0.01)]
fn not_adaptive(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(noise = "none", target_tau = 2, tau = 0.5)]
fn no_noise(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(noise = "gaussian", k = 5, gamma_terms = 20)]
fn not_sum_of_gamma(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(target = "normalized", target_density = 1)]
fn normalized_not_adaptive(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = (
        NotAdaptive::default(),
        NoNoise::default(),
        NotSumOfGamma::default(),
        NormalizedNotAdaptive::default(),
    );
}
