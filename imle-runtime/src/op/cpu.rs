//! The CPU backend of the ops: solver calls in parallel over rows (rayon), each row's solver
//! input written into a per-worker buffer.
//!
//! The noise is never stored: each solver input draws its row of ε straight into the input
//! buffer, in the forward pass and again in the backward pass. Drawing a value costs a few
//! nanoseconds (Sum-of-Gamma included, since it became a table lookup), less than writing it
//! to a B·S·n buffer, reading it back and page-faulting that buffer in on every call
//! (`BENCHMARKS.md` has the comparison).

use super::{Dims, ImleOp, Rows, Saved};
use crate::config::Reduce;
use crate::error::{INPUT_OVERFLOW, input_error};
use crate::host::{check_finite, cpu_f32, with_cpu_f32};
use crate::noise::{Noise, NoiseKey, fill_instance};
use crate::plumbing::{Solver, min_rows};
use crate::target::row_lambdas;
use candle_core::{CpuStorage, Device, Layout, Result, Shape};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// The forward pass on a CPU storage of θ.
pub(super) fn forward<S: Solver>(
    op: &ImleOp<S>,
    storage: &CpuStorage,
    layout: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let theta = cpu_f32(storage, layout)?;
    let (values, shape) = op.with_host_noise(|noise| {
        if let Some(values) = noise {
            check_finite("the explicit noise", values)?;
        }
        Pass::new(op, theta, noise).forward()
    })?;
    Ok((CpuStorage::F32(values), shape))
}

/// The backward pass on CPU storages of θ, the forward's output and ∂L/∂z.
pub(super) fn backward<S: Solver>(
    op: &ImleOp<S>,
    theta: (&CpuStorage, &Layout),
    z: (&CpuStorage, &Layout),
    grad: (&CpuStorage, &Layout),
) -> Result<(CpuStorage, Shape)> {
    let (theta, z, grad) = (
        cpu_f32(theta.0, theta.1)?,
        cpu_f32(z.0, z.1)?,
        cpu_f32(grad.0, grad.1)?,
    );
    let gradient = op.with_host_noise(|noise| Pass::new(op, theta, noise).backward(z, grad))?;
    Ok((CpuStorage::F32(gradient), op.output_shape(op.dims.batch)))
}

/// `MAP(θ)` of every instance of a CPU storage.
pub(super) fn map<S: Solver>(
    solver: &S,
    dims: &Dims,
    storage: &CpuStorage,
    layout: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let theta = cpu_f32(storage, layout)?;
    check_finite("θ", theta)?;
    solver.check_theta(theta, &dims.instance)?;
    let n = dims.n;
    let mut z = vec![0.0; theta.len()];
    solver.solve_rows(
        &dims.instance,
        &|row, input| input.copy_from_slice(&theta[row * n..][..n]),
        &mut z,
    )?;
    Ok((CpuStorage::F32(z), layout.shape().clone()))
}

impl<S: Solver> ImleOp<S> {
    /// Runs `f` on the explicit noise's host values, if there is explicit noise (a copy only
    /// when it lives on another device, that is, when the CUDA backend runs this one).
    fn with_host_noise<R>(&self, f: impl FnOnce(Option<&[f32]>) -> Result<R>) -> Result<R> {
        match &self.explicit_noise {
            None => f(None),
            Some(noise) => with_cpu_f32(&noise.to_device(&Device::Cpu)?, |values| f(Some(values))),
        }
    }
}

/// One pass of an op over host data: the op's configuration with θ and the noise's source.
struct Pass<'a, S: Solver> {
    op: &'a ImleOp<S>,
    theta: &'a [f32],
    noise: NoiseSource<'a>,
}

/// Where a row's ε comes from.
struct NoiseSource<'a> {
    noise: Noise,
    key: NoiseKey,
    /// Explicit noise, draw rows.
    explicit: Option<&'a [f32]>,
    draws: usize,
}

