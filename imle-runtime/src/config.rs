//! The layer's configuration: every knob of I-MLE in one plain, `const`-constructible value.
//!
//! [`ImleConfig`] is what `#[imle_layer(...)]` emits as a constant, and what a hand-built layer
//! starts from. Setters named `with_*` check their argument and return a `candle_core::Result`;
//! [`ImleConfig::validate`] checks the whole value (the layer calls it on construction).

use crate::error::{config_error, finite, non_negative_finite};
use crate::noise::Noise;
use crate::target::Target;
use candle_core::Result;

/// Which way the **solver** optimises: it maximises `⟨z, θ⟩` or minimises it (a cost, e.g. a
/// shortest path).
///
/// `Sense` declares what the solver already does; it does not turn a maximiser into a
/// minimiser. `Argmax` with `Sense::Minimize` still returns the argmax, and its gradient has
/// the wrong sign. Give `Sense::Minimize` exactly to solvers that minimise (such as
/// [`GridShortestPath`](crate::GridShortestPath)). To minimise with a maximiser, negate θ
/// yourself: `layer.forward(&theta.neg()?)`.
///
/// ```
/// use imle_runtime::{GridShortestPath, ImleConfig, ImleLayer, Neighbourhood, Noise, Sense};
/// let config = ImleConfig::new(Noise::Gumbel).with_sense(Sense::Minimize);
/// let layer = ImleLayer::new(GridShortestPath::new(Neighbourhood::Eight), config)?;
/// assert_eq!(layer.config().sense, Sense::Minimize);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sense {
    /// `z = argmax ⟨z, θ⟩`.
    Maximize,
    /// `z = argmin ⟨z, θ⟩`: exactly the maximising layer applied to `−θ`, noise sign included
    /// (the solver sees `θ − τ·ε`, the gradient's sign is flipped).
    Minimize,
}

impl Sense {
    /// `+1` for maximisation, `−1` for minimisation.
    ///
    /// ```
    /// use imle_runtime::Sense;
    /// assert_eq!(Sense::Minimize.sign(), -1.0);
    /// ```
    pub const fn sign(self) -> f32 {
        match self {
            Sense::Maximize => 1.0,
            Sense::Minimize => -1.0,
        }
    }
}

/// What the training forward returns when `samples > 1`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use imle_runtime::{Argmax, ImleConfig, ImleLayer, Noise, Reduce};
/// let config = ImleConfig::new(Noise::Gumbel).with_samples(8)?;
/// let theta = Tensor::zeros((2, 5), candle_core::DType::F32, &Device::Cpu)?;
/// let all = ImleLayer::new(Argmax, config)?.forward(&theta)?;
/// let mean = ImleLayer::new(Argmax, config.with_reduce(Reduce::Mean))?.forward(&theta)?;
/// assert_eq!((all.dims(), mean.dims()), (&[16, 5][..], &[2, 5][..]));
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// All samples, batch-major: shape `[B·S, …]`, row `b·S + s` (torch-imle's convention).
    None,
    /// The mean over the samples, in θ's shape (PyEPO's convention). The incoming gradient `g`
    /// (with respect to the mean) is used as the target direction of every sample.
    Mean,
}

/// The complete configuration of an I-MLE layer.
///
/// ```
/// use imle_runtime::{ImleConfig, Noise};
/// let config = ImleConfig::new(Noise::SumOfGamma { k: 5.0, terms: 10 })
///     .with_lambda(20.0)?
///     .with_samples(4)?;
/// assert_eq!(config.samples, 4);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImleConfig {
    /// The noise distribution of perturb-and-MAP.
    pub noise: Noise,
    /// The target distribution used by the backward pass.
    pub target: Target,
    /// `λ` (for [`Target::Adaptive`], the initial `β`). Default 10. For [`Target::Perturb`]
    /// its good value depends on the scale of `∂L/∂z`, and so on how the loss is reduced:
    /// see [`Target::Perturb`] for the rule of thumb, and [`Target::Normalized`] for a target
    /// that does not.
    pub lambda: f32,
    /// `α` in `θ' = α·θ − λ·g`. Default 1.
    pub alpha: f32,
    /// Perturb-and-MAP samples `S` per instance. Default 1.
    pub samples: u32,
    /// Noise draws `M` averaged in each gradient term (the first is the forward's). Default 1.
    pub marginal_samples: u32,
    /// Temperature `τ` of the forward noise. Default 1.
    pub tau: f32,
    /// Temperature `τ'` of the noise in the target distribution. Default 1.
    pub target_tau: f32,
    /// Central difference `[MAP(αθ + λg + ε) − MAP(αθ − λg + ε)] / 2`. Default off.
    pub symmetric: bool,
    /// Divide the gradient by `λ` (AIMLE's and PyEPO's habit). Default off, as in torch-imle.
    pub scale_by_lambda: bool,
    /// Maximise or minimise. Default maximise.
    pub sense: Sense,
    /// Sample layout of the training output. Default [`Reduce::None`].
    pub reduce: Reduce,
    /// Seed of the counter-based noise generator. Default 0.
    pub seed: u64,
}

