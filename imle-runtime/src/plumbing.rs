//! The plumbing between a layer's op and its solver (rayon's name for the traits below the
//! public surface): [`Solver`], which runs a solver over many rows at once, its
//! implementations for every [`MapSolver`] (in parallel, with per-worker buffers) and every
//! [`Batched`] solver (one call), and the checks every solution passes.
//!
//! Users implement [`MapSolver`] or [`BatchSolver`]; the ops call [`Solver::solve_rows`].

use crate::error::{panic_message, solver_error};
use crate::solver::{BatchSolver, Batched, DeviceKernel, MapSolver};
use candle_core::Result;
use rayon::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The shapes of a batch of instances: what every op over a solver needs.
#[derive(Clone, Debug)]
pub(crate) struct Dims {
    pub(crate) batch: usize,
    /// The shape of one instance (θ's dims after the batch dim).
    pub(crate) instance: Vec<usize>,
    /// Elements per instance.
    pub(crate) n: usize,
}

/// Passes with fewer values than this run in the calling thread.
const PARALLEL_MIN_VALUES: usize = 1 << 14;

/// The `with_min_len` of a rayon pass over `rows` rows of `n` values: 1 (split freely), or
/// `rows` when the pool has one thread or the pass has fewer than 16 384 values. rayon then
/// runs the whole pass in the calling thread without handing it to the pool: with one
/// thread nothing runs in parallel anyway, and the hand-over costs two context switches
/// (tens of µs on a VM) per pass, more than a small pass takes. Which rows go together
/// never changes a value: every pass here writes each row on its own, and its sums run in a
/// fixed order within a row.
pub(crate) fn min_rows(rows: usize, n: usize) -> usize {
    if rayon::current_num_threads() == 1 || rows.saturating_mul(n) < PARALLEL_MIN_VALUES {
        rows.max(1)
    } else {
        1
    }
}

/// As [`min_rows`] for solver calls, whose cost per row is unknown: only a one-thread pool
/// keeps them in the calling thread.
fn min_solver_rows(rows: usize) -> usize {
    if rayon::current_num_threads() == 1 {
        rows.max(1)
    } else {
        1
    }
}

/// How a layer runs its solver over many instances at once (batch × samples).
///
/// Implemented for every [`MapSolver`] (one call per instance, in parallel with rayon, with
/// per-worker buffers) and, through [`Batched`], for every [`BatchSolver`] (one call on the
/// whole batch). You rarely implement it yourself.
///
/// ```
/// use imle_runtime::{Solver, TopK};
/// let top1 = TopK::new(1)?;
/// let theta = [0.0f32, 2.0, 1.0, /* instance 2: */ 5.0, 0.0, 0.0];
/// let mut z = [0.0f32; 6];
/// top1.solve_rows(&[3], &|row, input: &mut [f32]| input.copy_from_slice(&theta[row * 3..][..3]), &mut z)?;
/// assert_eq!(z, [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub trait Solver: Send + Sync + 'static {
    /// A short name for error messages.
    fn name(&self) -> &str;

    /// Checks once per call that instances of this shape are valid for the solver.
    fn check_instance(&self, shape: &[usize]) -> Result<()>;

    /// Checks the layer's own θ (all its instances of `shape`, flattened, before noise) once
    /// per forward pass; see [`MapSolver::check_theta`]. The default accepts everything.
    fn check_theta(&self, _theta: &[f32], _shape: &[usize]) -> Result<()> {
        Ok(())
    }

    /// The built-in GPU kernel equivalent to this solver, if any (see
    /// [`MapSolver::device_kernel`]).
    fn device_kernel(&self) -> Option<DeviceKernel> {
        None
    }

    /// Solves `out.len() / n` instances of `shape` (n elements each) into the rows of `out`;
    /// `input(row, buffer)` writes the input of each row. Every solution is checked: solver
    /// errors, panics and non-finite values become errors naming the solver.
    fn solve_rows(
        &self,
        shape: &[usize],
        input: &(dyn Fn(usize, &mut [f32]) + Sync),
        out: &mut [f32],
    ) -> Result<()>;
}

impl<S: MapSolver> Solver for S {
    fn name(&self) -> &str {
        MapSolver::name(self)
    }

    fn check_instance(&self, shape: &[usize]) -> Result<()> {
        MapSolver::check_instance(self, shape)
    }

