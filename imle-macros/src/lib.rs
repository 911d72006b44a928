//! The `#[imle_layer(...)]` attribute of [`imle`](https://docs.rs/imle): turns a solver
//! function into an I-MLE layer type. Use it through `imle::imle_layer`; the generated code
//! refers to the `imle` crate.
//!
//! The attribute is thin: `attr.rs` parses the arguments, `keys.rs` names its keys and the
//! values of its choice keys as enums, `valid.rs` checks the arguments against them (with an
//! error on the offending token for each problem), `ast.rs` reads the function's signature,
//! and `expand.rs` emits a few items that delegate to `imle`'s runtime.

mod ast;
mod attr;
mod errors;
mod expand;
mod keys;
mod valid;

use proc_macro::TokenStream;

/// Makes an I-MLE layer type out of a MAP solver function.
///
/// On `fn top5(...)` the attribute leaves the function as it is and adds (with the default
/// `estimator = "imle"`; see Estimators for the others):
///
/// * `type Top5 = ImleLayer<Top5Solver>`: the layer, with the function's visibility and doc
///   comments. `Top5::default()` has the attribute's configuration; `layer.forward(&θ)`
///   trains (perturb-and-MAP, with the I-MLE gradient), `layer.forward_t(&θ, false)` or
///   `layer.map(&θ)` evaluates `MAP(θ)`, and the `with_*` methods change the configuration at
///   run time (`Top5::default().with_lambda(20.0)?.with_seed(7)`).
/// * `struct Top5Solver`: a `MapSolver` (a `BatchSolver` for the batched form) that calls the
///   function, and a `ConfiguredSolver` whose `CONFIG` is the attribute's configuration, built
///   and checked at compile time. `ImleLayer::new(Top5Solver, config)` uses another config.
///
/// The layer's name is the function's in UpperCamelCase (`top_k` gives `TopK` and
/// `TopKSolver`) unless `name = "..."` says otherwise; solver errors name it. The generated
/// names share the module with your own items: a context struct `Knapsack` beside
/// `fn knapsack` collides with the generated `type Knapsack` (rustc's E0428, "defined
/// multiple times"); give the layer another name with `name = "KnapsackLayer"`.
///
/// # Solver signatures
///
/// θ (`theta`) is one instance, flattened; `z` is where the solution goes, zeroed before each
/// call. The function is called in parallel over batch × samples.
///
/// ```text
/// fn(theta: &[f32], z: &mut [f32])                  writes the solution into z
/// fn(theta: &[f32]) -> Vec<f32>                     returns it (its length is checked)
/// fn(theta: &[f32], z: &mut [f32]) -> Result<(), E>
/// fn(theta: &[f32]) -> Result<Vec<f32>, E>          fallible: any E: Display
/// fn(context: &Ctx, theta: &[f32], ...)             a leading context (see below)
/// fn(theta: &[f32], shape: &[usize], ...)           the instance shape (θ's dims after
///                                                   the batch dim), before z
/// fn(theta: &Tensor) -> candle_core::Result<Tensor> batched: one call on the whole
///                                                   [N, ...] batch (also `-> Tensor`)
/// ```
///
/// `f64` works in place of `f32` (θ and z are converted, through per-thread buffers). `Result`
/// may be any `Result` (`std`, `candle_core`, `anyhow`, ...); a solver's error arrives as a
/// `candle_core::Error` reading ``imle solver `Top5`: returned an error: ...``. A panic in
/// the solver becomes such an error too. `const fn` and `extern "ABI" fn` are fine; generic,
/// `async` and `unsafe` functions and methods are not.
///
/// **Context.** With a leading `&Ctx` parameter (a graph, a cost matrix: any sized type that
/// is `Send + Sync + 'static`) the solver type owns a `Ctx`: build the layer with
/// `Layer::from_context(ctx)` and read it back with `layer.context()`. `Layer::default()`
/// exists when `Ctx: Default`. `Ctx` must be `Sync` because the solver calls run in parallel
/// on rayon's threads and all read the same context; a `Ctx` holding a `Cell` or `Rc` is a
/// compile error on the context parameter (use a `Mutex`, atomics or `Arc` instead).
///
/// # Estimators
///
/// `estimator = "..."` chooses what is built over the same generated `Top5Solver`, so that
/// the same solver can be tried under each by changing one key:
///
/// | `estimator` | `type Top5 =` | the solver type carries | forward / loss |
/// |---|---|---|---|
/// | `"imle"` (default) | `ImleLayer<Top5Solver>` | `ConfiguredSolver::CONFIG` | `forward(θ)`: perturb-and-MAP, I-MLE gradient |
/// | `"straight_through"` | `StraightThrough<Top5Solver>` | `ConfiguredSolver::CONFIG` | `forward(θ)`: `ImleLayer::straight_through(θ, true)`, MAP forward, identity backward |
/// | `"blackbox"` | `ImleLayer<Top5Solver>` | `CONFIG` = `ImleConfig::blackbox(λ)` | `forward(θ)`: `MAP(θ)`, gradient `(MAP(θ) − MAP(θ − λ·∂L/∂z))/λ` |
/// | `"perturbed"` | `perturbed::PerturbedOptimizer<Top5Solver>` | `ConfiguredPerturbed::PERTURBED_CONFIG` | `forward(θ)`: `y_σ(θ)`, Jacobian estimator; `fenchel_young_loss(θ, y, reduction)` |
/// | `"spo_plus"` | `spo::SpoPlus<Top5Solver>` | `ConfiguredSpo::SENSE` | `loss(ĉ, c, w*, reduction)` |
///
/// Each type has `Default` with the attribute's configuration (`Top5::default()`), and
/// `from_context` / `context` for a solver with a context. The names are those of the
/// runtime: `"imle"` the crate, `"straight_through"` the method
/// `ImleLayer::straight_through` that `StraightThrough` wraps, `"blackbox"` the constructor
/// `ImleConfig::blackbox`, `"perturbed"` the module `imle::perturbed`, `"spo_plus"` the type
/// `SpoPlus`. Blackbox differentiation (Vlastelica et al.) *is* I-MLE with no noise and the
/// gradient divided by λ, which is why it is an `ImleLayer` (its config has
/// `noise: Noise::None`, `scale_by_lambda: true`). The perturbed optimizer needs a
/// per-instance solver (not the batched form).
///
/// Each estimator takes only the keys that mean something to it; any other is a compile
/// error saying why (`lambda` with `"spo_plus"`, `target` with `"straight_through"`, ...):
///
/// | `estimator` | keys |
/// |---|---|
/// | `"imle"` | all but `sigma` and `perturbation` |
/// | `"straight_through"` | the forward pass's: `noise` (default `"none"`: the usual `MAP(θ)` forward), `k`, `gamma_terms`, `tau`, `samples`, `reduce`, `sense`, `seed` |
/// | `"blackbox"` | `lambda`, `sense` |
/// | `"perturbed"` | `noise` (`"gaussian"`, the default, or `"gumbel"`; Sum-of-Gamma has no closed-form score, and `"none"` no smoothing), `sigma`, `samples`, `perturbation`, `sense`, `seed` |
/// | `"spo_plus"` | `sense` |
///
/// `name` and `estimator` go with every estimator.
///
/// # Keys
///
/// Every key is optional; the names are those of `ImleConfig`'s fields and the layer's `with_*`
/// methods (`PerturbedConfig`'s for `sigma` and `perturbation`). Numbers may be written as
/// integers (`lambda = 10`).
///
/// | key | value | default |
/// |-----|-------|---------|
/// | `estimator` | `"imle"`, `"straight_through"`, `"blackbox"`, `"perturbed"` or `"spo_plus"` (above) | `"imle"` |
/// | `noise` | `"sum_of_gamma"`, `"gumbel"`, `"gaussian"` or `"none"` | `"gumbel"`; `"none"` for `"straight_through"` and `"blackbox"`, `"gaussian"` for `"perturbed"` |
/// | `k` | Sum-of-Gamma's `k` (the expected number of ones in a solution), at least `Noise::sum_of_gamma_min_k(gamma_terms)` (1e-3 with 10 terms); required with `"sum_of_gamma"` and only allowed with it | — |
/// | `gamma_terms` | Sum-of-Gamma's number of terms `s`, 1..=255; only with `"sum_of_gamma"` | `10` |
/// | `target` | `"perturb"` (θ' = α·θ − λ·∂L/∂z), `"normalized"` (θ' = α·θ − λ·(‖θ‖/‖g‖)·g per row: invariant to the loss's reduction) or `"adaptive"` (AIMLE) | `"perturb"` |
/// | `lambda` | λ, > 0 (for `"adaptive"`: the initial β, ≥ 0). With `"perturb"` its scale must match ∂L/∂z: a loss averaged over N entries needs ~N times the λ of the same loss summed; `"normalized"` does not (λ ≈ 1). With `"blackbox"`: the interpolation step (Vlastelica et al. use 10–20) | `10` |
/// | `alpha` | α in θ' = α·θ − λ·∂L/∂z, finite | `1` |
/// | `samples` | perturb-and-MAP samples S per instance, ≥ 1 | `1` |
/// | `marginal_samples` | noise draws M per gradient term, ≥ 1 (S·M must fit a `u32`) | `1` |
/// | `tau` | temperature τ of the forward noise, ≥ 0; not with `"none"` | `1` |
/// | `target_tau` | temperature τ' of the target's noise, ≥ 0; not with `"none"` | `1` |
/// | `symmetric` | central-difference gradient: `true`/`false` (a bare `symmetric` means `true`) | `false` |
/// | `scale_by_lambda` | divide the gradient by λ: `true`/`false` | `false` |
/// | `sense` | which way the solver optimises: `"maximize"` or `"minimize"` (cost solvers such as shortest paths); it declares, it does not turn a maximiser into a minimiser | `"maximize"` |
/// | `reduce` | `"none"` (`[B·S, …]` output) or `"mean"` (the sample mean) | `"none"` |
/// | `seed` | the noise seed, a `u64` | `0` |
/// | `target_density` | wanted non-zero gradient entries per sample, ≥ 0; only with `"adaptive"` | `1` |
/// | `adaptive_step` | how far β moves per backward pass, > 0; only with `"adaptive"` | `1e-4` |
/// | `sigma` | the perturbed optimizer's noise scale σ, > 0; only with `"perturbed"` | `1` |
/// | `perturbation` | `"additive"` (θ + σZ) or `"multiplicative"` (θ ⊙ exp(σZ − σ²/2), Gaussian only); only with `"perturbed"` | `"additive"` |
/// | `name` | the layer type's name (also the solver's, in errors) | the function's, UpperCamelCase |
///
/// # Compile-time errors
///
/// Each points at the offending token, and all are reported at once: an unknown key (with a
/// "did you mean"), an unknown noise, target, sense or reduction, a value of the wrong type, a
/// value out of range (λ ≤ 0, an infinite number, `samples = 0`, `k = 0`, ...), Sum-of-Gamma
/// without `k`, keys that contradict each other (`k` without Sum-of-Gamma, `target_density`
/// without the adaptive target, `target_tau` without noise), a key that does not apply to the
/// estimator (with the reason), a noise the perturbed optimizer cannot use, the perturbed
/// optimizer over a batched solver, a key given twice, and any signature not listed above. The configuration the attribute emits is always one that
/// `ImleConfig::validate` accepts.
///
/// Examples: see the `imle` crate's documentation of this attribute.
#[proc_macro_attribute]
pub fn imle_layer(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::imle_layer(args.into(), item.into()).into()
}
