use imle::imle_layer;

#[imle_layer(noise = "sum_of_gamma", lambda = 10.0, samples = 10)]
fn top5(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    // The layer type still exists, so this line adds no error of its own.
    let _ = Top5::default().with_lambda(20.0);
}
