use imle::imle_layer;

// Below Noise::sum_of_gamma_min_k(terms) the sampler has no table: 1e-3 with the default 10
// terms, 0.0435 with 255.
#[imle_layer(noise = "sum_of_gamma", k = 0.0001)]
fn tiny(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(noise = "sum_of_gamma", k = 0.01, gamma_terms = 255)]
fn many_terms(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = Tiny::default();
    let _ = ManyTerms::default();
}
