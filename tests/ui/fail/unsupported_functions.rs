use imle::imle_layer;

#[imle_layer]
fn generic<T: Copy>(theta: &[T], z: &mut [T]) {
    z[0] = theta[0];
}

#[imle_layer]
async fn later(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer]
unsafe fn risky(theta: &[f32], z: &mut [f32]) {
    z[0] = theta[0];
}

#[imle_layer]
fn hidden_generic(theta: &[f32], z: &mut impl AsMut<[f32]>) {
    z.as_mut()[0] = theta[0];
}

fn main() {
    let _ = (
        Generic::default(),
        Later::default(),
        Risky::default(),
        HiddenGeneric::default(),
    );
}
