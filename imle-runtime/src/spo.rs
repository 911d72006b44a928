//! The SPO+ loss ("Smart Predict-then-Optimize", Elmachtoub & Grigas, *Management Science*
//! 68(1), 2022) for linear objectives, over any solver: a convex surrogate of the regret
//! whose subgradient costs one solver call per instance.
//!
//! In the minimisation form (`w(c) = argmin_{w ∈ W} c·w`), for predicted costs `ĉ`, true
//! costs `c` and an optimal solution `w*` under `c` (`z*(c) = c·w*`), per instance:
//!
//! ```text
//! ℓ(ĉ) = −min_w (2ĉ − c)·w + 2ĉ·w* − z*(c)  =  (2ĉ − c)·(w* − w̃),   w̃ = argmin_w (2ĉ − c)·w
//! ∂ℓ/∂ĉ ∋ 2(w* − w̃)
//! ```
//!
//! See [`SpoPlus`].

use crate::config::Sense;
use crate::error::input_error;
use crate::host::{check_finite, with_cpu_f32};
use crate::loss::Reduction;
use crate::plumbing::{Solver, min_rows};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

/// The SPO+ loss of Elmachtoub & Grigas ("Smart 'Predict, then Optimize'", *Management
/// Science* 68(1):9–26, 2022, eq. (6)) for a linear objective over the feasible set of
/// `solver`.
///
/// **Formula.** For a minimising solver ([`Sense::Minimize`], `w(θ) = argmin_w θ·w`), per
/// instance `b`, with `ĉ` the predicted costs, `c` the true costs and `w*` an optimal
/// solution under `c`:
///
/// ```text
/// ℓ_b = −min_w (2ĉ − c)·w + 2ĉ·w* − c·w*  =  (2ĉ − c)·(w* − w̃),   w̃ = w(2ĉ − c)
/// subgradient in ĉ:  2·(w* − w̃)
/// ```
///
/// **Sense.** For a maximising solver ([`Sense::Maximize`], `w(θ) = argmax_w θ·w`, `c` are
/// then values, not costs) the loss is SPO+ of the minimisation problem with costs `−c` (since
/// `max_w c·w = −min_w (−c)·w`): the inner problem `argmin_w (−2ĉ + c)·w` is
/// `argmax_w (2ĉ − c)·w`, so the solver sees the same input `2ĉ − c`, and
///
/// ```text
/// ℓ_b = max_w (2ĉ − c)·w − 2ĉ·w* + c·w*  =  (2ĉ − c)·(w̃ − w*),   subgradient 2·(w̃ − w*)
/// ```
///
/// In both senses `ℓ_b = σ·(2ĉ − c)·(w̃ − w*)` and `∂ℓ_b/∂ĉ = 2σ·(w̃ − w*)` with
/// `σ = `[`Sense::sign`]. Give the solver's own sense, as for a layer: `Sense` declares what
/// the solver does, it does not turn a maximiser into a minimiser.
///
/// **Properties.** `ℓ_b ≥ 0` (w̃ is optimal for `2ĉ − c` and `w*` is feasible; the value is
/// computed in f64 and values below 0 from rounding are returned as 0; a value further below
/// 0 than rounding allows is an error, since it means `w*` is infeasible or the solver is
/// not exact on `2ĉ − c`: see [`SpoPlus::with_exact_solver`]), `ℓ_b = 0` at `ĉ = c`
/// when `w*` is the solver's solution for `c` (or an equally good one), and `ℓ` is convex in
/// `ĉ`, so the gradient from `backward` is a subgradient.
///
/// **Shapes and dtypes.** `ĉ`, `c` and `w*` are `[B, d]` (or all three `[B, instance…]`, such
/// as a grid's `[B, H, W]`: the solver sees each instance in its shape, the products are
/// over all its entries), `B ≥ 1`, `d ≥ 1`, any float dtype
/// (f32, f64, f16, bf16) and any device. Everything is computed in f32 on the host, like
/// [`ImleLayer`](crate::ImleLayer) does with a CPU solver: `ĉ` is converted to f32 and moved
/// to the CPU (differentiably, so the gradient returns to `ĉ`'s dtype and device), and the
/// loss is returned in `ĉ`'s dtype, on `ĉ`'s device. Only `ĉ` gets a gradient (`c` and `w*`
/// are data).
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use imle_runtime::{Argmax, Sense, loss::Reduction, spo::SpoPlus};
/// // Maximise c·w over one-hot w: the true values prefer item 2, the prediction item 0.
/// let c = Tensor::new(&[[0f32, 1.0, 2.0]], &Device::Cpu)?;
/// let w_star = Tensor::new(&[[0f32, 0.0, 1.0]], &Device::Cpu)?;
/// let c_hat = Var::new(&[[2f32, 1.0, 0.0]], &Device::Cpu)?;
/// let spo = SpoPlus::new(Argmax, Sense::Maximize);
/// let loss = spo.loss(c_hat.as_tensor(), &c, &w_star, Reduction::Sum)?;
/// // 2ĉ − c = [4, 1, −2], w̃ = [1, 0, 0]: ℓ = (2ĉ − c)·(w̃ − w*) = 4 − (−2) = 6
/// assert_eq!(loss.to_scalar::<f32>()?, 6.0);
/// let grad = loss.backward()?.get(&c_hat).unwrap().to_vec2::<f32>()?;
/// assert_eq!(grad, [[2.0, 0.0, -2.0]]); // 2·(w̃ − w*)
/// // At ĉ = c the loss is 0.
/// assert_eq!(spo.loss(&c, &c, &w_star, Reduction::Sum)?.to_scalar::<f32>()?, 0.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub struct SpoPlus<S: Solver> {
    solver: Arc<S>,
    sense: Sense,
    exact_solver: bool,
}