impl NoiseSource<'_> {
    fn is_noisy(&self) -> bool {
        self.explicit.is_some() || self.noise != Noise::None
    }

    /// Writes the unscaled noise of (instance b, draw d) into `row`.
    fn draw(&self, b: usize, d: usize, row: &mut [f32]) {
        match self.explicit {
            Some(noise) => {
                let n = row.len();
                let start = (b * self.draws + d) * n;
                row.copy_from_slice(&noise[start..start + n]);
            }
            None => fill_instance(&self.noise, self.key, b as u32, d as u32, row),
        }
    }
}

impl<'a, S: Solver> Pass<'a, S> {
    fn new(op: &'a ImleOp<S>, theta: &'a [f32], explicit: Option<&'a [f32]>) -> Self {
        Pass {
            op,
            theta,
            noise: NoiseSource {
                noise: op.config.noise,
                key: op.key,
                explicit,
                draws: op.config.draws() as usize,
            },
        }
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
        alpha: f32,
        step: f32,
        g: &[f32],
        tau: f32,
    ) {
        let theta_b = &self.theta[b * self.op.dims.n..][..self.op.dims.n];
        let noisy = self.noise.is_noisy();
        if noisy {
            self.noise.draw(b, d, input);
        }
        solver_input(input, theta_b, alpha, step, g, tau, noisy);
    }

    /// Solves `out`'s rows, whose inputs `input(row, buffer)` writes, and reports an input
    /// that overflowed.
    fn solve(&self, input: &(dyn Fn(usize, &mut [f32]) + Sync), out: &mut [f32]) -> Result<()> {
        let overflow = InputOverflow::default();
        let solved = self.op.solver.solve_rows(
            &self.op.dims.instance,
            &|row, buffer| {
                input(row, buffer);
                overflow.note(buffer);
            },
            out,
        );
        overflow.check()?;
        solved
    }

    fn forward(&self) -> Result<(Vec<f32>, Shape)> {
        let Dims { batch, n, .. } = self.op.dims;
        let rows = Rows::new(&self.op.config, batch, batch);
        let samples = rows.samples;
        check_finite("θ", self.theta)?;
        self.op
            .solver
            .check_theta(self.theta, &self.op.dims.instance)?;
        let tau = self.op.config.sense.sign() * self.op.config.tau;
        let mut z = vec![0.0; batch * samples * n];
        self.solve(
            &|row, input| {
                let (b, s) = rows.of_sample_row(row);
                self.input(input, b, s, 1.0, 0.0, &[], tau);
            },
            &mut z,
        )?;
        // The per-sample solutions are the output itself, except for Reduce::Mean, where they
        // are kept for the backward pass.
        let (output, shape, samples_kept) = match self.op.config.reduce {
            Reduce::Mean => (
                mean_over_samples(z.clone(), samples, n),
                self.op.output_shape(batch),
                Some(z),
            ),
            Reduce::None => (z, self.op.output_shape(batch * samples), None),
        };
        // Set once: candle calls a forward exactly once per op value.
        let _ = self.op.saved.set(Saved {
            samples: samples_kept,
        });
        Ok((output, shape))
    }

