//! The user-facing layer: a solver plus its configuration, usable wherever Candle takes a
//! module.

use crate::config::{ImleConfig, Reduce, Sense};
use crate::error::input_error;
use crate::noise::{Noise, NoiseKey};
use crate::op::{self, Dims};
use crate::plumbing::Solver;
use crate::solver::ConfiguredSolver;
use crate::state::LayerState;
use crate::target::Target;
use candle_core::{DType, Module, ModuleT, Result, Tensor};
use std::sync::Arc;

/// A differentiable MAP layer: perturb-and-MAP in training, `MAP(θ)` in evaluation, and the
/// I-MLE gradient in backward.
///
/// θ has rank ≥ 2: dim 0 is the batch, the rest is one instance. Any float dtype is accepted
/// (computation is in f32, the output has θ's dtype); integer dtypes are an error.
/// Non-contiguous θ is made contiguous (a copy). On a CUDA device (feature `cuda`) a solver
/// with a GPU kernel ([`MapSolver::device_kernel`](crate::MapSolver::device_kernel)) runs
/// there; any other solver, or θ on another device, runs on the CPU, with θ (and in backward
/// the output and its gradient) copied to the host and the result copied back.
///
/// Clones share the noise call counter and the adaptive state; `with_*` methods start fresh.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use imle_runtime::{ImleConfig, ImleLayer, Noise, TopK};
///
/// let layer = ImleLayer::new(TopK::new(2)?, ImleConfig::new(Noise::Gumbel))?;
/// let theta = Var::new(&[[0.1f32, 2.0, 1.0, -1.0]], &Device::Cpu)?;
/// let z = layer.forward(theta.as_tensor())?; // a noisy top-2 mask
/// assert_eq!(z.sum_all()?.to_scalar::<f32>()?, 2.0);
/// let grads = (z * Tensor::new(&[[1f32, 0., 0., 0.]], &Device::Cpu)?)?.sum_all()?.backward()?;
/// assert_eq!(grads.get(&theta).unwrap().dims(), &[1, 4]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub struct ImleLayer<S: Solver> {
    solver: Arc<S>,
    config: ImleConfig,
    state: Arc<LayerState>,
}

impl<S: Solver> Clone for ImleLayer<S> {
    fn clone(&self) -> Self {
        ImleLayer {
            solver: self.solver.clone(),
            config: self.config,
            state: self.state.clone(),
        }
    }
}

impl<S: Solver> std::fmt::Debug for ImleLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImleLayer")
            .field("solver", &self.solver.name())
            .field("config", &self.config)
            .finish()
    }
}

impl<S: Solver + ConfiguredSolver + Default> Default for ImleLayer<S> {
    /// The layer with the configuration its solver type carries.
    fn default() -> Self {
        Self::configured(S::default())
    }
}

impl<S: Solver + ConfiguredSolver> ImleLayer<S> {
    /// A layer around `solver` with the configuration its type carries (for solvers that hold
    /// data, such as a graph).
    ///
    /// ```
    /// use imle_runtime::{ConfiguredSolver, ImleConfig, ImleLayer, MapSolver, Noise};
    /// /// Picks the cheapest of a fixed menu of options (the context), one-hot.
    /// struct Menu { prices: Vec<f32> }
    /// impl MapSolver for Menu {
    ///     type Scratch = ();
    ///     fn name(&self) -> &str { "menu" }
    ///     fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> candle_core::Result<()> {
    ///         let score = |i: usize| theta[i] - self.prices[i];
    ///         let best = (0..theta.len()).fold(0, |b, i| if score(i) > score(b) { i } else { b });
    ///         z[best] = 1.0;
    ///         Ok(())
    ///     }
    /// }
    /// impl ConfiguredSolver for Menu {
    ///     const CONFIG: ImleConfig = ImleConfig::new(Noise::Gumbel);
    /// }
    /// let layer = ImleLayer::configured(Menu { prices: vec![1.0, 0.0] });
    /// assert_eq!(layer.config().noise, Noise::Gumbel);
    /// ```
    pub fn configured(solver: S) -> Self {
        // CONFIG was checked when the solver type was generated; a hand-written bad constant
        // is reported by the first forward pass, which validates the configuration.
        Self::from_parts(solver, S::CONFIG)
    }
}

