use imle::imle_layer;
use std::cell::Cell;

/// A context with interior mutability cannot be shared by the solver's threads.
#[derive(Default)]
struct Counter(Cell<usize>);

#[imle_layer]
fn counting(counter: &Counter, theta: &[f32], z: &mut [f32]) {
    counter.0.set(counter.0.get() + 1);
    z[0] = theta[0];
}

fn main() {
    let _ = Counting::default();
}
