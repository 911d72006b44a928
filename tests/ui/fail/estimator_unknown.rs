use imle::imle_layer;

#[imle_layer(estimator = "perturbd", sigma = 2, lambda = 3)]
fn misspelt(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(estimator = "ste")]
fn alias(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(estimator = "aimle")]
fn adaptive(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(estimator = spo_plus)]
fn unquoted(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer(method = "blackbox")]
fn other_key(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = (Misspelt::default(), Alias::default(), Adaptive::default());
    let _ = (Unquoted::default(), OtherKey::default());
}