impl ImleConfig {
    /// The defaults (perturb target, λ = 10, α = 1, one sample, τ = τ' = 1, maximise, seed 0)
    /// with the given noise. Usable in `const` items.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// const CONFIG: ImleConfig = ImleConfig::new(Noise::Gumbel);
    /// assert_eq!(CONFIG.lambda, 10.0);
    /// ```
    pub const fn new(noise: Noise) -> Self {
        ImleConfig {
            noise,
            target: Target::Perturb,
            lambda: 10.0,
            alpha: 1.0,
            samples: 1,
            marginal_samples: 1,
            tau: 1.0,
            target_tau: 1.0,
            symmetric: false,
            scale_by_lambda: false,
            sense: Sense::Maximize,
            reduce: Reduce::None,
            seed: 0,
        }
    }

    /// Blackbox differentiation (Vlastelica et al., ICLR 2020) as an I-MLE configuration: no
    /// noise, the target `θ' = θ − λ·g` and the gradient divided by λ, i.e.
    /// `∂L/∂θ = (MAP(θ) − MAP(θ − λ·∂L/∂z)) / λ`. In the cost form of the paper (a minimising
    /// solver with [`Sense::Minimize`], costs c = −θ) this is exactly its
    /// `∇_c = (y(c + λ·∂L/∂y) − y(c)) / λ`: I-MLE with [`Noise::None`] and
    /// `scale_by_lambda` *is* blackbox differentiation. λ must be > 0 and finite (the paper
    /// uses 10–20); every other field keeps its default and can be changed.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// let config = ImleConfig::blackbox(10.0)?;
    /// assert_eq!((config.noise, config.lambda, config.scale_by_lambda), (Noise::None, 10.0, true));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn blackbox(lambda: f32) -> Result<Self> {
        ImleConfig::new(Noise::None)
            .with_scale_by_lambda(true)
            .with_lambda(lambda)
    }

    /// Checks every field; the layer calls this when it is built.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// let mut config = ImleConfig::new(Noise::Gumbel);
    /// config.samples = 0;
    /// assert!(config.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.noise.validate()?;
        self.target.validate(self.lambda)?;
        finite("alpha", self.alpha)?;
        non_negative_finite("tau", self.tau)?;
        non_negative_finite("target_tau", self.target_tau)?;
        if self.samples == 0 {
            return Err(config_error("samples must be at least 1, got 0"));
        }
        if self.marginal_samples == 0 {
            return Err(config_error("marginal_samples must be at least 1, got 0"));
        }
        if self.samples.checked_mul(self.marginal_samples).is_none() {
            return Err(config_error(format!(
                "samples × marginal_samples overflows u32 ({} × {})",
                self.samples, self.marginal_samples
            )));
        }
        Ok(())
    }

    /// Sets `λ` (validated: finite and > 0; for the adaptive target, the initial `β` ≥ 0).
    ///
    /// With [`Target::Perturb`] (the default) λ must match the scale of `∂L/∂z`: a loss
    /// reduced by a mean over `N` entries needs a λ about `N` times larger than the same loss
    /// summed. [`Target::Normalized`] removes that dependence (λ ≈ 1 there).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// assert!(ImleConfig::new(Noise::Gumbel).with_lambda(-1.0).is_err());
    /// ```
    pub fn with_lambda(self, lambda: f32) -> Result<Self> {
        self.checked(|c| c.lambda = lambda)
    }

    /// Sets `α` in `θ' = α·θ − λ·g` (validated: finite).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// let c = ImleConfig::new(Noise::Gumbel).with_alpha(0.5)?;
    /// assert_eq!(c.alpha, 0.5);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_alpha(self, alpha: f32) -> Result<Self> {
        self.checked(|c| c.alpha = alpha)
    }

    /// Sets the number of samples `S` (validated: ≥ 1).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// assert!(ImleConfig::new(Noise::Gumbel).with_samples(0).is_err());
    /// ```
    pub fn with_samples(self, samples: u32) -> Result<Self> {
        self.checked(|c| c.samples = samples)
    }

    /// Sets the number of marginal draws `M` per gradient term (validated: ≥ 1).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// let c = ImleConfig::new(Noise::Gumbel).with_marginal_samples(3)?;
    /// assert_eq!(c.marginal_samples, 3);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_marginal_samples(self, marginal_samples: u32) -> Result<Self> {
        self.checked(|c| c.marginal_samples = marginal_samples)
    }

    /// Sets the forward temperature `τ` (validated: finite, ≥ 0).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// assert!(ImleConfig::new(Noise::Gumbel).with_tau(f32::NAN).is_err());
    /// ```
    pub fn with_tau(self, tau: f32) -> Result<Self> {
        self.checked(|c| c.tau = tau)
    }

    /// Sets the target temperature `τ'` (validated: finite, ≥ 0).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// let c = ImleConfig::new(Noise::Gumbel).with_target_tau(0.0)?;
    /// assert_eq!(c.target_tau, 0.0);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_target_tau(self, target_tau: f32) -> Result<Self> {
        self.checked(|c| c.target_tau = target_tau)
    }

    /// Sets the target distribution (validated).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise, Target};
    /// let c = ImleConfig::new(Noise::Gumbel).with_target(Target::ADAPTIVE)?;
    /// assert_eq!(c.target, Target::ADAPTIVE);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_target(self, target: Target) -> Result<Self> {
        self.checked(|c| c.target = target)
    }

    /// Sets the noise distribution (validated).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// assert!(ImleConfig::new(Noise::Gumbel)
    ///     .with_noise(Noise::SumOfGamma { k: 0.0, terms: 10 })
    ///     .is_err());
    /// ```
    pub fn with_noise(self, noise: Noise) -> Result<Self> {
        self.checked(|c| c.noise = noise)
    }

    /// Turns the central-difference gradient on or off.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// assert!(ImleConfig::new(Noise::Gumbel).with_symmetric(true).symmetric);
    /// ```
    pub const fn with_symmetric(mut self, symmetric: bool) -> Self {
        self.symmetric = symmetric;
        self
    }

    /// Turns dividing the gradient by `λ` on or off.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// assert!(ImleConfig::new(Noise::Gumbel).with_scale_by_lambda(true).scale_by_lambda);
    /// ```
    pub const fn with_scale_by_lambda(mut self, scale_by_lambda: bool) -> Self {
        self.scale_by_lambda = scale_by_lambda;
        self
    }

    /// Declares whether the solver maximises or minimises (it does not change what the solver
    /// does: see [`Sense`]).
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise, Sense};
    /// let c = ImleConfig::new(Noise::Gumbel).with_sense(Sense::Minimize);
    /// assert_eq!(c.sense, Sense::Minimize);
    /// ```
    pub const fn with_sense(mut self, sense: Sense) -> Self {
        self.sense = sense;
        self
    }

    /// Sets the sample layout of the training output.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise, Reduce};
    /// let c = ImleConfig::new(Noise::Gumbel).with_reduce(Reduce::Mean);
    /// assert_eq!(c.reduce, Reduce::Mean);
    /// ```
    pub const fn with_reduce(mut self, reduce: Reduce) -> Self {
        self.reduce = reduce;
        self
    }

    /// Sets the noise seed.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise};
    /// assert_eq!(ImleConfig::new(Noise::Gumbel).with_seed(7).seed, 7);
    /// ```
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Total noise draws per instance in a backward pass, `S·M`.
    pub(crate) fn draws(&self) -> u32 {
        self.samples * self.marginal_samples
    }

    fn checked(mut self, change: impl FnOnce(&mut Self)) -> Result<Self> {
        change(&mut self);
        self.validate()?;
        Ok(self)
    }
}
