//! The target distribution of the backward pass: [`Target`], the λ each gradient row gets,
//! and AIMLE's β with its update, in one place for both backends.
//!
//! The CPU backend calls [`row_lambdas`]; the CUDA backend's `imle_row_lambdas` kernel
//! computes the same `λ·‖θ_b‖/‖g_row‖` on the device (kernels.cu, in this order of
//! operations). Both report the gradient's density to [`Adaptation::record`], which moves β.

use crate::error::{non_negative_finite, positive_finite};
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

    /// Checks the target's parameters together with the configured λ (for AIMLE, the
    /// initial β, which may be 0).
    pub(crate) fn validate(&self, lambda: f32) -> Result<()> {
        match *self {
            Target::Perturb | Target::Normalized => positive_finite("lambda", lambda),
            Target::Adaptive {
                target_density,
                step,
            } => {
                non_negative_finite("lambda (initial beta)", lambda)?;
                non_negative_finite("target_density", target_density)?;
                positive_finite("adaptive_step", step)
            }
        }
    }

    /// Whether each gradient row gets its own λ, `λ·‖θ_b‖/‖g_row‖` (normalized and adaptive
    /// targets), rather than the one fixed λ (perturb).
    pub(crate) fn scales_per_row(&self) -> bool {
        match self {
            Target::Perturb => false,
            Target::Normalized | Target::Adaptive { .. } => true,
        }
    }
}

/// What the backward passes have seen so far, and AIMLE's β: the part of a layer's state the
/// target owns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Adaptation {
    /// AIMLE's β (the configured λ until an adaptive backward moves it).
    pub(crate) beta: f32,
    /// Running mean (momentum 0.9) of the non-zero gradient entries per (instance, draw).
    pub(crate) density: f32,
    /// The same count for the last backward pass alone.
    pub(crate) last_density: f32,
}

impl Adaptation {
    /// Before any backward pass: β is the configured λ, no density seen.
    pub(crate) fn new(lambda: f32) -> Self {
        Adaptation {
            beta: lambda,
            density: 0.0,
            last_density: 0.0,
        }
    }

    /// λ for a pass starting now: the configured one (perturb and normalized targets), or
    /// AIMLE's current β.
    pub(crate) fn lambda(&self, target: Target, configured: f32) -> f32 {
        match target {
            Target::Perturb | Target::Normalized => configured,
            Target::Adaptive { .. } => self.beta,
        }
    }

    /// After a backward pass whose gradient had `density` non-zero entries per (instance,
    /// draw): the last and running densities (every target), and for AIMLE β one `step`
    /// towards `target_density`, clamped at 0.
    pub(crate) fn record(&mut self, density: f32, target: Target) {
        self.last_density = density;
        self.density = 0.9 * self.density + 0.1 * density;
        if let Target::Adaptive {
            target_density,
            step,
        } = target
        {
            if self.density < target_density {
                self.beta += step;
            } else if self.density > target_density {
                self.beta = (self.beta - step).max(0.0);
            }
        }
    }
}

/// λ of each row of the incoming gradient `grad` (`grad_rows` rows of `n`, `grad_rows /
/// batch` per instance): `lambda` itself for [`Target::Perturb`], else `lambda·‖θ_b‖/‖g_row‖`
/// (0 for a zero gradient row, which then has no step and no gradient).
pub(crate) fn row_lambdas(
    target: Target,
    lambda: f32,
    theta: &[f32],
    grad: &[f32],
    n: usize,
    batch: usize,
) -> Vec<f32> {
    let grad_rows = grad.len() / n;
    if !target.scales_per_row() {
        return vec![lambda; grad_rows];
    }
    let per_instance = grad_rows / batch;
    (0..grad_rows)
        .map(|row| {
            let b = row / per_instance;
            let theta_norm = norm(&theta[b * n..(b + 1) * n]);
            let grad_norm = norm(&grad[row * n..(row + 1) * n]);
            if grad_norm > 0.0 {
                lambda * theta_norm / grad_norm
            } else {
                0.0
            }
        })
        .collect()
}

fn norm(values: &[f32]) -> f32 {
    values.iter().map(|v| v * v).sum::<f32>().sqrt()
}
