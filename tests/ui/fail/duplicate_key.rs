use imle::imle_layer;

#[imle_layer(lambda = 10, samples = 2, lambda = 20)]
fn top1(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = Top1::default();
}
