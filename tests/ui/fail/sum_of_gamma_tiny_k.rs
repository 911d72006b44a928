use imle::imle_layer;

// 1e-39 is a (subnormal) f32 above 0, but 1/k overflows: the gamma shape would be infinite.
#[imle_layer(noise = "sum_of_gamma", k = 1e-39)]
fn tiny(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = Tiny::default();
}
