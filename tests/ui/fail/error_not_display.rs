use imle::imle_layer;

#[derive(Debug)]
struct NoSolution;

#[imle_layer]
fn top1(theta: &[f32], z: &mut [f32]) -> Result<(), NoSolution> {
    z[0] = theta[0];
    Ok(())
}

fn main() {
    let _ = Top1::default();
}
