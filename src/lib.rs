//! # imle
//!
//! Implicit Maximum Likelihood Estimation (I-MLE, Niepert, Minervini & Franceschi, NeurIPS
//! 2021) for [Candle](https://github.com/huggingface/candle): put a discrete, black-box MAP
//! solver (top-k, shortest path, spanning tree, your own) inside a network and train through
//! it. Forward: perturb-and-MAP sampling `z = MAP(θ + τ·ε)`. Backward: the difference of two
//! solver calls with the same noise, `MAP(θ + τ·ε) − MAP(θ − λ·∂L/∂z + τ'·ε)`.
//!
//! This crate re-exports the runtime ([`imle_runtime`]); see [`ImleLayer`] for the layer,
//! [`ImleConfig`] for every option and [`MapSolver`] to plug in a solver.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use imle::{ImleConfig, ImleLayer, Noise, TopK};
//!
//! let layer = ImleLayer::new(
//!     TopK::new(2)?,
//!     ImleConfig::new(Noise::SumOfGamma { k: 2.0, terms: 10 }).with_samples(4)?,
//! )?;
//! let theta = Var::new(&[[0.3f32, 1.2, -0.4, 0.9]], &Device::Cpu)?;
//! let z = layer.forward(theta.as_tensor())?; // [4, 4]: one row per sample
//! let target = layer.repeat_for_samples(&Tensor::new(&[[1f32, 0.0, 0.0, 1.0]], &Device::Cpu)?)?;
//! let loss = (z - target)?.sqr()?.sum_all()?;
//! let grad = loss.backward()?.get(&theta).unwrap().clone();
//! assert_eq!(grad.dims(), &[1, 4]);
//! # Ok::<(), candle_core::Error>(())
//! ```

#![warn(missing_docs)]

pub use imle_runtime::*;