impl<S: Solver> Clone for SpoPlus<S> {
    /// Clones share the solver.
    fn clone(&self) -> Self {
        SpoPlus {
            solver: self.solver.clone(),
            sense: self.sense,
            exact_solver: self.exact_solver,
        }
    }
}

/// A solver type that carries the sense of its SPO+ loss: what
/// `#[imle_layer(estimator = "spo_plus")]` generates (the counterpart of
/// [`ConfiguredSolver`](crate::ConfiguredSolver) for [`ImleLayer`](crate::ImleLayer)). It
/// gives [`SpoPlus`] [`Default`] (when the solver is `Default`) and [`SpoPlus::configured`].
///
/// ```
/// use imle_runtime::spo::{ConfiguredSpo, SpoPlus};
/// use imle_runtime::{MapSolver, Sense};
///
/// /// The cheapest item, one-hot.
/// #[derive(Default)]
/// struct Cheapest;
/// impl MapSolver for Cheapest {
///     type Scratch = ();
///     fn name(&self) -> &str { "cheapest" }
///     fn solve(&self, c: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> candle_core::Result<()> {
///         z[(0..c.len()).fold(0, |b, i| if c[i] < c[b] { i } else { b })] = 1.0;
///         Ok(())
///     }
/// }
/// impl ConfiguredSpo for Cheapest {
///     const SENSE: Sense = Sense::Minimize;
/// }
/// assert_eq!(SpoPlus::<Cheapest>::default().sense(), Sense::Minimize);
/// ```
pub trait ConfiguredSpo {
    /// The direction the solver optimises in.
    const SENSE: Sense;
}

impl<B: ConfiguredSpo> ConfiguredSpo for crate::solver::Batched<B> {
    const SENSE: Sense = B::SENSE;
}

impl<S: Solver + ConfiguredSpo + Default> Default for SpoPlus<S> {
    /// SPO+ over the solver's default value, with the sense its type carries.
    fn default() -> Self {
        Self::configured(S::default())
    }
}

