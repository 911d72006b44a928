//! What users implement: [`MapSolver`] (one instance at a time) or [`BatchSolver`] (a whole
//! batch, wrapped in [`Batched`]), the configuration a generated solver type carries
//! ([`ConfiguredSolver`]), the GPU kernel a solver may name ([`DeviceKernel`]), and the one
//! comparison every built-in solver uses ([`numeric_cmp`], [`cmp_desc`]). How the ops drive
//! solvers is in [`plumbing`](crate::plumbing).

use crate::config::ImleConfig;
use candle_core::Result;
use std::cmp::Ordering;

/// A MAP solver for one problem instance: `z = argmax_{z ∈ C} ⟨z, θ⟩` (or `argmin` for a cost
/// solver used with [`Sense::Minimize`](crate::Sense::Minimize)).
///
/// The layer calls [`solve`](MapSolver::solve) in parallel over batch × samples, so it takes
/// `&self`; working memory that would otherwise be allocated on every call lives in
/// [`Scratch`](MapSolver::Scratch), made once per worker and reused.
///
/// **How solvers compare values.** Every built-in solver (and kernel) compares values
/// numerically, so **−0.0 = +0.0**, and **ties go to the lowest index** (the lower entry, edge
/// or cell). −0.0 is common in training (`−θ` for a cost, `x·0` with `x < 0`, a clamp of a
/// small negative), and a solution must not change with the sign of a zero. `f32::total_cmp`
/// breaks that rule (it puts −0.0 below +0.0), and so does ordering by a float's bits; sort
/// with [`cmp_desc`] (or [`numeric_cmp`]) instead, as the built-ins do.
///
/// ```
/// use imle_runtime::MapSolver;
///
/// /// Picks every positive entry (an unconstrained binary problem).
/// struct Positives;
///
/// impl MapSolver for Positives {
///     type Scratch = ();
///     fn name(&self) -> &str {
///         "positives"
///     }
///     fn solve(&self, theta: &[f32], _shape: &[usize], z: &mut [f32], _: &mut ()) -> candle_core::Result<()> {
///         for (zi, &t) in z.iter_mut().zip(theta) {
///             *zi = if t > 0.0 { 1.0 } else { 0.0 };
///         }
///         Ok(())
///     }
/// }
///
/// let mut z = [0.0; 3];
/// Positives.solve(&[1.0, -2.0, 0.5], &[3], &mut z, &mut ())?;
/// assert_eq!(z, [1.0, 0.0, 1.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub trait MapSolver: Send + Sync + 'static {
    /// Per-worker working memory (index buffers, heaps, ...); `()` if none is needed.
    type Scratch: Default + Send;

    /// A short name for error messages.
    fn name(&self) -> &str;

    /// Checks once per forward pass that instances of this shape (θ's dims after the batch dim)
    /// are valid for the solver, e.g. `k <= n` for top-k or a 2-D grid for shortest paths.
    fn check_instance(&self, _shape: &[usize]) -> Result<()> {
        Ok(())
    }

    /// Checks one instance of the layer's own θ -- the network's prediction, before noise and
    /// before the I-MLE target's shift -- once per forward pass (training and [`map`]).
    ///
    /// [`solve`](MapSolver::solve) only sees perturbed inputs (`θ + τ·ε`, `α·θ − λ·g + …`)
    /// and cannot tell a value the network predicted from one the noise made; this hook can.
    /// [`GridShortestPath`](crate::GridShortestPath) uses it to report negative costs in θ
    /// while clamping those that only the perturbation made negative. The default accepts
    /// everything. It runs on the CPU path: not where a [`device_kernel`] runs on the GPU.
    ///
    /// [`map`]: crate::ImleLayer::map
    /// [`device_kernel`]: MapSolver::device_kernel
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::{ImleConfig, ImleLayer, MapSolver, Noise};
    ///
    /// /// Picks every item worth more than it costs; the prices are its θ and must be positive.
    /// struct Bargains;
    /// impl MapSolver for Bargains {
    ///     type Scratch = ();
    ///     fn name(&self) -> &str { "bargains" }
    ///     fn check_theta(&self, theta: &[f32], _: &[usize]) -> candle_core::Result<()> {
    ///         match theta.iter().position(|&p| p <= 0.0) {
    ///             Some(i) => candle_core::bail!("price {} at {i} is not positive", theta[i]),
    ///             None => Ok(()),
    ///         }
    ///     }
    ///     fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> candle_core::Result<()> {
    ///         for (zi, &p) in z.iter_mut().zip(theta) {
    ///             *zi = if p < 1.0 { 1.0 } else { 0.0 };
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let layer = ImleLayer::new(Bargains, ImleConfig::new(Noise::Gumbel))?;
    /// let theta = Tensor::new(&[[0.5f32, 2.0], [0.5, -1.0]], &Device::Cpu)?;
    /// let err = layer.map(&theta).unwrap_err().to_string();
    /// assert!(err.contains("instance 1") && err.contains("price -1 at 1"), "{err}");
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    fn check_theta(&self, _theta: &[f32], _shape: &[usize]) -> Result<()> {
        Ok(())
    }

    /// The built-in GPU kernel that computes exactly this solver's MAP, if there is one.
    ///
    /// When θ is a CUDA tensor and the `cuda` feature is on, a layer whose solver names a kernel
    /// runs perturb-and-MAP and the backward pass on the GPU with it, and never calls
    /// [`MapSolver::solve`]. Every other solver runs on the CPU: θ and the incoming gradient
    /// are copied to the host once per call and the results copied back. The default is
    /// `None`; return a kernel only if it gives the same solutions as `solve`, ties included.
    ///
    /// ```
    /// use imle_runtime::{DeviceKernel, MapSolver, TopK};
    /// assert_eq!(TopK::new(3)?.device_kernel(), Some(DeviceKernel::TopK { k: 3 }));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    fn device_kernel(&self) -> Option<DeviceKernel> {
        None
    }

    /// Writes the solution for one instance `theta` (flattened, of `shape`) into `z`, which has
    /// the same length and arrives filled with zeros.
    ///
    /// A solution is any finite vector: 0/1 indicators (top-k, paths), integer counts (a
    /// bounded knapsack) or fractional values (an LP relaxation's vertex) all work, since
    /// I-MLE's gradient is a difference of two solutions, as in torch-imle and PyEPO, which
    /// check nothing about them either. The layer rejects only non-finite values; whether
    /// the values are feasible for the problem is the solver's to ensure.
    fn solve(
        &self,
        theta: &[f32],
        shape: &[usize],
        z: &mut [f32],
        scratch: &mut Self::Scratch,
    ) -> Result<()>;
}

