//! Support for the code that `#[imle_layer]` generates. Not a public API: names here may
//! change in any release.
//!
//! The generated code stays thin: it names the user's function and types, and everything that
//! behaves (buffers, conversions, error mapping) lives here, written once.

use crate::config::{ImleConfig, Sense};
use crate::noise::Noise;
use crate::perturbed::{ConfiguredPerturbed, PerturbedConfig};
use crate::plumbing::{copy_solution, wrong_length};
use crate::solver::{ConfiguredSolver, MapSolver};
use crate::spo::ConfiguredSpo;
use std::fmt::Display;

/// Generated code implements the public trait under this path (kept for expansions written
/// before it became public).
pub use crate::context::HasContext;

pub use candle_core::{Error, Result, Tensor};

/// The element type of a generated per-instance solver: `f32` (the runtime's own, no copies)
/// or `f64` (θ and `z` go through per-worker `f64` buffers).
pub trait Element: Copy + Send + Sync + 'static {
    /// Per-worker working memory of the conversion.
    type Scratch: Default + Send;

    /// Calls `solve(θ, z)` in this element type and stores its solution (written into `z` or
    /// returned) in the layer's `z`. `solver` names the solver in errors.
    fn solve<R: Solution<Self>>(
        solver: &str,
        theta: &[f32],
        z: &mut [f32],
        scratch: &mut Self::Scratch,
        solve: impl FnOnce(&[Self], &mut [Self]) -> R,
    ) -> Result<()>;
}

impl Element for f32 {
    type Scratch = ();

    fn solve<R: Solution<f32>>(
        solver: &str,
        theta: &[f32],
        z: &mut [f32],
        _: &mut (),
        solve: impl FnOnce(&[f32], &mut [f32]) -> R,
    ) -> Result<()> {
        match solve(theta, z).into_output()? {
            Output::Written => Ok(()),
            Output::Returned(solution) => copy_solution(solver, &solution, z),
        }
    }
}

impl Element for f64 {
    type Scratch = (Vec<f64>, Vec<f64>);

    fn solve<R: Solution<f64>>(
        solver: &str,
        theta: &[f32],
        z: &mut [f32],
        (theta64, z64): &mut (Vec<f64>, Vec<f64>),
        solve: impl FnOnce(&[f64], &mut [f64]) -> R,
    ) -> Result<()> {
        theta64.clear();
        theta64.extend(theta.iter().map(|&t| f64::from(t)));
        z64.clear();
        z64.resize(z.len(), 0.0);
        let solution = match solve(theta64, z64).into_output()? {
            Output::Written => z64.as_slice(),
            Output::Returned(solution) => {
                // The solver allocated this one; reuse it as the buffer from now on.
                *z64 = solution;
                z64.as_slice()
            }
        };
        if solution.len() != z.len() {
            return Err(wrong_length(solver, solution.len(), z.len()));
        }
        z.iter_mut()
            .zip(solution)
            .for_each(|(out, &value)| *out = value as f32);
        Ok(())
    }
}

/// Where a solver's solution is: written into `z`, or returned.
pub enum Output<E> {
    /// The solver wrote `z`.
    Written,
    /// The solver returned its solution (its length is checked).
    Returned(Vec<E>),
}

/// What a generated per-instance solver may return: `()`, `Vec<E>`, or either inside a
/// `Result` whose error is `Display` (the error becomes a `candle_core::Error`, which the
/// runtime reports as `imle solver `Layer`: returned an error: ...`).
pub trait Solution<E> {
    /// The solution, or the solver's error as a candle error.
    fn into_output(self) -> Result<Output<E>>;
}

impl<E> Solution<E> for () {
    fn into_output(self) -> Result<Output<E>> {
        Ok(Output::Written)
    }
}

impl<E> Solution<E> for Vec<E> {
    fn into_output(self) -> Result<Output<E>> {
        Ok(Output::Returned(self))
    }
}

impl<E, T: Solution<E>, X: Display> Solution<E> for std::result::Result<T, X> {
    fn into_output(self) -> Result<Output<E>> {
        match self {
            Ok(solution) => solution.into_output(),
            Err(err) => Err(Error::Msg(err.to_string())),
        }
    }
}

/// What a generated batched solver may return: a `Tensor`, or a `Result<Tensor, E>` with
/// `E: Display` (`candle_core::Result<Tensor>` included).
pub trait BatchSolution {
    /// The batch of solutions, or the solver's error as a candle error.
    fn into_batch(self) -> Result<Tensor>;
}

