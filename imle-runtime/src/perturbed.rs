//! Perturbed optimizers and the perturbed Fenchel-Young loss (Berthet et al., "Learning with
//! Differentiable Perturbed Optimizers", NeurIPS 2020), over any [`MapSolver`].
//!
//! # Formulas
//!
//! Write the problem in its maximising form: `y*(η) = argmax_{y ∈ C} ⟨y, η⟩`, with `η = θ`
//! for [`Sense::Maximize`] and `η = −θ` for [`Sense::Minimize`] (a cost solver; the solver
//! is then called on `−(perturbed η)`, i.e. on costs). With `Z` drawn from a density
//! `∝ exp(−ν(z))` and `m = exp(σZ − σ²/2)` (elementwise):
//!
//! * additive ([`Perturbation::Additive`]): `y_σ(η) = E[y*(η + σZ)]`; the solver sees
//!   `θ + sσZ` (`s` = +1 to maximise, −1 to minimise);
//! * multiplicative ([`Perturbation::Multiplicative`]): `y_σ(η) = E[y*(η ⊙ m)]`, the form of
//!   InferOpt's `PerturbedMultiplicative` (`θ ⊙ exp(εZ − ε²/2)`, `Z ~ N(0, I)`, scaled so that
//!   `E[m] = 1`); the solver sees `θ ⊙ m`, which keeps positive costs positive;
//! * the forward pass returns the Monte-Carlo mean over `S` draws, `(1/S) Σ_s y*(·_s)`.
//!
//! **Jacobian** (Berthet et al., Proposition 3.1: `J_η y_σ = E[y*(η + σZ) ∇ν(Z)ᵀ] / σ`, no
//! symmetry assumed): the backward pass applies its transpose to the incoming gradient `g`,
//!
//! * additive: `∂L/∂θ = s · (1/(σS)) Σ_s ⟨y_s, g⟩ ∇ν(Z_s)`, with `∇ν(z) = z` for Gaussian
//!   `Z` and `∇ν(z) = 1 − exp(−z)` for Gumbel `Z` (`ν(z) = z + e^{−z}`);
//! * multiplicative (Gaussian only): with `v = log|η| + σZ − σ²/2`, `y_σ` is the additive
//!   smoothing in `log|η|` with `N(−σ²/2, σ²)` noise, so `∂y_σ/∂log|η_i| = E[y* Z_i]/σ` and,
//!   by `d log|η_i|/dη_i = 1/η_i` and `η = sθ`, `∂L/∂θ_i = (1/(σS θ_i)) Σ_s ⟨y_s, g⟩ Z_{s,i}`
//!   (the sense cancels; InferOpt's rule). It is undefined at `θ_i = 0`: backward errors there.
//!
//! **Fenchel-Young loss** ([`PerturbedOptimizer::fenchel_young_loss`]):
//! `L(θ; y) = F_σ(η) + Ω(y) − ⟨η, y⟩` with `F_σ(η) = E[max_{y' ∈ C} ⟨y', η + σZ⟩]` and
//! `Ω = F_σ*`; its gradient is `∇_η L = y_σ(η) − y`, so `∇_θ L = s·(y_σ(θ) − y)`: `y_σ − y`
//! to maximise, `y − y_σ` to minimise (PyEPO's `perturbedFenchelYoung`, whose backward
//! returns `w − e_sol` for minimisation). No Jacobian is needed.
//!
//! **Noises.** The score `∇ν` needs a density known in closed form: Gaussian and Gumbel are
//! supported (Gaussian only for the multiplicative form, whose `−σ²/2` normalisation is the
//! Gaussian one). [`Noise::SumOfGamma`] has no closed-form density and [`Noise::None`]
//! gives no smoothing; both are rejected.
//!
//! Noise is counter-based ([`fill_instance`]): draw `s` of instance `b` is stream `s` of
//! instance `b` under `NoiseKey::new(seed, call)`, `call` counting the optimizer's calls
//! ([`forward`](PerturbedOptimizer::forward) and the loss share the counter), so results
//! are reproducible and independent of the thread count. The forward pass stores its
//! `S·B·d` draws for the backward pass.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use imle_runtime::perturbed::{PerturbedConfig, PerturbedOptimizer};
//! use imle_runtime::{Argmax, Noise, loss::Reduction};
//!
//! // With Gumbel noise, the perturbed argmax is softmax(θ/σ).
//! let optimizer = PerturbedOptimizer::new(Argmax, PerturbedConfig::new(Noise::Gumbel, 1.0, 2000))?;
//! let theta = Var::new(&[[2f32, 0.0, 0.0]], &Device::Cpu)?;
//! let y = optimizer.forward(theta.as_tensor())?.to_vec2::<f32>()?;
//! let softmax0 = 2f32.exp() / (2f32.exp() + 2.0);
//! assert!((y[0][0] - softmax0).abs() < 0.05, "{y:?}");
//!
//! // The Fenchel-Young loss towards a target: gradient y_σ(θ) − y.
//! let target = Tensor::new(&[[0f32, 1.0, 0.0]], &Device::Cpu)?;
//! let loss = optimizer.fenchel_young_loss(theta.as_tensor(), &target, Reduction::Sum)?;
//! let grad = loss.backward()?.get(&theta).unwrap().to_vec2::<f32>()?;
//! assert!(grad[0][1] < 0.0 && grad[0][0] > 0.0); // raise θ₁, lower θ₀
//! # Ok::<(), candle_core::Error>(())
//! ```

