//! The generated items: documentation, visibility, `#[cfg]`, `name`, and no warnings.
#![deny(warnings, missing_docs)]

/// Layers in a module, used from outside it.
pub mod layers {
    use imle::imle_layer;

    /// The largest entry, one-hot.
    #[imle_layer(noise = "gumbel", name = "OneHot", samples = 2)]
    pub fn argmax(theta: &[f32], z: &mut [f32]) {
        let best = (0..theta.len()).fold(0, |b, i| if theta[i] > theta[b] { i } else { b });
        z[best] = 1.0;
    }

    /// A context solver without documentation of its own context type's field.
    #[imle_layer]
    pub fn with_weights(weights: &Weights, theta: &[f32]) -> Vec<f32> {
        theta
            .iter()
            .zip(&weights.0)
            .map(|(t, w)| f32::from(t * w > 0.0))
            .collect()
    }

    /// Weights for [`with_weights`].
    #[derive(Default)]
    pub struct Weights(pub Vec<f32>);

    /// Compiled out, together with everything the attribute generates for it.
    #[cfg(any())]
    #[imle_layer]
    pub fn gone(theta: &[f32], z: &mut [f32]) {}

    #[imle_layer(noise = "none")]
    fn private(theta: &[f32]) -> Vec<f32> {
        theta.to_vec()
    }

    /// Uses the private layer.
    pub fn private_layer_rows() -> usize {
        Private::default().config().samples as usize
    }
}

fn main() -> candle_core::Result<()> {
    use candle_core::{Device, Tensor};
    let theta = Tensor::new(&[[1f32, 3.0, 2.0]], &Device::Cpu)?;
    let layer = layers::OneHot::default();
    assert_eq!(layer.forward(&theta)?.dims(), &[2, 3]);
    assert_eq!(layer.map(&theta)?.to_vec2::<f32>()?, [[0.0, 1.0, 0.0]]);
    let _: layers::OneHotSolver = layers::OneHotSolver;
    let weighted = layers::WithWeights::from_context(layers::Weights(vec![1.0, -1.0, 1.0]));
    assert_eq!(weighted.map(&theta)?.to_vec2::<f32>()?, [[1.0, 0.0, 1.0]]);
    assert_eq!(layers::private_layer_rows(), 1);
    Ok(())
}