/// The training and evaluation behaviours.
impl<S: Solver> ModuleT for ImleLayer<S> {
    /// `train = true`: perturb-and-MAP with the I-MLE gradient ([`ImleLayer::forward`]);
    /// `false`: `MAP(θ)` without noise or gradient ([`ImleLayer::map`]).
    fn forward_t(&self, theta: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            self.forward(theta)
        } else {
            self.map(theta)
        }
    }
}

/// Builds a `with_*` method that changes one config field through [`ImleConfig`]'s validated
/// setter and starts a fresh layer state.
macro_rules! checked_setter {
    ($(#[$doc:meta])* $name:ident($ty:ty)) => {
        $(#[$doc])*
        pub fn $name(self, value: $ty) -> Result<Self> {
            let config = self.config.$name(value)?;
            Ok(Self::from_parts_arc(self.solver, config))
        }
    };
}

/// Like [`checked_setter!`] for setters that cannot fail.
macro_rules! plain_setter {
    ($(#[$doc:meta])* $name:ident($ty:ty)) => {
        $(#[$doc])*
        pub fn $name(self, value: $ty) -> Self {
            let config = self.config.$name(value);
            Self::from_parts_arc(self.solver, config)
        }
    };
}

impl<S: Solver> ImleLayer<S> {
    /// A layer over `solver` with a checked configuration.
    ///
    /// ```
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let mut bad = ImleConfig::new(Noise::Gumbel);
    /// bad.lambda = f32::NAN;
    /// assert!(ImleLayer::new(Argmax, bad).is_err());
    /// ```
    pub fn new(solver: S, config: ImleConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::from_parts(solver, config))
    }

    fn from_parts(solver: S, config: ImleConfig) -> Self {
        Self::from_parts_arc(Arc::new(solver), config)
    }

    fn from_parts_arc(solver: Arc<S>, config: ImleConfig) -> Self {
        let state = Arc::new(LayerState::new(&config));
        ImleLayer {
            solver,
            config,
            state,
        }
    }

    /// The configuration in force.
    ///
    /// ```
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
    /// assert_eq!(layer.config().samples, 1);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn config(&self) -> &ImleConfig {
        &self.config
    }

    /// The solver.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, ImleLayer, Noise, TopK};
    /// let layer = ImleLayer::new(TopK::new(3)?, ImleConfig::new(Noise::Gumbel))?;
    /// assert_eq!(layer.solver().k(), 3);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn solver(&self) -> &S {
        &self.solver
    }

    /// The current λ: the configured one, or for [`Target::Adaptive`] the current `β`
    /// (the per-instance λ is `β·‖θ‖/‖g‖`). Handy to log during training.
    ///
    /// ```
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel).with_lambda(3.0)?)?;
    /// assert_eq!(layer.lambda(), 3.0);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn lambda(&self) -> f32 {
        self.state.lambda(&self.config)
    }

    /// How many entries of the last backward pass's gradient terms were non-zero: the mean,
    /// over every (instance, draw) row, of the number of entries where
    /// `MAP(θ + τε) ≠ MAP(θ' + τ'ε)`. Every target counts it; 0 before the first backward.
    ///
    /// **0 means the gradient was exactly zero**: the target `θ'` never changed the MAP.
    /// With [`Target::Perturb`] that usually means λ is too small for the scale of
    /// `∂L/∂z` (a mean-reduced loss; see [`Target::Perturb`]). Print it in the training loop:
    ///
    /// ```
    /// use candle_core::{Device, Tensor, Var};
    /// use imle_runtime::{ImleConfig, ImleLayer, Noise, TopK};
    /// let layer = ImleLayer::new(TopK::new(2)?, ImleConfig::new(Noise::Gumbel))?;
    /// assert_eq!(layer.gradient_density(), 0.0); // no backward yet
    /// let theta = Var::new(&[[0.5f32, 0.4, 0.3, 0.2]], &Device::Cpu)?;
    /// let y = Tensor::new(&[[0f32, 0.0, 1.0, 1.0]], &Device::Cpu)?;
    /// let loss = (layer.forward(theta.as_tensor())? - y)?.sqr()?.mean_all()?; // a mean: g = ±1/4
    /// loss.backward()?;
    /// println!("non-zero gradient entries per sample: {}", layer.gradient_density());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn gradient_density(&self) -> f32 {
        self.state.adaptation().last_density
    }

    /// The running mean (momentum 0.9: `d̄ ← 0.9·d̄ + 0.1·d`) of
    /// [`gradient_density`](Self::gradient_density) over the backward passes so far, for
    /// every target; it is what [`Target::Adaptive`] steers towards its `target_density`.
    ///
    /// ```
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
    /// assert_eq!(layer.running_gradient_density(), 0.0);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn running_gradient_density(&self) -> f32 {
        self.state.adaptation().density
    }

    checked_setter!(
        /// Sets λ (for the adaptive target, the initial β), validated.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
        /// assert!(layer.clone().with_lambda(0.0).is_err());
        /// assert_eq!(layer.with_lambda(20.0)?.lambda(), 20.0);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_lambda(f32)
    );
    checked_setter!(
        /// Sets α in `θ' = α·θ − λ·g`, validated.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_alpha(0.5)?;
        /// assert_eq!(layer.config().alpha, 0.5);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_alpha(f32)
    );
    checked_setter!(
        /// Sets the number of samples S, validated (≥ 1).
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
        /// assert!(layer.with_samples(0).is_err());
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_samples(u32)
    );
    checked_setter!(
        /// Sets the marginal draws M per gradient term, validated (≥ 1).
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_marginal_samples(4)?;
        /// assert_eq!(layer.config().marginal_samples, 4);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_marginal_samples(u32)
    );
    checked_setter!(
        /// Sets the forward temperature τ, validated.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_tau(0.5)?;
        /// assert_eq!(layer.config().tau, 0.5);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_tau(f32)
    );
    checked_setter!(
        /// Sets the target temperature τ', validated.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_target_tau(2.0)?;
        /// assert_eq!(layer.config().target_tau, 2.0);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_target_tau(f32)
    );
    checked_setter!(
        /// Sets the target distribution, validated.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise, Target};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_target(Target::ADAPTIVE)?;
        /// assert_eq!(layer.config().target, Target::ADAPTIVE);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_target(Target)
    );
    checked_setter!(
        /// Sets the noise distribution, validated.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_noise(Noise::Gaussian)?;
        /// assert_eq!(layer.config().noise, Noise::Gaussian);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_noise(Noise)
    );
    plain_setter!(
        /// Turns the central-difference gradient on or off.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_symmetric(true);
        /// assert!(layer.config().symmetric);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_symmetric(bool)
    );
    plain_setter!(
        /// Turns dividing the gradient by λ on or off.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_scale_by_lambda(true);
        /// assert!(layer.config().scale_by_lambda);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_scale_by_lambda(bool)
    );
    plain_setter!(
        /// Sets maximisation or minimisation.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise, Sense};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_sense(Sense::Minimize);
        /// assert_eq!(layer.config().sense, Sense::Minimize);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_sense(Sense)
    );
    plain_setter!(
        /// Sets the sample layout of the training output.
        ///
        /// ```
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise, Reduce};
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?.with_reduce(Reduce::Mean);
        /// assert_eq!(layer.config().reduce, Reduce::Mean);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_reduce(Reduce)
    );
    plain_setter!(
        /// Sets the seed; the noise sequence restarts (same seed, same calls → identical
        /// outputs and gradients, whatever the thread count).
        ///
        /// ```
        /// use candle_core::{Device, Tensor};
        /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
        /// let theta = Tensor::zeros((4, 8), candle_core::DType::F32, &Device::Cpu)?;
        /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
        /// let a = layer.clone().with_seed(7).forward(&theta)?.to_vec2::<f32>()?;
        /// let b = layer.with_seed(7).forward(&theta)?.to_vec2::<f32>()?;
        /// assert_eq!(a, b);
        /// # Ok::<(), candle_core::Error>(())
        /// ```
        with_seed(u64)
    );

    /// Training forward: perturb-and-MAP, differentiable with the I-MLE gradient.
    /// Output: θ's shape for one sample or [`Reduce::Mean`]; `[B·S, …]` (row `b·S + s`)
    /// otherwise.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::{ImleConfig, ImleLayer, Noise, TopK};
    /// let layer = ImleLayer::new(TopK::new(1)?, ImleConfig::new(Noise::Gumbel).with_samples(3)?)?;
    /// let theta = Tensor::new(&[[0f32, 1.0], [1.0, 0.0]], &Device::Cpu)?;
    /// assert_eq!(layer.forward(&theta)?.dims(), &[6, 2]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn forward(&self, theta: &Tensor) -> Result<Tensor> {
        self.train_forward(theta, None)
    }

    /// Training forward with the noise given explicitly (for tests and cross-checks): an
    /// unscaled noise tensor of `B·S·M` rows of θ's instance shape, rows ordered `b·(S·M) + d`
    /// with draw `d = m·S + s` (the forward uses `m = 0`, the backward's extra marginal draws
    /// the rest). The configured noise distribution is then not used.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::None))?;
    /// let theta = Tensor::new(&[[1f32, 0.0]], &Device::Cpu)?;
    /// let noise = Tensor::new(&[[0f32, 2.0]], &Device::Cpu)?;
    /// let z = layer.forward_with_noise(&theta, &noise)?;
    /// assert_eq!(z.to_vec2::<f32>()?, vec![vec![0.0, 1.0]]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn forward_with_noise(&self, theta: &Tensor, noise: &Tensor) -> Result<Tensor> {
        self.train_forward(theta, Some(noise))
    }

    /// Evaluation: `MAP(θ)` in θ's shape, with no noise and no gradient (whatever `samples`).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::{ImleConfig, ImleLayer, Noise, TopK};
    /// let layer = ImleLayer::new(TopK::new(1)?, ImleConfig::new(Noise::Gumbel))?;
    /// let theta = Tensor::new(&[[0f32, 1.0, 0.5]], &Device::Cpu)?;
    /// assert_eq!(layer.map(&theta)?.to_vec2::<f32>()?, vec![vec![0.0, 1.0, 0.0]]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn map(&self, theta: &Tensor) -> Result<Tensor> {
        let dims = dims_of(theta)?;
        self.solver.check_instance(&dims.instance)?;
        op::map(&*self.solver, &dims, theta)
    }

    /// A `Module` view that trains (for `candle_nn::seq()` and other `Module`-only places).
    ///
    /// ```
    /// use candle_core::{Device, Module, Tensor};
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
    /// let z = layer.train_mode().forward(&Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu)?)?;
    /// assert_eq!(z.dims(), &[2, 3]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn train_mode(&self) -> Training<'_, S> {
        Training(self)
    }

    /// A `Module` view that evaluates `MAP(θ)`.
    ///
    /// ```
    /// use candle_core::{Device, Module, Tensor};
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
    /// let z = layer.eval_mode().forward(&Tensor::new(&[[0f32, 3.0, 1.0]], &Device::Cpu)?)?;
    /// assert_eq!(z.to_vec2::<f32>()?, vec![vec![0.0, 1.0, 0.0]]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn eval_mode(&self) -> Evaluation<'_, S> {
        Evaluation(self)
    }

    /// The straight-through estimator over this layer's solver: the value of
    /// [`forward_t(θ, train)`](ModuleT::forward_t) (perturb-and-MAP when `train`, `MAP(θ)`
    /// otherwise), with the identity as its Jacobian in the backward pass: `∂L/∂θ = σ·∂L/∂z`
    /// (σ = +1 to maximise, −1 for [`Sense::Minimize`], the identity of the maximising form on
    /// −θ), summed over the samples of an instance when the output has `[B·S, …]` rows.
    ///
    /// The biased baseline that the I-MLE paper and PyEPO compare with (Bengio et al., 2013,
    /// applied to a MAP solver): the solver is called once per sample in the forward pass and
    /// never in the backward pass. Output shape and dtype as [`ImleLayer::forward`] (training)
    /// or [`ImleLayer::map`] (evaluation). Errors: those of the call it wraps.
    ///
    /// ```
    /// use candle_core::{Device, Tensor, Var};
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::None))?;
    /// let theta = Var::new(&[[1f32, 2.0]], &Device::Cpu)?;
    /// let z = layer.straight_through(theta.as_tensor(), false)?; // MAP(θ) = [0, 1]
    /// let g = Tensor::new(&[[3f32, -1.0]], &Device::Cpu)?;
    /// let grads = (z * &g)?.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&theta).unwrap().to_vec2::<f32>()?, vec![vec![3.0, -1.0]]); // = g
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn straight_through(&self, theta: &Tensor, train: bool) -> Result<Tensor> {
        let hard = self.forward_t(theta, train)?.detach();
        let rows = if hard.dim(0)? == theta.dim(0)? {
            theta.clone()
        } else {
            self.repeat_for_samples(theta)?
        };
        let signed = (rows * f64::from(self.config.sense.sign()))?;
        // Zero in value, the identity (times σ) in gradient.
        hard + (&signed - signed.detach())?
    }

    /// Repeats a `[B, …]` tensor (targets, labels) to line up with the training output of
    /// [`forward`](ImleLayer::forward) (and `forward_t(θ, true)`): `[B·S, …]` with row
    /// `b·S + s` = row `b`; unchanged for one sample or [`Reduce::Mean`]. Outputs with one
    /// row per instance ([`map`](ImleLayer::map), `straight_through(θ, false)`) need no
    /// repeat: this always repeats, whichever call made the output.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
    /// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel).with_samples(2)?)?;
    /// let labels = Tensor::new(&[[1f32], [2.0]], &Device::Cpu)?;
    /// let repeated = layer.repeat_for_samples(&labels)?;
    /// assert_eq!(repeated.to_vec2::<f32>()?, vec![vec![1.0], vec![1.0], vec![2.0], vec![2.0]]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn repeat_for_samples(&self, tensor: &Tensor) -> Result<Tensor> {
        match self.config.reduce {
            Reduce::Mean => Ok(tensor.clone()),
            Reduce::None => repeat_samples(tensor, self.config.samples as usize),
        }
    }

    fn train_forward(&self, theta: &Tensor, noise: Option<&Tensor>) -> Result<Tensor> {
        self.config.validate()?;
        let dims = dims_of(theta)?;
        self.solver.check_instance(&dims.instance)?;
        if let Some(noise) = noise {
            self.check_noise_shape(noise, &dims)?;
        }
        let key = NoiseKey::new(self.config.seed, self.state.next_call());
        op::train(
            self.solver.clone(),
            self.config,
            dims,
            key,
            theta,
            noise,
            self.state.clone(),
        )
    }

    /// Checks the shape of explicit noise: `B·S·M` rows of the instance shape (its values are
    /// checked where they are read: on the host, or by the CUDA kernels).
    fn check_noise_shape(&self, noise: &Tensor, dims: &Dims) -> Result<()> {
        let rows = dims.batch * self.config.draws() as usize;
        if noise.elem_count() != rows * dims.n || noise.dims().get(1..) != Some(&dims.instance) {
            return Err(input_error(format!(
                "explicit noise must have shape [{rows}, {:?}...] (B·S·M rows of the instance \
                 shape), got {:?}",
                dims.instance,
                noise.dims()
            )));
        }
        Ok(())
    }
}

