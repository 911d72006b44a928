//! The straight-through estimator as a layer of its own: [`StraightThrough`].

use crate::config::ImleConfig;
use crate::layer::ImleLayer;
use crate::plumbing::Solver;
use crate::solver::ConfiguredSolver;
use candle_core::{ModuleT, Result, Tensor};

/// The straight-through estimator over a solver, as a layer: [`ImleLayer::straight_through`]
/// behind the same `forward` / `forward_t` / `map` calls as an [`ImleLayer`], so that a
/// training loop written for one runs the other unchanged. What
/// `#[imle_layer(estimator = "straight_through")]` generates.
///
/// * `forward(θ)`: the value of the layer's training forward (`MAP(θ)` with
///   [`Noise::None`](crate::Noise::None), the usual straight-through baseline;
///   perturb-and-MAP with a noise), with the identity as its Jacobian:
///   `∂L/∂θ = σ·∂L/∂z` (σ = −1 for [`Sense::Minimize`](crate::Sense::Minimize)), summed over
///   an instance's samples. The solver is never called in the backward pass.
/// * `forward_t(θ, train)`: `straight_through(θ, train)`, so evaluation (`train = false`) is
///   `MAP(θ)`, still with the identity gradient.
/// * `map(θ)`: `MAP(θ)` with no gradient.
///
/// The configuration is the wrapped layer's; only its forward fields (noise, τ, samples,
/// reduce, sense, seed) matter, since the backward pass is the identity.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise, StraightThrough};
/// let ste = StraightThrough::new(ImleLayer::new(Argmax, ImleConfig::new(Noise::None))?);
/// let theta = Var::new(&[[1f32, 2.0]], &Device::Cpu)?;
/// let z = ste.forward(theta.as_tensor())?; // MAP(θ) = [0, 1]
/// assert_eq!(z.to_vec2::<f32>()?, [[0.0, 1.0]]);
/// let g = Tensor::new(&[[3f32, -1.0]], &Device::Cpu)?;
/// let grads = (z * &g)?.sum_all()?.backward()?;
/// assert_eq!(grads.get(&theta).unwrap().to_vec2::<f32>()?, [[3.0, -1.0]]); // = g
/// # Ok::<(), candle_core::Error>(())
/// ```
pub struct StraightThrough<S: Solver> {
    layer: ImleLayer<S>,
}

impl<S: Solver> Clone for StraightThrough<S> {
    /// Clones share the wrapped layer's noise call counter (as layer clones do).
    fn clone(&self) -> Self {
        StraightThrough {
            layer: self.layer.clone(),
        }
    }
}

impl<S: Solver> std::fmt::Debug for StraightThrough<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StraightThrough").field(&self.layer).finish()
    }
}

impl<S: Solver + ConfiguredSolver + Default> Default for StraightThrough<S> {
    /// The estimator over the solver's default value, with the configuration its type
    /// carries.
    fn default() -> Self {
        Self::configured(S::default())
    }
}

impl<S: Solver + ConfiguredSolver> StraightThrough<S> {
    /// The estimator around `solver`, with the configuration its type carries (see
    /// [`ImleLayer::configured`]).
    pub fn configured(solver: S) -> Self {
        Self::new(ImleLayer::configured(solver))
    }
}

impl<S: Solver> StraightThrough<S> {
    /// The straight-through estimator over `layer`'s solver and forward configuration.
    pub fn new(layer: ImleLayer<S>) -> Self {
        StraightThrough { layer }
    }

    /// The wrapped layer (its `forward` is the I-MLE estimator over the same solver).
    pub fn layer(&self) -> &ImleLayer<S> {
        &self.layer
    }

    /// The wrapped layer, e.g. to change its configuration with its `with_*` methods and wrap
    /// it again with [`StraightThrough::new`].
    pub fn into_layer(self) -> ImleLayer<S> {
        self.layer
    }

    /// The configuration in force (the wrapped layer's).
    pub fn config(&self) -> &ImleConfig {
        self.layer.config()
    }

    /// The solver.
    pub fn solver(&self) -> &S {
        self.layer.solver()
    }

    /// Training forward: [`ImleLayer::straight_through`]`(θ, true)`.
    pub fn forward(&self, theta: &Tensor) -> Result<Tensor> {
        self.layer.straight_through(theta, true)
    }

    /// Evaluation: `MAP(θ)`, no gradient ([`ImleLayer::map`]).
    pub fn map(&self, theta: &Tensor) -> Result<Tensor> {
        self.layer.map(theta)
    }

    /// Lines `[B, …]` labels up with the training output ([`ImleLayer::repeat_for_samples`]).
    pub fn repeat_for_samples(&self, tensor: &Tensor) -> Result<Tensor> {
        self.layer.repeat_for_samples(tensor)
    }
}

impl<S: Solver> ModuleT for StraightThrough<S> {
    /// [`ImleLayer::straight_through`]`(θ, train)`.
    fn forward_t(&self, theta: &Tensor, train: bool) -> Result<Tensor> {
        self.layer.straight_through(theta, train)
    }
}
