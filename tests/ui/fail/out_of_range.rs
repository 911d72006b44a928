use imle::imle_layer;

#[imle_layer(lambda = 0, tau = -1, target_tau = 1e39, alpha = 1e400)]
fn reals(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(noise = "sum_of_gamma", k = 0, gamma_terms = 256, samples = 0, marginal_samples = -2)]
fn counts(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(samples = 65536, marginal_samples = 65536, lambda = -0.5)]
fn overflow(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = (Reals::default(), Counts::default(), Overflow::default());
}