use crate::config::Sense;
use crate::error::{config_error, input_error};
use crate::host::{check_finite, cpu_f32, with_cpu_f32};
use crate::loss::Reduction;
use crate::noise::{Noise, NoiseKey, fill_instance};
use crate::plumbing::{Dims, Solver, min_rows};
use crate::solver::MapSolver;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// How the noise enters the solver's input (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perturbation {
    /// `η + σZ` (Berthet et al.); the solver sees `θ + sσZ`.
    Additive,
    /// `η ⊙ exp(σZ − σ²/2)` with Gaussian `Z` (InferOpt's `PerturbedMultiplicative`); the
    /// solver sees `θ ⊙ exp(σZ − σ²/2)`, so positive costs stay positive.
    Multiplicative,
}

/// The configuration of a [`PerturbedOptimizer`]; checked by [`validate`](Self::validate).
///
/// ```
/// use imle_runtime::perturbed::{PerturbedConfig, Perturbation};
/// use imle_runtime::{Noise, Sense};
/// let config = PerturbedConfig::new(Noise::Gaussian, 0.5, 10)
///     .with_perturbation(Perturbation::Multiplicative)
///     .with_sense(Sense::Minimize)
///     .with_seed(7);
/// assert!(config.validate().is_ok());
/// assert!(PerturbedConfig::new(Noise::Gaussian, 0.0, 10).validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerturbedConfig {
    /// The distribution of `Z`: [`Noise::Gaussian`] or [`Noise::Gumbel`] (additive only).
    pub noise: Noise,
    /// The noise scale σ (> 0, finite).
    pub sigma: f32,
    /// The number of Monte-Carlo samples S per instance (≥ 1).
    pub samples: u32,
    /// Additive or multiplicative perturbation.
    pub perturbation: Perturbation,
    /// Whether the solver maximises ⟨y, θ⟩ or minimises it (a cost solver).
    pub sense: Sense,
    /// The seed of the noise.
    pub seed: u64,
}

impl PerturbedConfig {
    /// The defaults: Gaussian noise (the noise of Berthet et al., PyEPO and InferOpt, and the
    /// only one the multiplicative form accepts), σ = 1, one sample, additive,
    /// [`Sense::Maximize`], seed 0. A `const`, so a configuration can be written as
    /// `PerturbedConfig { sigma: 0.5, ..PerturbedConfig::DEFAULT }` in a constant (what
    /// `#[imle_layer(estimator = "perturbed")]` emits).
    ///
    /// ```
    /// use imle_runtime::perturbed::PerturbedConfig;
    /// const HALF: PerturbedConfig = PerturbedConfig { sigma: 0.5, ..PerturbedConfig::DEFAULT };
    /// assert!(HALF.validate().is_ok());
    /// assert_eq!(PerturbedConfig::default(), PerturbedConfig::DEFAULT);
    /// ```
    pub const DEFAULT: PerturbedConfig = PerturbedConfig::new(Noise::Gaussian, 1.0, 1);

