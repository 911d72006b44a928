//! The I-MLE Candle op: perturb-and-MAP forward, target distribution backward.
//!
//! Notation (ARCHITECTURE.md gives the data flow): σ = +1 to maximise, −1 to minimise; ε the unscaled noise of
//! one (instance b, draw d) with d = m·S + s (s the sample, m the marginal draw); τ, τ' the
//! forward and target temperatures. Minimisation is the maximising layer applied to −θ, which
//! in θ-space reads:
//!
//! * forward solver input: `θ + σ·τ·ε`
//! * target input: `α·θ − σ·λ·g + σ·τ'·ε`
//! * gradient term: `σ·(z − z')`, or for the central difference
//!   `σ·(MAP(αθ + σλg + στ'ε) − MAP(αθ − σλg + στ'ε)) / 2`
//! * gradient: the mean of the terms over the `S·M` draws of each instance.
//!
//! The noise is never stored: each solver input draws its row of ε straight into the input
//! buffer, in the forward pass and again in the backward pass. Drawing a value costs a few
//! nanoseconds (Sum-of-Gamma included, since it became a table lookup), less than writing it
//! to a B·S·n buffer, reading it back and page-faulting that buffer in on every call
//! (`BENCHMARKS.md` has the comparison).

use crate::config::{ImleConfig, Reduce, Target};
use crate::error::input_error;
use crate::noise::{NoiseKey, fill_instance};
use crate::solver::Solver;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// State shared by a layer and every op it creates: the call counter that keys the noise, the
/// gradient's density (every target) and the adaptive target's β.
#[derive(Debug)]
pub(crate) struct LayerState {
    pub(crate) calls: std::sync::atomic::AtomicU64,
    pub(crate) adaptive: Mutex<AdaptiveState>,
    /// The backward pass's buffer of target solutions, kept between calls (taken and given
    /// back once per backward pass).
    buffer: Mutex<Vec<f32>>,
}

/// What the backward passes have seen so far, and AIMLE's β.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdaptiveState {
    /// AIMLE's β (the configured λ until an adaptive backward moves it).
    pub(crate) beta: f32,
    /// Running mean (momentum 0.9) of the non-zero gradient entries per (instance, draw).
    pub(crate) density: f32,
    /// The same count for the last backward pass alone.
    pub(crate) last_density: f32,
}

