//! Solvers that own a context (a graph, prices, a cost matrix): the [`HasContext`] trait and
//! the `from_context` / `context` methods it gives every estimator's type.

use crate::layer::ImleLayer;
use crate::perturbed::{ConfiguredPerturbed, PerturbedOptimizer};
use crate::plumbing::Solver;
use crate::solver::{Batched, ConfiguredSolver, MapSolver};
use crate::spo::{ConfiguredSpo, SpoPlus};
use crate::straight_through::StraightThrough;

/// A solver that owns a context: what `#[imle_layer]` generates for a function whose first
/// parameter is `&Ctx` (a graph, a cost matrix, ...). It gives every estimator's type over
/// the solver a `from_context` constructor and a `context` accessor
/// ([`ImleLayer::from_context`], [`StraightThrough::from_context`],
/// [`PerturbedOptimizer::from_context`], [`SpoPlus::from_context`]).
///
/// Implement it by hand for a hand-written solver that holds data, to get the same
/// constructors:
///
/// ```
/// use imle_runtime::{ConfiguredSolver, HasContext, ImleConfig, ImleLayer, MapSolver, Noise};
///
/// /// The item with the largest score minus its price (prices: the context).
/// struct Cheapest(Vec<f32>);
/// impl MapSolver for Cheapest {
///     type Scratch = ();
///     fn name(&self) -> &str { "cheapest" }
///     fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> candle_core::Result<()> {
///         let score = |i: usize| theta[i] - self.0[i];
///         z[(0..theta.len()).fold(0, |b, i| if score(i) > score(b) { i } else { b })] = 1.0;
///         Ok(())
///     }
/// }
/// impl ConfiguredSolver for Cheapest {
///     const CONFIG: ImleConfig = ImleConfig::new(Noise::Gumbel);
/// }
/// impl HasContext for Cheapest {
///     type Context = Vec<f32>;
///     fn from_context(prices: Vec<f32>) -> Self { Cheapest(prices) }
///     fn context(&self) -> &Vec<f32> { &self.0 }
/// }
/// let layer = ImleLayer::<Cheapest>::from_context(vec![0.5, 0.0]);
/// assert_eq!(layer.context(), &[0.5, 0.0]);
/// ```
pub trait HasContext {
    /// The context the solver function borrows on every call.
    type Context;

    /// The solver around `context`.
    fn from_context(context: Self::Context) -> Self;

    /// The context.
    fn context(&self) -> &Self::Context;
}

impl<B: HasContext> HasContext for Batched<B> {
    type Context = B::Context;

    fn from_context(context: B::Context) -> Self {
        Batched(B::from_context(context))
    }

    fn context(&self) -> &B::Context {
        self.0.context()
    }
}

/// Layers of `#[imle_layer]` solvers that take a context (a leading `&Ctx` parameter).
impl<S: Solver + ConfiguredSolver + HasContext> ImleLayer<S> {
    /// The layer with the attribute's configuration around `context`, which the solver
    /// function receives as its first argument on every call. `Layer::default()` also exists
    /// when the context type is `Default`.
    ///
    /// ```
    /// use imle_runtime::HasContext;
    /// use imle_runtime::{ConfiguredSolver, ImleConfig, ImleLayer, MapSolver, Noise};
    ///
    /// // What `#[imle_layer(noise = "gumbel")] fn pick(prices: &Vec<f32>, theta: &[f32],
    /// // z: &mut [f32])` generates, written by hand.
    /// struct PickSolver(Vec<f32>);
    /// impl MapSolver for PickSolver {
    ///     type Scratch = ();
    ///     fn name(&self) -> &str { "Pick" }
    ///     fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> candle_core::Result<()> {
    ///         let score = |i: usize| theta[i] - self.0[i];
    ///         z[(0..theta.len()).fold(0, |b, i| if score(i) > score(b) { i } else { b })] = 1.0;
    ///         Ok(())
    ///     }
    /// }
    /// impl ConfiguredSolver for PickSolver {
    ///     const CONFIG: ImleConfig = ImleConfig::new(Noise::Gumbel);
    /// }
    /// impl HasContext for PickSolver {
    ///     type Context = Vec<f32>;
    ///     fn from_context(prices: Vec<f32>) -> Self { PickSolver(prices) }
    ///     fn context(&self) -> &Vec<f32> { &self.0 }
    /// }
    ///
    /// let layer = ImleLayer::<PickSolver>::from_context(vec![1.0, 0.0]);
    /// assert_eq!(layer.context(), &[1.0, 0.0]);
    /// assert_eq!(layer.config().noise, Noise::Gumbel);
    /// ```
    pub fn from_context(context: S::Context) -> Self {
        Self::configured(S::from_context(context))
    }

    /// The context the solver was built with (see [`ImleLayer::from_context`]).
    pub fn context(&self) -> &S::Context {
        self.solver().context()
    }
}

/// Straight-through layers of `#[imle_layer(estimator = "straight_through")]` solvers that
/// take a context.
impl<S: Solver + ConfiguredSolver + HasContext> StraightThrough<S> {
    /// The estimator with the attribute's configuration around `context` (see
    /// [`ImleLayer::from_context`]).
    pub fn from_context(context: S::Context) -> Self {
        Self::configured(S::from_context(context))
    }

    /// The context the solver was built with.
    pub fn context(&self) -> &S::Context {
        self.solver().context()
    }
}

/// Perturbed optimizers of `#[imle_layer(estimator = "perturbed")]` solvers that take a
/// context.
impl<S: MapSolver + ConfiguredPerturbed + HasContext> PerturbedOptimizer<S> {
    /// The optimizer with the attribute's configuration around `context` (see
    /// [`ImleLayer::from_context`]).
    pub fn from_context(context: S::Context) -> Self {
        Self::configured(S::from_context(context))
    }

    /// The context the solver was built with.
    pub fn context(&self) -> &S::Context {
        self.solver().context()
    }
}

/// SPO+ losses of `#[imle_layer(estimator = "spo_plus")]` solvers that take a context.
impl<S: Solver + ConfiguredSpo + HasContext> SpoPlus<S> {
    /// SPO+ with the attribute's sense over the solver around `context` (see
    /// [`ImleLayer::from_context`]).
    pub fn from_context(context: S::Context) -> Self {
        Self::configured(S::from_context(context))
    }

    /// The context the solver was built with.
    pub fn context(&self) -> &S::Context {
        self.solver().context()
    }
}