/// Compares two values numerically: a total order on `f32` that, unlike `f32::total_cmp`,
/// makes **−0.0 equal to +0.0** (NaNs, which the layer never passes to a solver, still get a
/// fixed place: as in `total_cmp`).
///
/// ```
/// use imle_runtime::numeric_cmp;
/// use std::cmp::Ordering;
/// assert_eq!(numeric_cmp(-0.0, 0.0), Ordering::Equal);
/// assert_eq!((-0.0f32).total_cmp(&0.0), Ordering::Less); // the trap it avoids
/// assert_eq!(numeric_cmp(-1.0, 0.0), Ordering::Less);
/// ```
#[inline]
pub fn numeric_cmp(a: f32, b: f32) -> Ordering {
    // Adding +0.0 turns −0.0 into +0.0 and leaves every other value as it is.
    (a + 0.0).total_cmp(&(b + 0.0))
}

/// The order the built-in solvers rank `(index, value)` entries by: **larger value first,
/// −0.0 = +0.0, ties to the lower index**. A strict total order on distinct indices, so a sort
/// or a selection by it is deterministic; use it in your own solvers (see [`MapSolver`]).
///
/// ```
/// use imle_runtime::cmp_desc;
/// let theta = [-0.0f32, 2.0, 0.0, 2.0];
/// let mut order: Vec<usize> = (0..theta.len()).collect();
/// order.sort_by(|&a, &b| cmp_desc((a, theta[a]), (b, theta[b])));
/// assert_eq!(order, [1, 3, 0, 2]); // the zeros tie, so index 0 comes first
///
/// // The first largest entry (argmax with ties to the lowest index):
/// let best = theta.iter().copied().enumerate().min_by(|&a, &b| cmp_desc(a, b));
/// assert_eq!(best, Some((1, 2.0)));
/// ```
#[inline]
pub fn cmp_desc(a: (usize, f32), b: (usize, f32)) -> Ordering {
    numeric_cmp(b.1, a.1).then(a.0.cmp(&b.0))
}

