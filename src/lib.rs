//! # imle
//!
//! Implicit Maximum Likelihood Estimation (I-MLE, Niepert, Minervini & Franceschi, NeurIPS
//! 2021) for [Candle](https://github.com/huggingface/candle): put a discrete, black-box MAP
//! solver (top-k, shortest path, spanning tree, your own) inside a network and train through
//! it. Forward: perturb-and-MAP sampling `z = MAP(θ + τ·ε)`. Backward: the difference of two
//! solver calls with the same noise, `MAP(θ + τ·ε) − MAP(θ − λ·∂L/∂z + τ'·ε)`.
//!
//! This crate re-exports the runtime ([`imle_runtime`]); see [`ImleLayer`] for the layer,
//! [`ImleConfig`] for every option and [`MapSolver`] to plug in a solver. With the `cuda`
//! feature, layers on CUDA tensors run [`TopK`] and [`Argmax`] as fused GPU kernels, and any
//! other solver through one host round trip per call (see [`cuda`]).
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

//! A training loop (the README's), with the loss reduced by a mean and the normalized
//! target, whose λ does not depend on that choice:
//!
//! ```
//! use candle_core::{DType, Device, Module, ModuleT, Tensor};
//! use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
//! use imle::loss::{Reduction, hamming};
//! use imle::{ImleConfig, ImleLayer, Noise, Target, TopK};
//!
//! let x = Tensor::randn(0f32, 1.0, (32, 8), &Device::Cpu)?;
//! let layer = ImleLayer::new(
//!     TopK::new(3)?,
//!     ImleConfig::new(Noise::sum_of_gamma(3.0))
//!         .with_target(Target::Normalized)?
//!         .with_lambda(1.0)?
//!         .with_samples(4)?,
//! )?;
//! let truth = Tensor::randn(0f32, 1.0, (8, 10), &Device::Cpu)?;
//! let y = layer.map(&x.matmul(&truth)?)?; // labels: the top 3 of a hidden linear score
//!
//! let varmap = VarMap::new();
//! let net = candle_nn::linear(8, 10, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
//! imle::init::seeded_init(&varmap.data().lock().unwrap(), 0)?; // reproducible initial weights
//! let mut optimizer = AdamW::new(varmap.all_vars(), ParamsAdamW::default())?;
//! for _ in 0..3 {
//!     let z = layer.forward(&net.forward(&x)?)?; // [32·4, 10]
//!     let loss = hamming(&z, &layer.repeat_for_samples(&y)?, Reduction::Mean)?;
//!     optimizer.backward_step(&loss)?;
//!     assert!(layer.gradient_density() > 0.0, "a live gradient");
//! }
//! let z_eval = layer.forward_t(&net.forward(&x)?, false)?; // evaluation: MAP(θ)
//! assert_eq!(z_eval.dims(), &[32, 10]);
//! # Ok::<(), candle_core::Error>(())
//! ```

#![warn(missing_docs)]

pub use imle_runtime::*;