impl<S: Solver + ConfiguredSpo> SpoPlus<S> {
    /// SPO+ over `solver`, with the sense its type carries.
    pub fn configured(solver: S) -> Self {
        Self::new(solver, S::SENSE)
    }
}

impl<S: Solver> SpoPlus<S> {
    /// SPO+ over the feasible set of `solver`, which optimises in direction `sense` (see
    /// [`SpoPlus`] for how the sense enters the loss). Any [`MapSolver`](crate::MapSolver)
    /// works (built-in or made by `#[imle_layer]`), and so does a
    /// [`Batched`](crate::Batched) batch solver. The solver is taken to be exact on
    /// `2ĉ − c`; for one that is not (a heuristic, or a
    /// [`GridShortestPath`](crate::GridShortestPath) that clamps negative entries of `2ĉ − c`
    /// to 0, as its default does wherever `ĉ < c/2`), see
    /// [`with_exact_solver`](SpoPlus::with_exact_solver).
    pub fn new(solver: S, sense: Sense) -> Self {
        SpoPlus {
            solver: Arc::new(solver),
            sense,
            exact_solver: true,
        }
    }

    /// Whether the solver optimises `2ĉ − c` exactly (the default, `true`). SPO+ is then
    /// `≥ 0`, and a loss below 0 beyond rounding is an error (it means `w_star` is not a
    /// feasible solution, or `c` and `w_star` were swapped). Give `false` for a heuristic
    /// solver, or a [`GridShortestPath`](crate::GridShortestPath) that clamps negative
    /// entries of `2ĉ − c` to 0 (its default): negative losses are then returned as
    /// computed, `σ·(2ĉ − c)·(w̃ − w*)`, consistent with the gradient, as PyEPO's `SPOPlus`
    /// does with any solver.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::{Argmax, Sense, loss::Reduction, spo::SpoPlus};
    /// let c = Tensor::new(&[[0f32, 1.0, 2.0]], &Device::Cpu)?;
    /// let c_hat = Tensor::new(&[[0f32, 1.0, 0.0]], &Device::Cpu)?;
    /// // Not a feasible solution (Argmax's are one-hot): SPO+ comes out negative.
    /// let infeasible = Tensor::new(&[[0f32, 3.0, 0.0]], &Device::Cpu)?;
    /// let spo = SpoPlus::new(Argmax, Sense::Maximize);
    /// let err = spo.loss(&c_hat, &c, &infeasible, Reduction::Sum).unwrap_err();
    /// assert!(err.to_string().contains("with_exact_solver(false)"));
    /// // As computed: 2ĉ − c = [0, 1, −2], w̃ = [0, 1, 0], ℓ = (2ĉ − c)·(w̃ − w*) = 1 − 3.
    /// let loss = spo.with_exact_solver(false).loss(&c_hat, &c, &infeasible, Reduction::Sum)?;
    /// assert_eq!(loss.to_scalar::<f32>()?, -2.0);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_exact_solver(mut self, exact: bool) -> Self {
        self.exact_solver = exact;
        self
    }

    /// The solver.
    pub fn solver(&self) -> &S {
        &self.solver
    }

    /// The solver's sense.
    pub fn sense(&self) -> Sense {
        self.sense
    }

    /// The SPO+ loss of predicted costs `c_hat` `[B, d]` against true costs `c` `[B, d]` and
    /// optimal solutions `w_star` `[B, d]` (optimal under `c`; or all three `[B, instance…]`),
    /// reduced as `reduction` says:
    /// [`Reduction::None`] gives the per-instance losses `[B]`, [`Reduction::Sum`] their sum,
    /// [`Reduction::Mean`] and [`Reduction::InstanceMean`] their mean over the `B`
    /// instances (the loss has one value per instance, so the two means coincide). The
    /// reduction is made of ordinary tensor operations, so its gradient flows to `c_hat`.
    ///
    /// Calls the solver once per instance, in parallel, on `2ĉ − c`.
    ///
    /// # Errors
    /// A tensor of rank other than 2, shapes that differ (both are named), an empty batch or
    /// instance, a non-float dtype, a NaN or infinite value in `c_hat`, `c` or `w_star`, a
    /// solver input `2ĉ − c` that overflows f32, predicted costs the solver's input check
    /// rejects (as it checks a layer's θ: a [`GridShortestPath`](crate::GridShortestPath)
    /// rejects negative predicted costs unless told to clamp them), an instance shape the
    /// solver rejects, any solver error, panic or non-finite solution (named after the
    /// solver), and, unless [`with_exact_solver(false)`](SpoPlus::with_exact_solver), a
    /// negative loss beyond rounding (`w_star` infeasible, `c` and `w_star` swapped, or a
    /// solver that is not exact on `2ĉ − c`).
    pub fn loss(
        &self,
        c_hat: &Tensor,
        c: &Tensor,
        w_star: &Tensor,
        reduction: Reduction,
    ) -> Result<Tensor> {
        let (batch, instance) = check_shapes(c_hat, c, w_star)?;
        self.solver.check_instance(&instance)?;
        let c = host_f32("c", c)?;
        let w_star = host_f32("w_star", w_star)?;
        let op = SpoOp {
            solver: self.solver.clone(),
            sense: self.sense,
            exact_solver: self.exact_solver,
            d: instance.iter().product(),
            instance,
            c,
            w_star,
            w_tilde: OnceLock::new(),
        };
        let (dtype, device) = (c_hat.dtype(), c_hat.device().clone());
        let c_hat_f32 = c_hat
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .contiguous()?;
        let per_instance = c_hat_f32
            .apply_op1(op)?
            .to_dtype(dtype)?
            .to_device(&device)?;
        match reduction {
            Reduction::None => Ok(per_instance),
            Reduction::Sum => per_instance.sum_all(),
            Reduction::Mean | Reduction::InstanceMean => per_instance.sum_all()? / batch as f64,
        }
    }
}

