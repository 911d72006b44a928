//! Every supported solver signature compiles, and its layer runs forward and in evaluation.

use candle_core::{D, DType, Device, ModuleT, Result, Tensor};
use imle::imle_layer;

/// Form 1: writes into `z`.
#[imle_layer(noise = "sum_of_gamma", k = 1)]
fn writes(theta: &[f32], z: &mut [f32]) {
    z[argmax(theta)] = 1.0;
}

// Form 2: returns the solution.
#[imle_layer]
fn returns(theta: &[f32]) -> Vec<f32> {
    one_hot(argmax(theta), theta.len())
}

// Form 3: fallible, writing or returning, with any `Result` whose error is `Display`.
#[imle_layer(noise = "gaussian")]
fn fallible_writes(theta: &[f32], z: &mut [f32]) -> std::result::Result<(), String> {
    z[argmax(theta)] = 1.0;
    Ok(())
}

#[imle_layer(noise = "none")]
fn fallible_returns(theta: &[f32]) -> candle_core::Result<Vec<f32>> {
    Ok(one_hot(argmax(theta), theta.len()))
}

#[imle_layer]
fn boxed_error(theta: &[f32]) -> std::result::Result<Vec<f32>, Box<dyn std::error::Error>> {
    Ok(one_hot(argmax(theta), theta.len()))
}

// Form 4: a leading context, with each of the other forms.
#[derive(Default)]
struct Weights(Vec<f32>);

#[imle_layer]
fn context_writes(weights: &Weights, theta: &[f32], z: &mut [f32]) {
    let scored: Vec<f32> = theta.iter().zip(&weights.0).map(|(t, w)| t * w).collect();
    z[argmax(&scored)] = 1.0;
}

#[imle_layer]
fn context_returns(weights: &Weights, theta: &[f32]) -> Vec<f32> {
    let _ = weights;
    one_hot(argmax(theta), theta.len())
}

#[imle_layer]
fn context_shape(weights: &Weights, theta: &[f32], shape: &[usize], z: &mut [f32]) {
    assert_eq!(shape.iter().product::<usize>(), weights.0.len());
    z[argmax(theta)] = 1.0;
}

// Form 5: the instance shape after theta.
#[imle_layer]
fn with_shape(theta: &[f32], shape: &[usize], z: &mut [f32]) {
    assert_eq!(shape, [2, 2]);
    z[argmax(theta)] = 1.0;
}

#[imle_layer]
fn shape_returns(theta: &[f32], shape: &[usize]) -> Result<Vec<f32>> {
    assert_eq!(shape, [2, 2]);
    Ok(one_hot(argmax(theta), theta.len()))
}

// Form 6: batched, with any path to `Tensor` and `Result`, and with a context.
#[imle_layer]
fn batched(theta: &Tensor) -> candle_core::Result<Tensor> {
    let flat = theta.flatten_from(1)?;
    let max = flat.max_keepdim(D::Minus1)?;
    flat.broadcast_eq(&max)?
        .to_dtype(DType::F32)?
        .reshape(theta.shape())
}

#[imle_layer]
fn batched_context(weights: &Weights, theta: &candle_core::Tensor) -> Tensor {
    let _ = weights;
    theta.ones_like().unwrap()
}

// f64 slices, in every per-instance form.
#[imle_layer]
fn double(theta: &[f64], shape: &[usize], z: &mut [f64]) -> std::result::Result<(), String> {
    let _ = shape;
    let best = (0..theta.len()).fold(0, |b, i| if theta[i] > theta[b] { i } else { b });
    z[best] = 1.0;
    Ok(())
}

#[imle_layer]
fn double_returns(weights: &Weights, theta: &[f64]) -> Vec<f64> {
    let _ = weights;
    theta
        .iter()
        .map(|&t| f64::from(u8::from(t > 0.0)))
        .collect()
}

// `const fn`, an explicit ABI, lifetimes and visibility are fine.
pub mod shapes {
    #[imle::imle_layer]
    pub(crate) const fn first<'a>(theta: &'a [f32], z: &mut [f32]) {
        let _ = theta;
        z[0] = 1.0;
    }

    #[imle::imle_layer]
    pub extern "Rust" fn last(theta: &[f32]) -> Vec<f32> {
        let mut z = vec![0.0; theta.len()];
        z[theta.len() - 1] = 1.0;
        z
    }
}

fn argmax(theta: &[f32]) -> usize {
    (0..theta.len()).fold(0, |b, i| if theta[i] > theta[b] { i } else { b })
}

fn one_hot(i: usize, n: usize) -> Vec<f32> {
    let mut z = vec![0.0; n];
    z[i] = 1.0;
    z
}

/// Training and evaluation outputs have θ's shape and one 1 per row (`ones` per row).
fn check<L: ModuleT>(layer: &L, theta: &Tensor, ones: f32) -> Result<()> {
    for train in [true, false] {
        let z = layer.forward_t(theta, train)?;
        assert_eq!(z.dims(), theta.dims());
        let per_row = z.flatten_from(1)?.sum(1)?.to_vec1::<f32>()?;
        assert!(per_row.iter().all(|&s| s == ones), "{per_row:?}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let theta = Tensor::new(
        &[[0.5f32, 2.0, -1.0, 0.0], [3.0, 1.0, 0.0, -0.5]],
        &Device::Cpu,
    )?;
    let square = theta.reshape((2, 2, 2))?;
    let weights = || Weights(vec![1.0; 4]);
    check(&Writes::default(), &theta, 1.0)?;
    check(&Returns::default(), &theta, 1.0)?;
    check(&FallibleWrites::default(), &theta, 1.0)?;
    check(&FallibleReturns::default(), &theta, 1.0)?;
    check(&BoxedError::default(), &theta, 1.0)?;
    check(&ContextWrites::from_context(weights()), &theta, 1.0)?;
    check(&ContextReturns::default(), &theta, 1.0)?;
    check(&ContextShape::from_context(weights()), &square, 1.0)?;
    check(&WithShape::default(), &square, 1.0)?;
    check(&ShapeReturns::default(), &square, 1.0)?;
    check(&Batched::default(), &square, 1.0)?;
    check(&BatchedContext::from_context(weights()), &theta, 4.0)?;
    check(&Double::default(), &square, 1.0)?;
    check(
        &DoubleReturns::from_context(weights()).with_noise(imle::Noise::None)?,
        &theta,
        2.0,
    )?;
    check(&shapes::First::default(), &theta, 1.0)?;
    check(&shapes::Last::default(), &theta, 1.0)?;
    // The solver types are ordinary solvers too.
    let custom = imle::ImleLayer::new(WritesSolver, imle::ImleConfig::new(imle::Noise::Gumbel))?;
    check(&custom, &theta, 1.0)?;
    Ok(())
}