/// A selection the CUDA kernels compute on the GPU, fused with the noise and the I-MLE
/// target (see [`MapSolver::device_kernel`]).
///
/// ```
/// use imle_runtime::{Argmax, DeviceKernel, MapSolver};
/// assert_eq!(Argmax.device_kernel(), Some(DeviceKernel::Argmax));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKernel {
    /// The indicator of the `k` largest entries, −0 = +0, ties to the lowest index, as
    /// [`TopK`](crate::TopK).
    TopK {
        /// The number of ones (1 ≤ k ≤ n).
        k: usize,
    },
    /// The one-hot indicator of the first largest entry (−0 = +0), as
    /// [`Argmax`](crate::Argmax); the same as `TopK { k: 1 }`.
    Argmax,
}

/// A solver that works on a whole batch at once: `[N, …]` inputs in, `[N, …]` solutions out,
/// on any device (e.g. a solver written with tensor operations). Wrap it in [`Batched`] to
/// use it in a layer.
///
/// ```
/// use candle_core::{D, Device, Result, Tensor};
/// use imle_runtime::{BatchSolver, Batched, ImleConfig, ImleLayer, Noise};
///
/// /// One-hot argmax of each row, with tensor operations.
/// struct TensorArgmax;
/// impl BatchSolver for TensorArgmax {
///     fn name(&self) -> &str { "tensor argmax" }
///     fn solve_batch(&self, theta: &Tensor) -> Result<Tensor> {
///         let max = theta.max_keepdim(D::Minus1)?;
///         theta.broadcast_eq(&max)?.to_dtype(theta.dtype())
///     }
/// }
///
/// let layer = ImleLayer::new(Batched(TensorArgmax), ImleConfig::new(Noise::Gumbel))?;
/// let z = layer.map(&Tensor::new(&[[0f32, 3.0, 1.0]], &Device::Cpu)?)?;
/// assert_eq!(z.to_vec2::<f32>()?, vec![vec![0.0, 1.0, 0.0]]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub trait BatchSolver: Send + Sync + 'static {
    /// A short name for error messages.
    fn name(&self) -> &str;

    /// Checks that instances of this shape are valid for the solver.
    fn check_instance(&self, _shape: &[usize]) -> Result<()> {
        Ok(())
    }

    /// Solves every row of `theta` (shape `[N, …instance]`, f32, on the CPU); must return a
    /// tensor of the same shape.
    fn solve_batch(&self, theta: &candle_core::Tensor) -> Result<candle_core::Tensor>;
}

/// Adapts a [`BatchSolver`] to a layer: the inputs of all rows are gathered into one tensor,
/// solved in one call, and checked (shape, finiteness, errors, panics).
///
/// ```
/// use candle_core::{Device, Result, Tensor};
/// use imle_runtime::{BatchSolver, Batched, Solver};
/// struct Ones;
/// impl BatchSolver for Ones {
///     fn name(&self) -> &str { "ones" }
///     fn solve_batch(&self, theta: &Tensor) -> Result<Tensor> { theta.ones_like() }
/// }
/// let mut z = [0.0f32; 4];
/// Batched(Ones).solve_rows(&[2], &|_, input: &mut [f32]| input.fill(0.5), &mut z)?;
/// assert_eq!(z, [1.0; 4]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batched<B>(pub B);

/// A solver type that carries the configuration of its layer: what `#[imle_layer]` generates.
/// It gives the layer [`Default`] (when the solver is `Default`) and
/// [`ImleLayer::configured`](crate::ImleLayer::configured).
///
/// ```
/// use imle_runtime::{ConfiguredSolver, ImleConfig, ImleLayer, MapSolver, Noise, TopK};
///
/// #[derive(Default)]
/// struct Top2;
/// impl MapSolver for Top2 {
///     type Scratch = Vec<u32>;
///     fn name(&self) -> &str { "top2" }
///     fn solve(&self, t: &[f32], s: &[usize], z: &mut [f32], w: &mut Vec<u32>) -> candle_core::Result<()> {
///         TopK::new(2)?.solve(t, s, z, w)
///     }
/// }
/// impl ConfiguredSolver for Top2 {
///     const CONFIG: ImleConfig = ImleConfig::new(Noise::Gumbel);
/// }
/// let layer = ImleLayer::<Top2>::default();
/// assert_eq!(layer.config().noise, Noise::Gumbel);
/// ```
pub trait ConfiguredSolver {
    /// The configuration the layer starts from (checked when the type was generated).
    const CONFIG: ImleConfig;
}

impl<B: ConfiguredSolver> ConfiguredSolver for Batched<B> {
    const CONFIG: ImleConfig = B::CONFIG;
}