/// Checks rank, shapes and dtypes; returns `B` and the instance shape (`[d]`, or a grid's
/// `[H, W]`, ...).
fn check_shapes(c_hat: &Tensor, c: &Tensor, w_star: &Tensor) -> Result<(usize, Vec<usize>)> {
    for (name, t) in [("c_hat", c_hat), ("c", c), ("w_star", w_star)] {
        if t.rank() < 2 {
            return Err(input_error(format!(
                "SPO+: {name} must have rank >= 2 ([B, d]: a batch of cost vectors, or \
                 [B, instance…] such as [B, H, W]), got shape {:?}",
                t.dims()
            )));
        }
        if !matches!(
            t.dtype(),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16
        ) {
            return Err(input_error(format!(
                "SPO+: {name} must be a float tensor (f32, f64, f16 or bf16), got {:?}",
                t.dtype()
            )));
        }
    }
    for (name, t) in [("c", c), ("w_star", w_star)] {
        if t.dims() != c_hat.dims() {
            return Err(input_error(format!(
                "SPO+: c_hat has shape {:?} but {name} has shape {:?}; they must match",
                c_hat.dims(),
                t.dims()
            )));
        }
    }
    let (batch, instance) = (c_hat.dims()[0], c_hat.dims()[1..].to_vec());
    if batch == 0 || instance.iter().product::<usize>() == 0 {
        return Err(input_error(format!(
            "SPO+: empty input (shape {:?}); it needs at least one instance of at least one entry",
            c_hat.dims()
        )));
    }
    Ok((batch, instance))
}

/// A tensor's values as host f32, checked to be finite.
fn host_f32(name: &str, t: &Tensor) -> Result<Vec<f32>> {
    let t = t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    with_cpu_f32(&t, |values| {
        check_finite(&format!("SPO+: {name}"), values)?;
        Ok(values.to_vec())
    })
}