/// Turns a solver function into an I-MLE layer type. The reference (signatures, keys with their
/// defaults, compile-time checks) follows these examples.
///
/// ```
/// use candle_core::{Device, ModuleT, Tensor, Var};
/// use imle::imle_layer;
///
/// /// Top-5 of θ, as a 0/1 mask.
/// #[imle_layer(noise = "sum_of_gamma", k = 5, lambda = 10, samples = 4)]
/// fn top5(theta: &[f32], z: &mut [f32]) {
///     let mut order: Vec<usize> = (0..theta.len()).collect();
///     // Larger first, −0.0 = +0.0, ties to the lower index (`total_cmp` puts −0 below +0).
///     order.sort_by(|&a, &b| imle::cmp_desc((a, theta[a]), (b, theta[b])));
///     for &i in &order[..5] {
///         z[i] = 1.0;
///     }
/// }
///
/// let layer = Top5::default();
/// assert_eq!(layer.config().samples, 4);
/// let theta = Var::rand(0f32, 1.0, (2, 10), &Device::Cpu)?;
/// let z = layer.forward(theta.as_tensor())?; // [2·4, 10]: 4 samples per row
/// assert_eq!(z.sum_all()?.to_scalar::<f32>()?, 40.0);
/// let target = layer.repeat_for_samples(&Tensor::ones((2, 10), candle_core::DType::F32, &Device::Cpu)?)?;
/// let grads = (z - target)?.sqr()?.sum_all()?.backward()?;
/// assert_eq!(grads.get(&theta).unwrap().dims(), &[2, 10]);
///
/// let z_eval = layer.forward_t(theta.as_tensor(), false)?; // MAP(θ), no noise
/// assert_eq!(z_eval.dims(), &[2, 10]);
/// let tuned = Top5::default().with_lambda(20.0)?.with_seed(7); // run-time overrides
/// assert_eq!(tuned.config().lambda, 20.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// A fallible solver that returns its solution, and one that owns a context:
///
/// ```
/// use candle_core::{Device, Tensor};
/// use imle::imle_layer;
///
/// /// The single best item, or an error when every score is negative.
/// #[imle_layer(noise = "gumbel", name = "BestItem")]
/// pub fn best(theta: &[f32]) -> Result<Vec<f32>, String> {
///     // The first largest score (−0.0 = +0.0): the least in `cmp_desc`'s order.
///     let (best, score) = theta.iter().copied().enumerate().min_by(|&a, &b| imle::cmp_desc(a, b)).unwrap();
///     if score < 0.0 {
///         return Err(format!("no item is worth taking (best score {score})"));
///     }
///     let mut z = vec![0.0; theta.len()];
///     z[best] = 1.0;
///     Ok(z)
/// }
///
/// let theta = Tensor::new(&[[-1f32, -2.0]], &Device::Cpu)?;
/// let err = BestItem::default().map(&theta).unwrap_err().to_string();
/// assert!(err.contains("`BestItem`") && err.contains("no item is worth taking"), "{err}");
///
/// /// Items that fit a budget: the layer owns the prices.
/// pub struct Prices { costs: Vec<f32>, budget: f32 }
///
/// /// Greedy: the best value per cost first, while the budget lasts.
/// #[imle_layer(noise = "gaussian", tau = 0.5)]
/// pub fn within_budget(prices: &Prices, theta: &[f32], z: &mut [f32]) {
///     let mut order: Vec<usize> = (0..theta.len()).filter(|&i| theta[i] > 0.0).collect();
///     let ratio = |i: usize| theta[i] / prices.costs[i];
///     order.sort_by(|&a, &b| imle::cmp_desc((a, ratio(a)), (b, ratio(b))));
///     let mut left = prices.budget;
///     for i in order {
///         if prices.costs[i] <= left {
///             left -= prices.costs[i];
///             z[i] = 1.0;
///         }
///     }
/// }
///
/// let layer = WithinBudget::from_context(Prices { costs: vec![1.0, 2.0, 3.0], budget: 3.0 });
/// assert_eq!(layer.context().budget, 3.0);
/// let z = layer.map(&Tensor::new(&[[1f32, 4.0, 3.0]], &Device::Cpu)?)?;
/// assert_eq!(z.to_vec2::<f32>()?, vec![vec![1.0, 1.0, 0.0]]);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// The same solver under other estimators, one key each (see Estimators below):
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use imle::imle_layer;
/// use imle::loss::Reduction;
///
/// fn best(theta: &[f32], z: &mut [f32]) {
///     let (i, _) = theta.iter().copied().enumerate().min_by(|&a, &b| imle::cmp_desc(a, b)).unwrap();
///     z[i] = 1.0;
/// }
///
/// #[imle_layer(estimator = "straight_through")] // MAP(θ) forward, identity backward
/// fn best_ste(theta: &[f32], z: &mut [f32]) { best(theta, z) }
///
/// #[imle_layer(estimator = "blackbox", lambda = 20)] // ImleConfig::blackbox(20.0)
/// fn best_bb(theta: &[f32], z: &mut [f32]) { best(theta, z) }
///
/// #[imle_layer(estimator = "perturbed", sigma = 0.5, samples = 8)] // Berthet et al.
/// fn best_perturbed(theta: &[f32], z: &mut [f32]) { best(theta, z) }
///
/// #[imle_layer(estimator = "spo_plus")] // Elmachtoub & Grigas
/// fn best_spo(theta: &[f32], z: &mut [f32]) { best(theta, z) }
///
/// let theta = Var::new(&[[0.5f32, 2.0, 1.0]], &Device::Cpu)?;
/// let y = Tensor::new(&[[0f32, 0.0, 1.0]], &Device::Cpu)?; // the wanted solution
/// let z = BestSte::default().forward(theta.as_tensor())?; // as an ImleLayer's forward
/// let z = BestBb::default().forward(theta.as_tensor())?;
/// let fy = BestPerturbed::default().fenchel_young_loss(theta.as_tensor(), &y, Reduction::Sum)?;
/// let c = Tensor::new(&[[0f32, 1.0, 3.0]], &Device::Cpu)?; // true values, best: y
/// let spo = BestSpo::default().loss(theta.as_tensor(), &c, &y, Reduction::Sum)?;
/// assert!(spo.to_scalar::<f32>()? > 0.0);
/// # let _ = (z, fy);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// Mistakes are compile errors that point at the token:
///
/// ```compile_fail
/// #[imle::imle_layer(noise = "sum_of_gamma", lamda = 10)] // no `k`; did you mean `lambda`?
/// fn top5(theta: &[f32], z: &mut [f32]) {}
/// ```
///
/// ```compile_fail
/// // `lambda` does not apply to estimator = "spo_plus": SPO+ ... its only key is `sense`
/// #[imle::imle_layer(estimator = "spo_plus", lambda = 10)]
/// fn top5(theta: &[f32], z: &mut [f32]) {}
/// ```
pub use imle_macros::imle_layer;
