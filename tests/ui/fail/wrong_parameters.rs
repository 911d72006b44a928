use imle::imle_layer;

#[imle_layer]
fn owned_theta(theta: Vec<f32>) -> Vec<f32> {
    theta
}

#[imle_layer]
fn integer_theta(theta: &[i32], z: &mut [f32]) {
    z[0] = theta[0] as f32;
}

#[imle_layer]
fn mixed_precision(theta: &[f32], z: &mut [f64]) {
    z[0] = f64::from(theta[0]);
}

#[imle_layer]
fn extra(theta: &[f32], z: &mut [f32], k: usize) {
    z[k] = theta[k];
}

#[imle_layer]
fn writes_and_returns(theta: &[f32], z: &mut [f32]) -> Vec<f32> {
    z[0] = theta[0];
    z.to_vec()
}

#[imle_layer]
fn returns_nothing(theta: &[f32]) {
    let _ = theta;
}

#[imle_layer]
fn mutable_context(graph: &mut Vec<f32>, theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0] + graph[0];
}

#[imle_layer]
fn no_theta() -> Vec<f32> {
    Vec::new()
}

fn main() {}