/// The per-instance SPO+ loss as a Candle op on `ĉ` (`[B, d]` f32 on the CPU): forward
/// `ℓ_b = σ·(2ĉ_b − c_b)·(w̃_b − w*_b)` `[B]`, backward `g_b·2σ·(w̃_b − w*_b)`.
struct SpoOp<S: Solver> {
    solver: Arc<S>,
    /// The solver's sense; σ = `sense.sign()`: +1 to maximise, −1 to minimise.
    sense: Sense,
    /// See [`SpoPlus::with_exact_solver`].
    exact_solver: bool,
    /// The shape of one instance, and its number of entries.
    instance: Vec<usize>,
    d: usize,
    c: Vec<f32>,
    w_star: Vec<f32>,
    /// The solutions `w̃ = w(2ĉ − c)`, set by the forward pass.
    w_tilde: OnceLock<Vec<f32>>,
}

impl<S: Solver> SpoOp<S> {
    fn forward(&self, c_hat: &[f32]) -> Result<Vec<f32>> {
        let d = self.d;
        check_finite("SPO+: c_hat", c_hat)?;
        let input: Vec<f32> = c_hat
            .iter()
            .zip(&self.c)
            .map(|(&h, &c)| 2.0 * h - c)
            .collect();
        if let Some(i) = input.iter().position(|v| !v.is_finite()) {
            return Err(input_error(format!(
                "SPO+: the solver input 2ĉ − c overflowed f32 at flat index {i} (ĉ = {}, c = {})",
                c_hat[i], self.c[i]
            )));
        }
        // The solver's check of the prediction, as a layer checks its θ before noise: ĉ plays
        // θ, and 2ĉ − c its perturbation (a grid shortest path with the default
        // `NegativeCosts::ClampPerturbed` rejects a negative predicted cost, and clamps
        // negative entries of 2ĉ − c to 0 as it clamps noisy costs).
        Solver::check_theta(&*self.solver, c_hat, &self.instance)
            .map_err(|e| input_error(format!("SPO+: the predicted costs c_hat: {e}")))?;
        let mut w_tilde = vec![0.0f32; input.len()];
        self.solver.solve_rows(
            &self.instance,
            &|row, buffer| buffer.copy_from_slice(&input[row * d..][..d]),
            &mut w_tilde,
        )?;
        // ℓ_b = σ·Σ_i (2ĉ_i − c_i)·(w̃_i − w*_i), in f64 from the f32 inputs, with the
        // tolerance below which a negative value is rounding.
        let sign = f64::from(self.sense.sign());
        let losses: Vec<(f64, f64)> = w_tilde
            .par_chunks(d)
            .zip(c_hat.par_chunks(d))
            .zip(self.c.par_chunks(d))
            .zip(self.w_star.par_chunks(d))
            .zip(input.par_chunks(d))
            .with_min_len(min_rows(c_hat.len() / d, d))
            .map(|((((wt, h), c), ws), x)| {
                // ℓ_b ≥ 0 exactly when w̃ is optimal for the f32 input x = fl(2ĉ − c) and w*
                // is feasible. Two roundings can leave it slightly negative: x differs from
                // 2ĉ − c by at most 2^-24·|x_i| per entry, and a solver that adds its input
                // in f32 (a path's cost) compares sums of the m entries a solution uses
                // (m = the larger number of non-zeros in w̃ and w*; zero terms add no
                // rounding), each sum off by at most m·2^-24·Σ|x_i|·|w_i|. With
                // s = Σ_i |x_i|·(|w̃_i| + |w*_i|), both stay below (2m + 1)·2^-24·s; twice
                // that is the tolerance. One pass gathers the dot product, s and both counts.
                let (mut dot, mut s, mut used_tilde, mut used_star) = (0.0f64, 0.0f64, 0, 0);
                for i in 0..d {
                    let (t, star) = (wt[i] as f64, ws[i] as f64);
                    dot += (2.0 * h[i] as f64 - c[i] as f64) * (t - star);
                    s += (x[i] as f64).abs() * (t.abs() + star.abs());
                    used_tilde += usize::from(t != 0.0);
                    used_star += usize::from(star != 0.0);
                }
                let m = used_tilde.max(used_star).max(1);
                (
                    sign * dot,
                    (4 * m + 2) as f64 * f64::from(f32::EPSILON) / 2.0 * s,
                )
            })
            .collect();
        // Below the tolerance the loss is truly negative: w̃ is worse than w* for 2ĉ − c, so
        // the solver did not optimise 2ĉ − c or w* is not a feasible solution. With an exact
        // solver that is bad input; with an inexact one it is the surrogate's value, returned
        // as computed (clamping it to 0 would disagree with the gradient).
        if self.exact_solver
            && let Some((b, &(loss, tolerance))) = losses
                .iter()
                .enumerate()
                .find(|(_, (loss, tolerance))| *loss < -tolerance)
        {
            return Err(input_error(format!(
                "SPO+: the loss of instance {b} is {loss} < 0 (rounding allows down to {:.1e}), \
                 which SPO+ cannot be with an exact solver: the solver's solution for 2ĉ − c \
                 is worse than w_star under 2ĉ − c. Either the sense ({:?}) is not the \
                 direction the solver `{}` optimises in, or w_star is not a feasible \
                 solution (it must be an optimal solution for c, in the solver's format; c \
                 and w_star swapped?), or the solver does not optimise 2ĉ − c exactly (a \
                 heuristic, or a grid shortest path clamping negative entries of 2ĉ − c to \
                 0): then say so with SpoPlus::with_exact_solver(false), and negative losses \
                 are returned as computed",
                -tolerance,
                self.sense,
                self.solver.name()
            )));
        }
        // Set once: candle calls cpu_fwd exactly once per op value.
        let _ = self.w_tilde.set(w_tilde);
        Ok(losses
            .into_iter()
            .map(|(loss, tolerance)| {
                // Rounding below 0 reads as 0.
                let loss = if (-tolerance..0.0).contains(&loss) {
                    0.0
                } else {
                    loss
                };
                loss as f32
            })
            .collect())
    }

