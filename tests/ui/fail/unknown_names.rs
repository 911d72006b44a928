use imle::imle_layer;

#[imle_layer(noise = "gumble", target = "adaptve", sense = "max", reduce = "sum")]
fn top1(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

fn main() {
    let _ = Top1::default();
}