    /// The I-MLE gradient: the target pass, the pass for the other side of each difference,
    /// then the sum of the differences per instance.
    fn backward(&self, z_out: &[f32], grad: &[f32]) -> Result<Vec<f32>> {
        let saved = self.op.saved.get().ok_or_else(|| {
            input_error("backward ran before forward (the op has no saved state)")
        })?;
        check_finite("the incoming gradient", grad)?;
        let Dims { batch, n, .. } = self.op.dims;
        let rows = Rows::new(&self.op.config, batch, grad.len() / n);
        let lambdas = row_lambdas(
            self.op.config.target,
            self.op.lambda,
            self.theta,
            grad,
            n,
            batch,
        );
        let targets = Targets {
            pass: self,
            rows,
            grad,
            lambdas: &lambdas,
        };
        let draw_rows = batch * rows.draws;
        // With one draw per instance the target solutions can go straight into the gradient's
        // buffer, which the last pass then turns into the gradient in place; otherwise they
        // go into a buffer the layer keeps between calls (a fresh one would page-fault in
        // on every call).
        let in_place = rows.draws == 1;
        let mut gradient = vec![0.0f32; batch * n];
        let mut pooled = if in_place {
            Vec::new()
        } else {
            self.op.state.take_buffer(draw_rows * n)
        };
        let minus: &mut [f32] = if in_place { &mut gradient } else { &mut pooled };
        targets.solve(-1.0, minus)?;
        let plus = self.other_side(&targets, saved.samples.as_deref().unwrap_or(z_out))?;
        let nonzeros = if in_place {
            targets.differences_in_place(&plus, &mut gradient)
        } else {
            let nonzeros = targets.sum_differences(&plus, &pooled, &mut gradient);
            self.op.state.give_back(pooled);
            nonzeros
        };
        self.op
            .state
            .record_density(nonzeros as f32 / draw_rows as f32, &self.op.config);
        Ok(gradient)
    }

    /// The side each target solution is subtracted from: the targets on the other side for
    /// the central difference (`MAP(α·θ + σλg + στ'ε)`); otherwise the forward solutions
    /// `MAP(θ + στε)`, saved for m = 0 and solved here for the marginal draws m ≥ 1.
    fn other_side<'b>(
        &self,
        targets: &Targets<'_, '_, S>,
        forward: &'b [f32],
    ) -> Result<OtherSide<'b>> {
        let rows = targets.rows;
        let n = self.op.dims.n;
        if self.op.config.symmetric {
            let mut plus = vec![0.0f32; self.op.dims.batch * rows.draws * n];
            targets.solve(1.0, &mut plus)?;
            return Ok(OtherSide::Targets(plus));
        }
        let mut extra = vec![0.0f32; self.op.dims.batch * rows.extra_draws() * n];
        if !extra.is_empty() {
            let tau = self.op.config.sense.sign() * self.op.config.tau;
            self.solve(
                &|row, input| {
                    let (b, d) = rows.of_extra_row(row);
                    self.input(input, b, d, 1.0, 0.0, &[], tau);
                },
                &mut extra,
            )?;
        }
        Ok(OtherSide::Forward { forward, extra })
    }
}

/// The target distribution's side of a backward pass.
struct Targets<'p, 'a, S: Solver> {
    pass: &'p Pass<'a, S>,
    rows: Rows,
    grad: &'p [f32],
    /// λ of each gradient row.
    lambdas: &'p [f32],
}

impl<S: Solver> Targets<'_, '_, S> {
    /// Solves every draw row's target on the `direction` side into `out`: +1 is
    /// `α·θ + σλg + στ'ε` (the central difference's other side), −1 is `α·θ − σλg + στ'ε`.
    fn solve(&self, direction: f32, out: &mut [f32]) -> Result<()> {
        let (pass, rows, n) = (self.pass, self.rows, self.pass.op.dims.n);
        let config = &pass.op.config;
        let sign = config.sense.sign();
        pass.solve(
            &|row, input| {
                let (b, d) = rows.of_draw_row(row);
                let gr = rows.grad_row(b, d);
                pass.input(
                    input,
                    b,
                    d,
                    config.alpha,
                    direction * sign * self.lambdas[gr],
                    &self.grad[gr * n..][..n],
                    sign * config.target_tau,
                );
            },
            out,
        )
    }

    /// The weight of draw d's difference in instance b's gradient: `σ/D`, halved for the
    /// central difference, divided by λ with `scale_by_lambda`.
    fn coefficient(&self, b: usize, d: usize) -> f32 {
        let config = &self.pass.op.config;
        let mut coefficient = config.sense.sign() / self.rows.draws as f32;
        if config.symmetric {
            coefficient *= 0.5;
        }
        if config.scale_by_lambda {
            // λ = 0 only when g = 0 (adaptive), where the term is 0 too.
            let lambda = self.lambdas[self.rows.grad_row(b, d)];
            coefficient = if lambda > 0.0 {
                coefficient / lambda
            } else {
                0.0
            };
        }
        coefficient
    }