/// Checks θ's dtype, rank and sizes; its batch size, instance shape and instance size.
fn dims_of(theta: &Tensor) -> Result<Dims> {
    let dtype = theta.dtype();
    if !matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
        return Err(input_error(format!(
            "θ must be a float tensor (f32, f64, f16 or bf16), got {dtype:?}"
        )));
    }
    let (batch, instance) = match theta.dims() {
        [batch, instance @ ..] if !instance.is_empty() => (*batch, instance.to_vec()),
        dims => {
            return Err(input_error(format!(
                "θ must have rank >= 2 (batch, then the instance), got shape {dims:?}"
            )));
        }
    };
    let n = instance.iter().product::<usize>();
    if batch == 0 {
        return Err(input_error("θ has an empty batch (dim 0 is 0)"));
    }
    if batch > u32::MAX as usize || n > u32::MAX as usize {
        return Err(input_error(format!(
            "θ is too large for the noise counters (batch and instance size must be < 2^32, \
             got shape {:?})",
            theta.dims()
        )));
    }
    if n == 0 {
        return Err(input_error(format!(
            "θ's instances are empty (shape {:?})",
            theta.dims()
        )));
    }
    Ok(Dims { batch, instance, n })
}

/// Repeats each row of a `[B, …]` tensor `samples` times: `[B·S, …]`, row `b·S + s` = row `b`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let t = Tensor::new(&[[1u32, 2], [3, 4]], &Device::Cpu)?;
/// let r = imle_runtime::repeat_samples(&t, 2)?;
/// assert_eq!(r.to_vec2::<u32>()?, vec![vec![1, 2], vec![1, 2], vec![3, 4], vec![3, 4]]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn repeat_samples(tensor: &Tensor, samples: usize) -> Result<Tensor> {
    if samples == 1 {
        return Ok(tensor.clone());
    }
    let dims = tensor.dims();
    let Some((&batch, rest)) = dims.split_first() else {
        return Err(input_error("repeat_samples needs a tensor of rank >= 1"));
    };
    let mut expanded = vec![batch, samples];
    expanded.extend_from_slice(rest);
    let mut flat = vec![batch * samples];
    flat.extend_from_slice(rest);
    tensor
        .unsqueeze(1)?
        .broadcast_as(expanded)?
        .contiguous()?
        .reshape(flat)
}

