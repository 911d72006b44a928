use imle::imle_layer;

#[imle_layer(noise = "gumbel", lamda = 10)]
fn typo(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(nb_samples = 4, banana = 1)]
fn other_names(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = (Typo::default(), OtherNames::default());
}