    /// `noise`, σ and S; additive, [`Sense::Maximize`], seed 0.
    #[must_use]
    pub const fn new(noise: Noise, sigma: f32, samples: u32) -> Self {
        PerturbedConfig {
            noise,
            sigma,
            samples,
            perturbation: Perturbation::Additive,
            sense: Sense::Maximize,
            seed: 0,
        }
    }

    /// Sets the perturbation.
    #[must_use]
    pub const fn with_perturbation(mut self, perturbation: Perturbation) -> Self {
        self.perturbation = perturbation;
        self
    }

    /// Sets the sense.
    #[must_use]
    pub const fn with_sense(mut self, sense: Sense) -> Self {
        self.sense = sense;
        self
    }

    /// Sets the seed.
    #[must_use]
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks σ (> 0, finite), S (≥ 1) and the noise: Gaussian, or Gumbel with the additive
    /// perturbation. The gradient uses the noise's score `∇ν(z)` (`−∇ log density`), which
    /// Sum-of-Gamma does not have in closed form.
    pub fn validate(&self) -> Result<()> {
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(config_error(format!(
                "perturbed optimizer: sigma must be positive and finite, got {}",
                self.sigma
            )));
        }
        if self.samples == 0 {
            return Err(config_error(
                "perturbed optimizer: samples must be at least 1",
            ));
        }
        match (self.noise, self.perturbation) {
            (Noise::Gaussian, _) | (Noise::Gumbel, Perturbation::Additive) => Ok(()),
            (Noise::Gumbel, Perturbation::Multiplicative) => Err(config_error(
                "perturbed optimizer: the multiplicative perturbation θ ⊙ exp(σZ − σ²/2) needs \
                 Gaussian noise (its −σ²/2 makes E[exp(σZ − σ²/2)] = 1 only for Gaussian Z)",
            )),
            (noise, _) => Err(config_error(format!(
                "perturbed optimizer: noise {noise:?} is not supported; the Jacobian estimator \
                 needs the score ∇ log density of the noise in closed form, known for \
                 Gaussian and Gumbel noise only (and None gives no smoothing)"
            ))),
        }
    }
}

impl Default for PerturbedConfig {
    /// [`PerturbedConfig::DEFAULT`].
    fn default() -> Self {
        PerturbedConfig::DEFAULT
    }
}

/// A solver type that carries the configuration of its perturbed optimizer: what
/// `#[imle_layer(estimator = "perturbed")]` generates (the counterpart of
/// [`ConfiguredSolver`](crate::ConfiguredSolver) for [`ImleLayer`](crate::ImleLayer)). It
/// gives the optimizer [`Default`] (when the solver is `Default`) and
/// [`PerturbedOptimizer::configured`].
///
/// ```
/// use imle_runtime::perturbed::{ConfiguredPerturbed, PerturbedConfig, PerturbedOptimizer};
/// use imle_runtime::{MapSolver, Noise};
///
/// #[derive(Default)]
/// struct Pick;
/// impl MapSolver for Pick {
///     type Scratch = ();
///     fn name(&self) -> &str { "pick" }
///     fn solve(&self, t: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> candle_core::Result<()> {
///         z[(0..t.len()).fold(0, |b, i| if t[i] > t[b] { i } else { b })] = 1.0;
///         Ok(())
///     }
/// }
/// impl ConfiguredPerturbed for Pick {
///     const PERTURBED_CONFIG: PerturbedConfig = PerturbedConfig::new(Noise::Gumbel, 0.5, 8);
/// }
/// let optimizer = PerturbedOptimizer::<Pick>::default();
/// assert_eq!(optimizer.config().samples, 8);
/// ```
pub trait ConfiguredPerturbed {
    /// The configuration the optimizer starts from (checked when the type was generated).
    const PERTURBED_CONFIG: PerturbedConfig;
}