    fn check_theta(&self, theta: &[f32], shape: &[usize]) -> Result<()> {
        let n = shape.iter().product::<usize>();
        let name = MapSolver::name(self);
        // In order, so the error names the first bad instance whatever the thread count; a
        // scan of θ costs little next to drawing the noise or solving.
        for (b, row) in theta.chunks(n).enumerate() {
            let what = || format!("instance {b} of its unperturbed input");
            match catch_unwind(AssertUnwindSafe(|| {
                MapSolver::check_theta(self, row, shape)
            })) {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    return Err(solver_error(name, format!("rejected {}: {err}", what())));
                }
                Err(payload) => {
                    return Err(solver_error(
                        name,
                        format!(
                            "panicked checking {}: {}",
                            what(),
                            panic_message(payload.as_ref())
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn device_kernel(&self) -> Option<DeviceKernel> {
        MapSolver::device_kernel(self)
    }

    fn solve_rows(
        &self,
        shape: &[usize],
        input: &(dyn Fn(usize, &mut [f32]) + Sync),
        out: &mut [f32],
    ) -> Result<()> {
        let n = shape.iter().product::<usize>();
        let min_len = min_solver_rows(out.len() / n.max(1));
        out.par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_len)
            .try_for_each_init(
                || (vec![0.0f32; n], S::Scratch::default()),
                |(buffer, scratch), (row, z)| {
                    input(row, buffer);
                    z.fill(0.0);
                    let name = MapSolver::name(self);
                    guarded(name, || MapSolver::solve(self, buffer, shape, z, scratch))?;
                    check_solution(name, z)
                },
            )
    }
}

impl<B: BatchSolver> Solver for Batched<B> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn check_instance(&self, shape: &[usize]) -> Result<()> {
        self.0.check_instance(shape)
    }

    fn solve_rows(
        &self,
        shape: &[usize],
        input: &(dyn Fn(usize, &mut [f32]) + Sync),
        out: &mut [f32],
    ) -> Result<()> {
        let n = shape.iter().product::<usize>();
        let rows = out.len() / n;
        let mut inputs = vec![0.0f32; out.len()];
        inputs
            .par_chunks_mut(n)
            .enumerate()
            .with_min_len(min_rows(rows, n))
            .for_each(|(row, buffer)| input(row, buffer));
        let mut dims = vec![rows];
        dims.extend_from_slice(shape);
        let theta = candle_core::Tensor::from_vec(inputs, dims, &candle_core::Device::Cpu)?;
        let name = self.0.name();
        let solution = guarded(name, || self.0.solve_batch(&theta))?;
        if solution.dims() != theta.dims() {
            return Err(solver_error(
                name,
                format!(
                    "returned a solution of shape {:?} for inputs of shape {:?}",
                    solution.dims(),
                    theta.dims()
                ),
            ));
        }
        let solution = solution
            .to_device(&candle_core::Device::Cpu)?
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        out.copy_from_slice(&solution);
        check_solution(name, out)
    }
}

/// Runs a solver call; its error or panic becomes an error naming the solver. Nothing is
/// shared across the unwind (each worker's buffers are its own), so no state is poisoned.
fn guarded<T>(solver: &str, call: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        // An error the runtime already attributed to this solver (a wrong-length solution, a
        // built-in's bad cost) passes unchanged: wrapping it would repeat the prefix and call
        // a bad return value "an error".
        Ok(Err(candle_core::Error::Msg(message)))
            if message.starts_with(&format!("imle solver `{solver}`: ")) =>
        {
            Err(candle_core::Error::Msg(message))
        }
        Ok(Err(err)) => Err(solver_error(solver, format!("returned an error: {err}"))),
        Err(payload) => Err(solver_error(
            solver,
            format!("panicked: {}", panic_message(payload.as_ref())),
        )),
    }
}

/// Errors for a non-finite entry in a solution.
fn check_solution(solver: &str, z: &[f32]) -> Result<()> {
    match z.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(bad) => Err(solver_error(
            solver,
            format!("wrote a non-finite value ({}) at index {bad}", z[bad]),
        )),
    }
}

/// Copies a solution returned as a `Vec` into the output row, checking its length: the adapter
/// for solvers written as `fn(&[f32]) -> Vec<f32>`.
///
/// ```
/// use imle_runtime::copy_solution;
/// let mut z = [0.0f32; 3];
/// copy_solution("mine", &[0.0, 1.0, 0.0], &mut z)?;
/// assert_eq!(z, [0.0, 1.0, 0.0]);
/// assert!(copy_solution("mine", &[1.0], &mut z).is_err());
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn copy_solution(solver: &str, solution: &[f32], z: &mut [f32]) -> Result<()> {
    if solution.len() != z.len() {
        return Err(wrong_length(solver, solution.len(), z.len()));
    }
    z.copy_from_slice(solution);
    Ok(())
}

/// The error for a solution whose length is not the instance's.
pub(crate) fn wrong_length(solver: &str, got: usize, expected: usize) -> candle_core::Error {
    solver_error(
        solver,
        format!("returned a solution of length {got} for an instance of {expected} elements"),
    )
}