    /// One draw per instance: `gradient` holds the target solutions and becomes
    /// `0 + c·(plus − minus)` in place (what [`Targets::sum_differences`] computes). Returns
    /// the number of non-zero differences.
    fn differences_in_place(&self, plus: &OtherSide<'_>, gradient: &mut [f32]) -> usize {
        let (rows, n) = (self.rows, self.pass.op.dims.n);
        let min_len = min_rows(self.pass.op.dims.batch, n);
        gradient
            .par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_len)
            .map(|(b, acc)| {
                let c = self.coefficient(b, 0);
                let mut nonzeros = 0;
                for (a, &p) in acc.iter_mut().zip(plus.row(rows, n, b, 0)) {
                    let difference = p - *a;
                    nonzeros += (difference != 0.0) as usize;
                    *a = 0.0 + c * difference;
                }
                nonzeros
            })
            .sum()
    }

    /// `gradient_b = Σ_d c_d·(plus − minus)`, summed in draw order per instance (the same
    /// order on any thread count). Returns the number of non-zero differences.
    fn sum_differences(&self, plus: &OtherSide<'_>, minus: &[f32], gradient: &mut [f32]) -> usize {
        let (rows, n) = (self.rows, self.pass.op.dims.n);
        let min_len = min_rows(self.pass.op.dims.batch, n * rows.draws);
        gradient
            .par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_len)
            .map(|(b, acc)| {
                let mut nonzeros = 0;
                for d in 0..rows.draws {
                    let c = self.coefficient(b, d);
                    let minus_row = &minus[rows.draw_row(b, d) * n..][..n];
                    for ((a, &p), &m) in acc.iter_mut().zip(plus.row(rows, n, b, d)).zip(minus_row)
                    {
                        let difference = p - m;
                        nonzeros += (difference != 0.0) as usize;
                        *a += c * difference;
                    }
                }
                nonzeros
            })
            .sum()
    }
}

/// The solutions each target solution is subtracted from.
enum OtherSide<'a> {
    /// The central difference's other targets, draw rows.
    Targets(Vec<f32>),
    /// The forward's solutions (sample rows) and those of the extra draws.
    Forward { forward: &'a [f32], extra: Vec<f32> },
}

impl OtherSide<'_> {
    /// The solution of instance b, draw d.
    fn row(&self, rows: Rows, n: usize, b: usize, d: usize) -> &[f32] {
        match self {
            OtherSide::Targets(plus) => &plus[rows.draw_row(b, d) * n..][..n],
            OtherSide::Forward { forward, .. } if d < rows.samples => {
                &forward[rows.sample_row(b, d) * n..][..n]
            }
            OtherSide::Forward { extra, .. } => &extra[rows.extra_row(b, d) * n..][..n],
        }
    }
}

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

/// Mean over groups of `group` consecutive rows: `[B·group, n] → [B, n]`, summed in a fixed
/// order so results do not depend on the thread count.
fn mean_over_samples(rows: Vec<f32>, group: usize, n: usize) -> Vec<f32> {
    if group == 1 {
        return rows;
    }
    let batch = rows.len() / (group * n);
    let mut out = vec![0.0f32; batch * n];
    let inverse = 1.0 / group as f32;
    out.par_chunks_mut(n)
        .enumerate()
        .with_min_len(min_rows(batch, n * group))
        .for_each(|(b, acc)| {
            for row in rows[b * group * n..(b + 1) * group * n].chunks_exact(n) {
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
            }
            acc.iter_mut().for_each(|a| *a *= inverse);
        });
    out
}