/// The training [`Module`] view of a layer (see [`ImleLayer::train_mode`]).
///
/// ```
/// use candle_core::{Device, Module, Tensor};
/// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
/// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
/// let view = layer.train_mode();
/// assert_eq!(view.forward(&Tensor::zeros((1, 2), candle_core::DType::F32, &Device::Cpu)?)?.dims(), &[1, 2]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub struct Training<'a, S: Solver>(&'a ImleLayer<S>);

impl<S: Solver> Module for Training<'_, S> {
    fn forward(&self, theta: &Tensor) -> Result<Tensor> {
        self.0.forward(theta)
    }
}

/// The evaluation [`Module`] view of a layer (see [`ImleLayer::eval_mode`]).
///
/// ```
/// use candle_core::{Device, Module, Tensor};
/// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise};
/// let layer = ImleLayer::new(Argmax, ImleConfig::new(Noise::Gumbel))?;
/// let z = layer.eval_mode().forward(&Tensor::new(&[[2f32, 1.0]], &Device::Cpu)?)?;
/// assert_eq!(z.to_vec2::<f32>()?, vec![vec![1.0, 0.0]]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub struct Evaluation<'a, S: Solver>(&'a ImleLayer<S>);

impl<S: Solver> Module for Evaluation<'_, S> {
    fn forward(&self, theta: &Tensor) -> Result<Tensor> {
        self.0.map(theta)
    }
}