/// A perturbed optimizer over a [`MapSolver`]: `θ [B, d] ↦ y_σ(θ) [B, d]`, differentiable
/// with the Monte-Carlo Jacobian of Berthet et al.; see the [module docs](self). θ may also
/// be `[B, instance…]` (a grid `[B, H, W]` for [`GridShortestPath`](crate::GridShortestPath)):
/// the solver sees each instance in its shape, as in [`ImleLayer`](crate::ImleLayer).
pub struct PerturbedOptimizer<S: MapSolver> {
    solver: Arc<S>,
    config: PerturbedConfig,
    calls: Arc<AtomicU64>,
}

impl<S: MapSolver> Clone for PerturbedOptimizer<S> {
    /// Clones share the call counter (as layer clones do).
    fn clone(&self) -> Self {
        PerturbedOptimizer {
            solver: self.solver.clone(),
            config: self.config,
            calls: self.calls.clone(),
        }
    }
}

/// One call's shapes, key and samples: what both ops keep.
struct Draws {
    batch: usize,
    n: usize,
    samples: usize,
    /// Unscaled noise, rows `b·S + s`.
    noise: Vec<f32>,
    /// Solver inputs, rows `b·S + s` (kept for the loss value).
    inputs: Vec<f32>,
    /// Solutions, rows `b·S + s`.
    solutions: Vec<f32>,
}

impl<S: MapSolver + ConfiguredPerturbed + Default> Default for PerturbedOptimizer<S> {
    /// The optimizer with the configuration its solver type carries.
    fn default() -> Self {
        Self::configured(S::default())
    }
}

impl<S: MapSolver + ConfiguredPerturbed> PerturbedOptimizer<S> {
    /// An optimizer around `solver` with the configuration its type carries (for solvers
    /// that hold data). Not validated here: the constant was checked when the type was
    /// generated, and every call validates the configuration again.
    pub fn configured(solver: S) -> Self {
        Self::from_arc(Arc::new(solver), S::PERTURBED_CONFIG)
    }
}