impl LayerState {
    pub(crate) fn new(config: &ImleConfig) -> Self {
        LayerState {
            calls: 0.into(),
            adaptive: Mutex::new(AdaptiveState {
                beta: config.lambda,
                density: 0.0,
                last_density: 0.0,
            }),
            buffer: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of `len` values (contents unspecified): the kept one if no other pass holds
    /// it, else a fresh one.
    pub(crate) fn take_buffer(&self, len: usize) -> Vec<f32> {
        let mut buffer =
            std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        buffer.resize(len, 0.0);
        buffer
    }

    /// Keeps `buffer` for the next [`LayerState::take_buffer`].
    pub(crate) fn give_back(&self, buffer: Vec<f32>) {
        let mut kept = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.capacity() > kept.capacity() {
            *kept = buffer;
        }
    }

    pub(crate) fn adaptive(&self) -> AdaptiveState {
        // Nothing panics while holding this lock, so poisoning cannot happen; recover anyway.
        *self.adaptive.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// λ for a forward pass now: the configured λ (perturb and normalized targets), or AIMLE's
    /// current β.
    pub(crate) fn lambda(&self, config: &ImleConfig) -> f32 {
        match config.target {
            Target::Perturb | Target::Normalized => config.lambda,
            Target::Adaptive { .. } => self.adaptive().beta,
        }
    }

    /// After a backward pass whose gradient had `density` non-zero entries per (instance,
    /// draw): the last and running densities (every target), and for AIMLE β one step
    /// towards the target density.
    pub(crate) fn record_density(&self, density: f32, target: Target) {
        let mut state = self.adaptive.lock().unwrap_or_else(|e| e.into_inner());
        state.last_density = density;
        state.density = 0.9 * state.density + 0.1 * density;
        if let Target::Adaptive {
            target_density,
            step,
        } = target
        {
            if state.density < target_density {
                state.beta += step;
            } else if state.density > target_density {
                state.beta = (state.beta - step).max(0.0);
            }
        }
    }
}

/// Shapes of one forward call.
#[derive(Clone, Debug)]
pub(crate) struct Dims {
    pub(crate) batch: usize,
    /// θ's dims after the batch dim.
    pub(crate) instance: Vec<usize>,
    /// Elements per instance.
    pub(crate) n: usize,
}

/// What the forward pass keeps for the backward pass.
struct Saved {
    /// Per-sample solutions, rows `b·S + s`; kept only for `Reduce::Mean` (otherwise they are
    /// the op's output).
    samples: Option<Vec<f32>>,
}

pub(crate) struct ImleOp<S: Solver> {
    pub(crate) solver: Arc<S>,
    pub(crate) config: ImleConfig,
    pub(crate) dims: Dims,
    pub(crate) key: NoiseKey,
    /// λ for the perturb and normalized targets, β for the adaptive one (read when the forward
    /// ran).
    pub(crate) lambda: f32,
    /// Noise given by the caller, rows `b·D + d`, unscaled.
    pub(crate) explicit_noise: Option<Vec<f32>>,
    pub(crate) state: Arc<LayerState>,
    saved: OnceLock<Saved>,
}

impl<S: Solver> ImleOp<S> {
    pub(crate) fn new(
        solver: Arc<S>,
        config: ImleConfig,
        dims: Dims,
        key: NoiseKey,
        explicit_noise: Option<Vec<f32>>,
        state: Arc<LayerState>,
    ) -> Self {
        let lambda = state.lambda(&config);
        ImleOp {
            solver,
            config,
            dims,
            key,
            lambda,
            explicit_noise,
            state,
            saved: OnceLock::new(),
        }
    }

    fn samples(&self) -> usize {
        self.config.samples as usize
    }

    fn draws(&self) -> usize {
        self.config.draws() as usize
    }

    fn has_noise(&self) -> bool {
        self.explicit_noise.is_some() || self.config.noise != crate::noise::Noise::None
    }

    /// Writes the solver input `α·θ_b + step·g + τ·ε_(b,d)` of instance b, draw d into
    /// `input` (no ε when the layer has no noise; `g` empty for no gradient term), drawing ε
    /// into `input` first so that no noise buffer exists.
    #[allow(clippy::too_many_arguments)]
    fn input(
        &self,
        input: &mut [f32],
        b: usize,
        d: usize,
        theta: &[f32],
        alpha: f32,
        step: f32,
        g: &[f32],
        tau: f32,
    ) {
        let theta_b = &theta[b * self.dims.n..][..self.dims.n];
        let noisy = self.has_noise();
        if noisy {
            self.draw_noise(b, d, input);
        }
        solver_input(input, theta_b, alpha, step, g, tau, noisy);
    }

    /// Writes the unscaled noise of (instance b, draw d) into `row`.
    fn draw_noise(&self, b: usize, d: usize, row: &mut [f32]) {
        match &self.explicit_noise {
            Some(noise) => {
                let n = self.dims.n;
                let start = (b * self.draws() + d) * n;
                row.copy_from_slice(&noise[start..start + n]);
            }
            None => fill_instance(&self.config.noise, self.key, b as u32, d as u32, row),
        }
    }

    fn forward(&self, theta: &[f32]) -> Result<(Vec<f32>, Shape)> {
        let Dims { batch, n, .. } = self.dims;
        let samples = self.samples();
        check_finite("θ", theta)?;
        self.solver.check_theta(theta, &self.dims.instance)?;
        let scaled_tau = self.config.sense.sign() * self.config.tau;
        let mut z = vec![0.0; batch * samples * n];
        let overflow = InputOverflow::default();
        let solved = self.solver.solve_rows(
            &self.dims.instance,
            &|row, input| {
                let (b, s) = (row / samples, row % samples);
                self.input(input, b, s, theta, 1.0, 0.0, &[], scaled_tau);
                overflow.note(input);
            },
            &mut z,
        );
        overflow.check()?;
        solved?;
        // The per-sample solutions are the output itself, except for Reduce::Mean, where they
        // are kept for the backward pass.
        let (output, shape, samples_kept) = match self.config.reduce {
            Reduce::Mean => (
                mean_over_samples(z.clone(), samples, n),
                self.theta_shape(),
                Some(z),
            ),
            Reduce::None if samples == 1 => (z, self.theta_shape(), None),
            Reduce::None => {
                let mut dims = vec![batch * samples];
                dims.extend_from_slice(&self.dims.instance);
                (z, Shape::from(dims), None)
            }
        };
        // Set once: candle calls cpu_fwd exactly once per op value.
        let _ = self.saved.set(Saved {
            samples: samples_kept,
        });
        Ok((output, shape))
    }

    fn theta_shape(&self) -> Shape {
        let mut dims = vec![self.dims.batch];
        dims.extend_from_slice(&self.dims.instance);
        Shape::from(dims)
    }

    /// λ of each gradient row (b, s): the fixed λ, or `λ·‖θ_b‖/‖g_row‖` (normalized target; for
    /// AIMLE λ is the current β).
    fn row_lambdas(&self, theta: &[f32], grad: &[f32], grad_rows: usize) -> Vec<f32> {
        let n = self.dims.n;
        match self.config.target {
            Target::Perturb => vec![self.lambda; grad_rows],
            Target::Normalized | Target::Adaptive { .. } => {
                let per_grad_row = grad_rows / self.dims.batch;
                (0..grad_rows)
                    .map(|row| {
                        let b = row / per_grad_row;
                        let theta_norm = norm(&theta[b * n..(b + 1) * n]);
                        let grad_norm = norm(&grad[row * n..(row + 1) * n]);
                        if grad_norm > 0.0 {
                            self.lambda * theta_norm / grad_norm
                        } else {
                            0.0
                        }
                    })
                    .collect()
            }
        }
    }

    fn backward(&self, theta: &[f32], z_out: &[f32], grad: &[f32]) -> Result<Vec<f32>> {
        let saved = self.saved.get().ok_or_else(|| {
            input_error("backward ran before forward (the op has no saved state)")
        })?;
        check_finite("the incoming gradient", grad)?;
        let Dims { batch, n, .. } = self.dims;
        let (samples, draws) = (self.samples(), self.draws());
        let config = &self.config;
        let sign = config.sense.sign();
        // Rows of the incoming gradient: one per sample, or one per instance for Reduce::Mean.
        let grad_rows = grad.len() / n;
        let per_instance = grad_rows / batch;
        let grad_row = |b: usize, s: usize| b * per_instance + s % per_instance;
        let lambdas = self.row_lambdas(theta, grad, grad_rows);

        let extra_draws = draws - samples;
        let overflow = InputOverflow::default();
        // Solver input of row (b, d) on the `direction` side of the target: +1 is
        // α·θ + σλg + στ'ε (used by the central difference), -1 is α·θ - σλg + στ'ε.
        let target = |direction: f32, row: usize, input: &mut [f32]| {
            let (b, d) = (row / draws, row % draws);
            let gr = grad_row(b, d % samples);
            self.input(
                input,
                b,
                d,
                theta,
                config.alpha,
                direction * sign * lambdas[gr],
                &grad[gr * n..][..n],
                sign * config.target_tau,
            );
            overflow.note(input);
        };
        let rows = batch * draws;
        // With one draw per instance the target solutions can go straight into the gradient's
        // buffer, which the last pass then turns into the gradient in place; otherwise they
        // go into a buffer the layer keeps between calls (a fresh one would page-fault in
        // on every call).
        let in_place = draws == 1;
        let mut gradient = vec![0.0f32; batch * n];
        let mut pooled = if in_place {
            Vec::new()
        } else {
            self.state.take_buffer(rows * n)
        };
        let minus: &mut [f32] = if in_place { &mut gradient } else { &mut pooled };
        let solved = self.solver.solve_rows(
            &self.dims.instance,
            &|row, input| target(-1.0, row, input),
            minus,
        );
        overflow.check()?;
        solved?;
        // The other side: MAP(α·θ + σλg + στ'ε) for the central difference; otherwise the
        // forward solutions MAP(θ + στε), saved for m = 0 and solved here for m >= 1.
        let mut plus = Vec::new();
        if config.symmetric {
            plus = vec![0.0f32; rows * n];
            let solved = self.solver.solve_rows(
                &self.dims.instance,
                &|row, input| target(1.0, row, input),
                &mut plus,
            );
            overflow.check()?;
            solved?;
        } else if extra_draws > 0 {
            plus = vec![0.0f32; batch * extra_draws * n];
            let tau = sign * config.tau;
            let solved = self.solver.solve_rows(
                &self.dims.instance,
                &|row, input| {
                    let (b, d) = (row / extra_draws, samples + row % extra_draws);
                    self.input(input, b, d, theta, 1.0, 0.0, &[], tau);
                    overflow.note(input);
                },
                &mut plus,
            );
            overflow.check()?;
            solved?;
        }
        let forward_z = saved.samples.as_deref().unwrap_or(z_out);
        let plus_row = |b: usize, d: usize| -> &[f32] {
            if config.symmetric {
                &plus[(b * draws + d) * n..][..n]
            } else if d < samples {
                &forward_z[(b * samples + d) * n..][..n]
            } else {
                &plus[(b * extra_draws + d - samples) * n..][..n]
            }
        };

        // gradient_b = (1/D) Σ_d σ·c_d·(plus - minus), with c_d = 1/2 for the central
        // difference and 1/λ with scale_by_lambda; summed in a fixed order per instance.
        let coefficient = |b: usize, d: usize| {
            let mut coefficient = sign / draws as f32;
            if config.symmetric {
                coefficient *= 0.5;
            }
            if config.scale_by_lambda {
                // λ = 0 only when g = 0 (adaptive), where the term is 0 too.
                let lambda = lambdas[grad_row(b, d % samples)];
                coefficient = if lambda > 0.0 {
                    coefficient / lambda
                } else {
                    0.0
                };
            }
            coefficient
        };
        let nonzeros: usize = if in_place {
            // acc holds MAP of the target; 0 + c·(p - m) is what the general pass computes.
            gradient
                .par_chunks_mut(n)
                .enumerate()
                .map(|(b, acc)| {
                    let c = coefficient(b, 0);
                    let mut nonzeros = 0;
                    for (a, &p) in acc.iter_mut().zip(plus_row(b, 0)) {
                        let difference = p - *a;
                        nonzeros += (difference != 0.0) as usize;
                        *a = 0.0 + c * difference;
                    }
                    nonzeros
                })
                .sum()
        } else {
            let minus = &pooled;
            let nonzeros = gradient
                .par_chunks_mut(n)
                .enumerate()
                .map(|(b, acc)| {
                    let mut nonzeros = 0;
                    for d in 0..draws {
                        let c = coefficient(b, d);
                        let minus_row = &minus[(b * draws + d) * n..][..n];
                        for ((a, &p), &m) in acc.iter_mut().zip(plus_row(b, d)).zip(minus_row) {
                            let difference = p - m;
                            nonzeros += (difference != 0.0) as usize;
                            *a += c * difference;
                        }
                    }
                    nonzeros
                })
                .sum();
            self.state.give_back(pooled);
            nonzeros
        };
        self.state
            .record_density(nonzeros as f32 / rows as f32, config.target);
        Ok(gradient)
    }
}

/// The error when a solver input is not finite although θ, g and ε are: the sum overflowed.
pub(crate) const INPUT_OVERFLOW: &str = "the solver input α·θ + λ·g + τ·ε overflowed to ±inf or \
     NaN (θ, λ·g or the noise is too large for f32)";

/// Whether any solver input of a pass was not finite. The closures that fill the inputs run
/// on rayon's workers and cannot return errors, so they note it here (an atomic store only
/// when it happens, no lock), and the pass reports it after solving.
#[derive(Default)]
struct InputOverflow(AtomicBool);

impl InputOverflow {
    fn note(&self, input: &[f32]) {
        if !input.iter().all(|x| x.is_finite()) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    fn check(&self) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Err(input_error(INPUT_OVERFLOW))
        } else {
            Ok(())
        }
    }
}

/// `input = α·θ + step·g + tau·ε`; an empty `g` or a missing `ε` counts as 0.
/// `input ← α·θ + step·g + τ·ε`, where ε is `input`'s own content when `noisy` (the noise
/// was drawn into it) and absent otherwise; `g` empty means no gradient term. The operations
/// and their order are those of the CUDA kernels' `imle_solver_input`.
fn solver_input(
    input: &mut [f32],
    theta: &[f32],
    alpha: f32,
    step: f32,
    g: &[f32],
    tau: f32,
    noisy: bool,
) {
    match (g.is_empty(), noisy) {
        (true, false) => {
            for (x, &t) in input.iter_mut().zip(theta) {
                *x = alpha * t;
            }
        }
        (true, true) => {
            for (x, &t) in input.iter_mut().zip(theta) {
                *x = alpha * t + tau * *x;
            }
        }
        (false, false) => {
            for ((x, &t), &gi) in input.iter_mut().zip(theta).zip(g) {
                *x = alpha * t + step * gi;
            }
        }
        (false, true) => {
            for ((x, &t), &gi) in input.iter_mut().zip(theta).zip(g) {
                *x = (alpha * t + step * gi) + tau * *x;
            }
        }
    }
}

fn norm(values: &[f32]) -> f32 {
    values.iter().map(|v| v * v).sum::<f32>().sqrt()
}

/// Mean over groups of `group` consecutive rows: `[B·group, n] → [B, n]`, summed in a fixed
/// order so results do not depend on the thread count.
fn mean_over_samples(rows: Vec<f32>, group: usize, n: usize) -> Vec<f32> {
    if group == 1 {
        return rows;
    }
    let batch = rows.len() / (group * n);
    let mut out = vec![0.0f32; batch * n];
    let inverse = 1.0 / group as f32;
    out.par_chunks_mut(n).enumerate().for_each(|(b, acc)| {
        for row in rows[b * group * n..(b + 1) * group * n].chunks_exact(n) {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
        acc.iter_mut().for_each(|a| *a *= inverse);
    });
    out
}

pub(crate) fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(input_error(format!(
            "{what} has a non-finite value ({}) at flat index {i}",
            values[i]
        ))),
    }
}

/// The contiguous f32 data of a CPU storage.
fn cpu_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(input_error("expected a contiguous tensor")),
    }
}

/// Runs `f` on the contiguous f32 data of a CPU tensor.
pub(crate) fn with_cpu_f32<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(cpu_f32(cpu, layout)?),
        _ => Err(input_error(
            "the CPU I-MLE op got a tensor on another device",
        )),
    }
}

impl<S: Solver> CustomOp1 for ImleOp<S> {
    fn name(&self) -> &'static str {
        "imle"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (values, shape) = self.forward(cpu_f32(storage, layout)?)?;
        Ok((CpuStorage::F32(values), shape))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad_res = grad_res.to_dtype(candle_core::DType::F32)?;
        let gradient = with_cpu_f32(arg, |theta| {
            with_cpu_f32(res, |z| {
                with_cpu_f32(&grad_res, |g| self.backward(theta, z, g))
            })
        })?;
        Tensor::from_vec(gradient, arg.shape(), arg.device()).map(Some)
    }
}
