//! The layer's configuration: every knob of I-MLE in one plain, `const`-constructible value.
//!
//! [`ImleConfig`] is what `#[imle_layer(...)]` emits as a constant, and what a hand-built layer
//! starts from. Setters named `with_*` check their argument and return a `candle_core::Result`;
//! [`ImleConfig::validate`] checks the whole value (the layer calls it on construction).

use crate::error::config_error;
use crate::noise::Noise;
use candle_core::Result;

/// How the backward pass builds the target distribution's parameters `θ'`.
///
/// ```
/// use imle_runtime::{ImleConfig, Noise, Target};
/// let aimle = ImleConfig::new(Noise::Gumbel)
///     .with_target(Target::Adaptive { target_density: 2.0, step: 1e-3 })?
///     .with_lambda(1.0)?; // the initial β
/// assert!(matches!(aimle.target, Target::Adaptive { .. }));
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Perturbation-based implicit differentiation: `θ' = α·θ − λ·g` (the paper's target and
    /// torch-imle's default).
    ///
    /// The step `λ·g` scales with the incoming gradient `g = ∂L/∂z`, so **λ depends on how the
    /// loss is reduced**: a loss averaged over `B·S·n` entries (candle-nn's losses, `mean_all`)
    /// gives a `g` that is `B·S·n` times smaller than the same loss summed, and the same λ
    /// then almost never changes the MAP (the gradient is zero nearly everywhere). Rule of
    /// thumb: choose λ so that `λ·|g|` is comparable to the spread of θ within an instance —
    /// λ ≈ 1–100 for a loss summed over the batch, times `B·S·n` for a mean. Or use
    /// [`Target::Normalized`], which does not depend on the scale of `g`.
    Perturb,
    /// The perturb target with a step relative to the instance's own scale:
    /// `θ'_b = α·θ_b − λ·(‖θ_b‖/‖g_b‖)·g_b` per gradient row (AIMLE's formula with a fixed `β`
    /// = λ; tf-imle calls the same idea a normalised λ). The step's length is `λ·‖θ_b‖`
    /// whatever the scale of `g`, so the gradient is **invariant to the loss's reduction**
    /// (sum or mean, over any axes) and to any positive rescaling of `g`; λ is a fraction of
    /// `‖θ_b‖` (good values are about 0.1–10; start with 1). A row with `g_b = 0` or `θ_b = 0`
    /// gets no step and no gradient.
    ///
    /// This is the target the README recommends first: it makes the most common mistake (a λ
    /// tuned for a summed loss, used with a mean) impossible, at no cost. [`Target::Perturb`]
    /// stays the default so that configurations copied from the paper and torch-imle mean
    /// what they meant there.
    ///
    /// ```
    /// use imle_runtime::{ImleConfig, Noise, Target};
    /// let config = ImleConfig::new(Noise::Gumbel).with_target(Target::Normalized)?.with_lambda(1.0)?;
    /// assert_eq!(config.target, Target::Normalized);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    Normalized,
    /// Adaptive I-MLE (AIMLE): `θ' = α·θ − λ_b·g` with `λ_b = β·‖θ_b‖/‖g_b‖` per gradient row
    /// (one λ per row, where torch-adaptive-imle takes one per batch), and
    /// `β` moved after every backward pass by `step` towards a gradient with `target_density`
    /// non-zero entries per sample (running mean `d̄ ← 0.9·d̄ + 0.1·d`; `β` clamped at 0).
    /// The config's `lambda` is the initial `β`.
    Adaptive {
        /// Wanted number of non-zero gradient entries per sample (default 1).
        target_density: f32,
        /// How far `β` moves per backward pass (default 1e-4).
        step: f32,
    },
}

impl Target {
    /// The adaptive target with its defaults (density 1, step 1e-4).
    ///
    /// ```
    /// use imle_runtime::Target;
    /// assert_eq!(Target::ADAPTIVE, Target::Adaptive { target_density: 1.0, step: 1e-4 });
    /// ```
    pub const ADAPTIVE: Target = Target::Adaptive {
        target_density: 1.0,
        step: 1e-4,
    };
}

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
        match self.target {
            Target::Perturb | Target::Normalized => positive_finite("lambda", self.lambda)?,
            Target::Adaptive {
                target_density,
                step,
            } => {
                non_negative_finite("lambda (initial beta)", self.lambda)?;
                non_negative_finite("target_density", target_density)?;
                positive_finite("adaptive_step", step)?;
            }
        }
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

fn finite(name: &str, value: f32) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(config_error(format!("{name} must be finite, got {value}")))
    }
}

fn non_negative_finite(name: &str, value: f32) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(config_error(format!(
            "{name} must be finite and >= 0, got {value}"
        )))
    }
}

fn positive_finite(name: &str, value: f32) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(config_error(format!(
            "{name} must be finite and > 0, got {value}"
        )))
    }
}