impl<S: MapSolver> PerturbedOptimizer<S> {
    /// An optimizer over `solver`; errors on an invalid `config` (see
    /// [`PerturbedConfig::validate`]).
    pub fn new(solver: S, config: PerturbedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::from_arc(Arc::new(solver), config))
    }

    fn from_arc(solver: Arc<S>, config: PerturbedConfig) -> Self {
        PerturbedOptimizer {
            solver,
            config,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same solver with another configuration, validated; the noise sequence restarts
    /// (a fresh call counter), as the layer's `with_*` methods do.
    ///
    /// ```
    /// use imle_runtime::perturbed::{PerturbedConfig, PerturbedOptimizer};
    /// use imle_runtime::{Argmax, Noise};
    /// let optimizer = PerturbedOptimizer::new(Argmax, PerturbedConfig::DEFAULT)?;
    /// let tuned = optimizer.clone().with_config(optimizer.config().with_seed(7))?;
    /// assert_eq!(tuned.config().seed, 7);
    /// assert!(optimizer.with_config(PerturbedConfig { sigma: 0.0, ..PerturbedConfig::DEFAULT }).is_err());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_config(self, config: PerturbedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::from_arc(self.solver, config))
    }

    /// The configuration.
    pub fn config(&self) -> &PerturbedConfig {
        &self.config
    }

    /// The solver.
    pub fn solver(&self) -> &S {
        &self.solver
    }

    /// `y_σ(θ)`: the mean over S samples of the solver's solutions on perturbed `θ`, in θ's
    /// shape (`[B, d]` or `[B, instance…]`), dtype and device (solved on the CPU),
    /// differentiable w.r.t. θ.
    ///
    /// # Errors
    /// θ of rank < 2, empty, non-finite or not a float; a solver that rejects the instance
    /// shape or θ, fails, or writes non-finite values; a perturbed input that overflows.
    pub fn forward(&self, theta: &Tensor) -> Result<Tensor> {
        let (theta32, shapes) = self.prepare(theta)?;
        let op = PerturbedOp {
            optimizer: self.clone(),
            key: self.next_key(),
            shapes,
            saved: OnceLock::new(),
        };
        let y = theta32.apply_op1(op)?;
        y.to_dtype(theta.dtype())?.to_device(theta.device())
    }

    /// The perturbed Fenchel-Young loss between `θ [B, d]` (or `[B, instance…]`) and targets
    /// `y` of θ's shape (e.g. the true solutions), with the gradient `s·(y_σ(θ) − y)` (`y_σ − y` to maximise, `y − y_σ`
    /// to minimise), no Jacobian involved.
    ///
    /// **Value.** Per instance, the Monte-Carlo estimate of `F_σ(η) − ⟨η, y⟩`, i.e.
    /// `s·((1/S) Σ_s ⟨x_s, y*_s⟩ − ⟨θ, y⟩)` with `x_s` the solver's input and `y*_s` its
    /// solution: the Fenchel-Young loss **up to the constant `Ω(y)`** (constant in θ; the
    /// exact `Ω` has no closed form). For the additive form it is the honest estimate of
    /// `F_σ`, whose gradient is `y_σ`; for the multiplicative form it estimates
    /// `E[max ⟨y', η ⊙ m⟩]`, a surrogate value whose own gradient is not exactly the one
    /// returned (`y_σ − y`, as InferOpt returns). Not the `‖y_σ − y‖²` PyEPO reports.
    ///
    /// **Reduction** of the per-instance losses `[B]`: `None` returns them, `Sum` their sum,
    /// `InstanceMean` their mean, `Mean` the sum divided by `B·d` (the per-entry mean,
    /// as [`hamming`](crate::loss::hamming)'s `Mean`). No gradient flows to `y`.
    ///
    /// # Errors
    /// Those of [`forward`](Self::forward), and `y` not of θ's shape or not finite.
    pub fn fenchel_young_loss(
        &self,
        theta: &Tensor,
        y: &Tensor,
        reduction: Reduction,
    ) -> Result<Tensor> {
        if y.dims() != theta.dims() {
            return Err(input_error(format!(
                "perturbed Fenchel-Young loss: y has shape {:?} but θ has shape {:?}",
                y.dims(),
                theta.dims()
            )));
        }
        let (theta32, shapes) = self.prepare(theta)?;
        let batch = shapes.batch;
        let n = shapes.n;
        let target = y
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        check_finite("the Fenchel-Young target y", &target)?;
        let op = FenchelYoungOp {
            optimizer: self.clone(),
            key: self.next_key(),
            shapes,
            target,
            mean: OnceLock::new(),
        };
        let per_instance = theta32
            .apply_op1(op)?
            .to_dtype(theta.dtype())?
            .to_device(theta.device())?;
        match reduction {
            Reduction::None => Ok(per_instance),
            Reduction::Sum => per_instance.sum_all(),
            Reduction::InstanceMean => per_instance.sum_all()? / batch as f64,
            Reduction::Mean => per_instance.sum_all()? / (batch * n) as f64,
        }
    }

    fn next_key(&self) -> NoiseKey {
        NoiseKey::new(self.config.seed, self.calls.fetch_add(1, Ordering::Relaxed))
    }

    /// Checks θ (float, rank ≥ 2, non-empty, the solver's instance shape) and returns it as a
    /// contiguous f32 CPU tensor, with its shapes.
    fn prepare(&self, theta: &Tensor) -> Result<(Tensor, Dims)> {
        self.config.validate()?;
        if !theta.dtype().is_float() {
            return Err(input_error(format!(
                "perturbed optimizer: θ must be a float tensor, got {:?}",
                theta.dtype()
            )));
        }
        let Some((&batch, instance)) = theta.dims().split_first().filter(|(_, i)| !i.is_empty())
        else {
            return Err(input_error(format!(
                "perturbed optimizer: θ must have rank >= 2 ([B, d], or [B, instance…] such as \
                 [B, H, W]), got shape {:?}",
                theta.dims()
            )));
        };
        let n: usize = instance.iter().product();
        if batch == 0 || n == 0 {
            return Err(input_error(format!(
                "perturbed optimizer: θ is empty (shape {:?})",
                theta.dims()
            )));
        }
        let draws = batch.checked_mul(self.config.samples as usize);
        if draws.is_none_or(|d| d > u32::MAX as usize) || n > u32::MAX as usize {
            return Err(input_error(format!(
                "perturbed optimizer: θ of shape {:?} with {} samples is too large for the \
                 noise counters (< 2^32)",
                theta.dims(),
                self.config.samples
            )));
        }
        Solver::check_instance(&*self.solver, instance)?;
        let theta32 = theta
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .contiguous()?;
        let shapes = Dims {
            batch,
            instance: instance.to_vec(),
            n,
        };
        Ok((theta32, shapes))
    }

    /// Draws the noise and solves the `B·S` perturbed problems.
    fn draw_and_solve(&self, key: NoiseKey, theta: &[f32], shapes: &Dims) -> Result<Draws> {
        let (batch, n) = (shapes.batch, shapes.n);
        check_finite("θ", theta)?;
        Solver::check_theta(&*self.solver, theta, &shapes.instance)?;
        let config = &self.config;
        let samples = config.samples as usize;
        let rows = batch * samples;
        let mut noise = vec![0.0f32; rows * n];
        noise
            .par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_rows(rows, n))
            .for_each(|(row, out)| {
                fill_instance(
                    &config.noise,
                    key,
                    (row / samples) as u32,
                    (row % samples) as u32,
                    out,
                )
            });
        let mut inputs = vec![0.0f32; rows * n];
        let (sigma, sign) = (config.sigma, config.sense.sign());
        inputs
            .par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_rows(rows, n))
            .for_each(|(row, input)| {
                let t = &theta[(row / samples) * n..][..n];
                let z = &noise[row * n..][..n];
                match config.perturbation {
                    // Maximising form η + σZ with η = sθ, handed to the solver as s·(η + σZ).
                    Perturbation::Additive => {
                        for ((x, &t), &z) in input.iter_mut().zip(t).zip(z) {
                            *x = t + sign * sigma * z;
                        }
                    }
                    // s·(η ⊙ m) = θ ⊙ m.
                    Perturbation::Multiplicative => {
                        let shift = 0.5 * sigma * sigma;
                        for ((x, &t), &z) in input.iter_mut().zip(t).zip(z) {
                            *x = t * (sigma * z - shift).exp();
                        }
                    }
                }
            });
        check_finite(
            "the perturbed solver input (θ or σ·Z overflowed f32)",
            &inputs,
        )?;
        let mut solutions = vec![0.0f32; rows * n];
        self.solver.solve_rows(
            &shapes.instance,
            &|row, buffer| buffer.copy_from_slice(&inputs[row * n..][..n]),
            &mut solutions,
        )?;
        Ok(Draws {
            batch,
            n,
            samples,
            noise,
            inputs,
            solutions,
        })
    }
}