impl BatchSolution for Tensor {
    fn into_batch(self) -> Result<Tensor> {
        Ok(self)
    }
}

impl<X: Display> BatchSolution for std::result::Result<Tensor, X> {
    fn into_batch(self) -> Result<Tensor> {
        self.map_err(|err| Error::Msg(err.to_string()))
    }
}

/// Compiles only for a `Sync` context: `#[imle_layer]` names it on the context parameter, so a
/// context that is not `Sync` (a `Cell`, an `Rc`) is reported there, and rustc's note
/// ("required by a bound in `context_must_be_sync_because_solver_calls_run_in_parallel`")
/// says why: the solver calls of one forward run on rayon's threads and share the context.
pub const fn context_must_be_sync_because_solver_calls_run_in_parallel<T: Sync + ?Sized>() {}

/// The stand-in solver of a layer whose `#[imle_layer]` attribute has errors: the attribute
/// reports them and still defines the layer type (as `ImleLayer<Invalid>`, or the chosen
/// estimator's type over `Invalid`), so that code using
/// the layer adds no errors of its own. It never runs, since the crate does not compile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Invalid;

impl MapSolver for Invalid {
    type Scratch = ();

    fn name(&self) -> &str {
        "invalid #[imle_layer]"
    }

    fn solve(&self, _: &[f32], _: &[usize], _: &mut [f32], _: &mut ()) -> Result<()> {
        Err(Error::Msg(
            "this layer's #[imle_layer] attribute has errors".into(),
        ))
    }
}

impl ConfiguredSolver for Invalid {
    const CONFIG: ImleConfig = ImleConfig::new(Noise::None);
}

impl ConfiguredPerturbed for Invalid {
    const PERTURBED_CONFIG: PerturbedConfig = PerturbedConfig::DEFAULT;
}

impl ConfiguredSpo for Invalid {
    const SENSE: Sense = Sense::Maximize;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<E: Element, R: Solution<E>>(
        theta: &[f32],
        solve: impl FnOnce(&[E], &mut [E]) -> R,
    ) -> Result<Vec<f32>> {
        let mut z = vec![0.0; theta.len()];
        E::solve("t", theta, &mut z, &mut E::Scratch::default(), solve)?;
        Ok(z)
    }

    #[test]
    fn every_output_form_lands_in_z() -> Result<()> {
        let theta = [1.0f32, -2.0, 3.0];
        let positive32 = |t: &[f32], z: &mut [f32]| {
            for (zi, &ti) in z.iter_mut().zip(t) {
                *zi = f32::from(ti > 0.0);
            }
        };
        assert_eq!(run(&theta, positive32)?, [1.0, 0.0, 1.0]);
        let written64 = |t: &[f64], z: &mut [f64]| z[2] = t[2] * 2.0;
        assert_eq!(run(&theta, written64)?, [0.0, 0.0, 6.0]);
        let returned64 = |t: &[f64], _: &mut [f64]| t.iter().map(|v| v + 1.0).collect::<Vec<_>>();
        assert_eq!(run(&theta, returned64)?, [2.0, -1.0, 4.0]);
        let ok = |_: &[f32], _: &mut [f32]| Ok::<_, String>(vec![0.0, 1.0, 0.0]);
        assert_eq!(run(&theta, ok)?, [0.0, 1.0, 0.0]);
        Ok(())
    }

    #[test]
    fn errors_and_wrong_lengths_are_candle_errors() {
        let failing = |_: &[f32], _: &mut [f32]| Err::<(), _>("no feasible solution");
        let err = run(&[1.0], failing).unwrap_err().to_string();
        assert_eq!(err, "no feasible solution");
        let short = |_: &[f64], _: &mut [f64]| vec![1.0];
        let err = run(&[1.0, 2.0], short).unwrap_err().to_string();
        assert!(
            err.contains("solver `t`") && err.contains("length 1"),
            "{err}"
        );
    }

    #[test]
    fn batch_results_map_their_errors() -> Result<()> {
        let t = Tensor::new(&[1f32], &candle_core::Device::Cpu)?;
        assert_eq!(t.clone().into_batch()?.to_vec1::<f32>()?, [1.0]);
        let err = Err::<Tensor, _>("bad batch").into_batch().unwrap_err();
        assert_eq!(err.to_string(), "bad batch");
        Ok(())
    }
}