    fn backward(&self, grad: &[f32]) -> Result<Vec<f32>> {
        let w_tilde = self.w_tilde.get().ok_or_else(|| {
            input_error("SPO+: backward ran before forward (the op has no saved state)")
        })?;
        check_finite("SPO+: the incoming gradient", grad)?;
        let d = self.d;
        let mut gradient = vec![0.0f32; w_tilde.len()];
        gradient
            .par_chunks_mut(d)
            .zip(w_tilde.par_chunks(d))
            .zip(self.w_star.par_chunks(d))
            .zip(grad.par_iter())
            .with_min_len(min_rows(grad.len(), d))
            .for_each(|(((out, wt), ws), &g)| {
                let scale = 2.0 * self.sense.sign() * g;
                for ((o, &t), &s) in out.iter_mut().zip(wt).zip(ws) {
                    *o = scale * (t - s);
                }
            });
        Ok(gradient)
    }
}

impl<S: Solver> CustomOp1 for SpoOp<S> {
    fn name(&self) -> &'static str {
        "spo-plus"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = storage.as_slice::<f32>()?;
        let c_hat = match layout.contiguous_offsets() {
            Some((start, end)) => &data[start..end],
            None => return Err(input_error("SPO+: expected a contiguous tensor")),
        };
        if c_hat.len() != self.c.len() {
            return Err(input_error(format!(
                "SPO+: c_hat has {} entries but c has {}",
                c_hat.len(),
                self.c.len()
            )));
        }
        let losses = self.forward(c_hat)?;
        let batch = losses.len();
        Ok((CpuStorage::F32(losses), Shape::from(batch)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad_res = grad_res.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        let gradient = with_cpu_f32(&grad_res, |g| self.backward(g))?;
        Tensor::from_vec(gradient, arg.shape(), arg.device()).map(Some)
    }
}