impl Draws {
    /// `(1/S) Σ_s y*_s` per instance, summed in a fixed order.
    fn mean(&self) -> Vec<f32> {
        let (n, samples) = (self.n, self.samples);
        let mut out = vec![0.0f32; self.batch * n];
        let inverse = 1.0 / samples as f32;
        out.par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_rows(self.batch, n * samples))
            .for_each(|(b, acc)| {
                for row in self.solutions[b * samples * n..][..samples * n].chunks_exact(n) {
                    acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
                }
                acc.iter_mut().for_each(|a| *a *= inverse);
            });
        out
    }
}

/// The score `∇ν(z) = −∇ log density` of the standard noise.
fn score(noise: Noise, z: f32) -> f32 {
    match noise {
        Noise::Gumbel => 1.0 - (-z).exp(),
        _ => z,
    }
}

struct PerturbedOp<S: MapSolver> {
    optimizer: PerturbedOptimizer<S>,
    key: NoiseKey,
    shapes: Dims,
    saved: OnceLock<Draws>,
}

impl<S: MapSolver> PerturbedOp<S> {
    /// `∂L/∂θ` from the incoming gradient `g [B, d]` (module docs, "Jacobian").
    fn backward(&self, theta: &[f32], g: &[f32]) -> Result<Vec<f32>> {
        let draws = self.saved.get().ok_or_else(|| {
            input_error("perturbed optimizer: backward ran before forward (no saved draws)")
        })?;
        check_finite("the incoming gradient", g)?;
        let config = &self.optimizer.config;
        let (n, samples) = (self.shapes.n, draws.samples);
        if config.perturbation == Perturbation::Multiplicative
            && let Some(i) = theta.iter().position(|&t| t == 0.0)
        {
            return Err(input_error(format!(
                "perturbed optimizer: the multiplicative Jacobian E[y*·Z]/(σθ) is undefined \
                 at θ = 0 (flat index {i})"
            )));
        }
        let mut gradient = vec![0.0f32; self.shapes.batch * n];
        gradient
            .par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_rows(self.shapes.batch, n * samples))
            .for_each(|(b, acc)| {
                let g_b = &g[b * n..][..n];
                for s in 0..samples {
                    let row = b * samples + s;
                    let y = &draws.solutions[row * n..][..n];
                    let z = &draws.noise[row * n..][..n];
                    let weight: f32 = y.iter().zip(g_b).map(|(a, b)| a * b).sum();
                    if weight != 0.0 {
                        for (a, &z) in acc.iter_mut().zip(z) {
                            *a += weight * score(config.noise, z);
                        }
                    }
                }
                let t = &theta[b * n..][..n];
                let scale = 1.0 / (config.sigma * samples as f32);
                match config.perturbation {
                    Perturbation::Additive => {
                        let scale = config.sense.sign() * scale;
                        acc.iter_mut().for_each(|a| *a *= scale);
                    }
                    Perturbation::Multiplicative => {
                        acc.iter_mut().zip(t).for_each(|(a, &t)| *a *= scale / t);
                    }
                }
            });
        Ok(gradient)
    }
}

