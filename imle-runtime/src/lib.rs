//! The runtime of `imle`: everything that runs when an I-MLE layer trains.
//!
//! * [`ImleLayer`]: a [`MapSolver`] plus an [`ImleConfig`], a differentiable Candle layer
//!   (perturb-and-MAP forward, I-MLE gradient backward, `MAP(θ)` in evaluation).
//! * [`noise`]: counter-based (Philox4x32-10) Gumbel, Gaussian and Sum-of-Gamma noise.
//! * Built-in solvers: [`TopK`], [`Argmax`], [`GridShortestPath`], [`DigraphShortestPath`],
//!   [`MaxSpanningTree`].
//! * [`perturbed`]: perturbed optimizers and the perturbed Fenchel-Young loss (Berthet et al.,
//!   2020) over any [`MapSolver`].
//! * [`loss`]: the Hamming loss in the form that trains ([`loss::hamming`]).
//! * [`spo`]: the SPO+ loss of predict-then-optimise ([`spo::SpoPlus`]), over any solver.
//! * [`StraightThrough`]: the straight-through estimator as a layer over any solver.
//! * [`init`]: reproducible initial weights for candle-nn models ([`init::seeded_init`]).
//! * [`cuda`]: the GPU path (feature `cuda`): noise and fused perturb-and-MAP top-k kernels.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use imle_runtime::{ImleConfig, ImleLayer, Noise, TopK};
//!
//! let config = ImleConfig::new(Noise::SumOfGamma { k: 2.0, terms: 10 }).with_lambda(10.0)?;
//! let layer = ImleLayer::new(TopK::new(2)?, config)?;
//! let theta = Var::new(&[[0.5f32, -1.0, 2.0, 0.0]], &Device::Cpu)?;
//! let z = layer.forward(theta.as_tensor())?;
//! let loss = (z - Tensor::new(&[[1f32, 1.0, 0.0, 0.0]], &Device::Cpu)?)?.sqr()?.sum_all()?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&theta).unwrap().dims(), &[1, 4]);
//! # Ok::<(), candle_core::Error>(())
//! ```

#![warn(missing_docs)]

mod config;
mod context;
pub mod cuda;
mod error;
mod host;
pub mod init;
mod layer;
pub mod loss;
#[doc(hidden)]
pub mod macro_support;
pub mod noise;
mod noise_tensor;
mod op;
pub mod perturbed;
pub mod plumbing;
mod solver;
mod solvers;
pub mod spo;
mod state;
mod straight_through;
mod target;

pub use config::{ImleConfig, Reduce, Sense};
pub use context::HasContext;
pub use layer::{Evaluation, ImleLayer, Training, repeat_samples};
pub use noise::{Noise, NoiseKey};
pub use noise_tensor::noise_tensor;
pub use plumbing::{Solver, copy_solution};
pub use solver::{
    BatchSolver, Batched, ConfiguredSolver, DeviceKernel, MapSolver, cmp_desc, numeric_cmp,
};
pub use solvers::{
    Argmax, DigraphScratch, DigraphShortestPath, DijkstraScratch, GridShortestPath, KruskalScratch,
    MaxSpanningTree, NegativeCosts, Neighbourhood, TopK,
};
pub use straight_through::StraightThrough;
pub use target::Target;