impl<S: MapSolver> CustomOp1 for PerturbedOp<S> {
    fn name(&self) -> &'static str {
        "perturbed-optimizer"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let theta = cpu_f32(storage, layout)?;
        let draws = self
            .optimizer
            .draw_and_solve(self.key, theta, &self.shapes)?;
        let mean = draws.mean();
        let _ = self.saved.set(draws);
        Ok((CpuStorage::F32(mean), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad_res = grad_res.to_dtype(DType::F32)?;
        let gradient = with_cpu_f32(arg, |theta| {
            with_cpu_f32(&grad_res, |g| self.backward(theta, g))
        })?;
        Tensor::from_vec(gradient, arg.shape(), arg.device()).map(Some)
    }
}

struct FenchelYoungOp<S: MapSolver> {
    optimizer: PerturbedOptimizer<S>,
    key: NoiseKey,
    shapes: Dims,
    /// y, θ's shape, flattened.
    target: Vec<f32>,
    /// y_σ(θ) from the forward pass.
    mean: OnceLock<Vec<f32>>,
}

impl<S: MapSolver> CustomOp1 for FenchelYoungOp<S> {
    fn name(&self) -> &'static str {
        "perturbed-fenchel-young"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let theta = cpu_f32(storage, layout)?;
        let draws = self
            .optimizer
            .draw_and_solve(self.key, theta, &self.shapes)?;
        let (batch, n, samples) = (self.shapes.batch, self.shapes.n, draws.samples);
        let sign = self.optimizer.config.sense.sign();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        // s·((1/S) Σ_s ⟨x_s, y*_s⟩ − ⟨θ, y⟩): F_σ(η) − ⟨η, y⟩, up to Ω(y).
        let losses: Vec<f32> = (0..batch)
            .map(|b| {
                let perturbed_max: f32 = (0..samples)
                    .map(|s| {
                        let row = (b * samples + s) * n;
                        dot(&draws.inputs[row..][..n], &draws.solutions[row..][..n])
                    })
                    .sum::<f32>()
                    / samples as f32;
                let row = b * n;
                sign * (perturbed_max - dot(&theta[row..][..n], &self.target[row..][..n]))
            })
            .collect();
        let _ = self.mean.set(draws.mean());
        Ok((CpuStorage::F32(losses), Shape::from(batch)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let mean = self.mean.get().ok_or_else(|| {
            input_error("perturbed Fenchel-Young loss: backward ran before forward")
        })?;
        let g = grad_res
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        check_finite("the incoming gradient", &g)?;
        let sign = self.optimizer.config.sense.sign();
        let n = self.shapes.n;
        let gradient: Vec<f32> = mean
            .iter()
            .zip(&self.target)
            .enumerate()
            .map(|(i, (&m, &y))| sign * g[i / n] * (m - y))
            .collect();
        Tensor::from_vec(gradient, arg.shape(), arg.device()).map(Some)
    }
}
