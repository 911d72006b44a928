//! Layers made by `#[imle_layer]` behave exactly like the same solver and configuration put
//! together by hand, and every solver form works end to end.

use candle_core::{DType, Device, ModuleT, Result, Tensor, Var};
use imle::{
    ImleConfig, ImleLayer, MapSolver, Noise, Reduce, Sense, Solver, Target, TopK, imle_layer,
};

/// Top-3 through the built-in solver, so the macro layer and the hand-built one share the
/// algorithm (and its tie-breaking) exactly.
fn top3_into(theta: &[f32], z: &mut [f32]) {
    let solver = TopK::new(3).unwrap();
    MapSolver::solve(&solver, theta, &[theta.len()], z, &mut Vec::new()).unwrap();
}

#[imle_layer(
    noise = "sum_of_gamma",
    k = 3,
    gamma_terms = 5,
    lambda = 5,
    alpha = 0.9,
    samples = 3,
    marginal_samples = 2,
    tau = 0.8,
    target_tau = 1.25,
    symmetric,
    scale_by_lambda = true,
    seed = 11
)]
fn top3(theta: &[f32], z: &mut [f32]) {
    top3_into(theta, z);
}

#[imle_layer(
    noise = "gaussian",
    target = "adaptive",
    lambda = 0.5,
    target_density = 2,
    adaptive_step = 0.001,
    sense = "minimize",
    reduce = "mean",
    samples = 2,
    seed = 3,
    name = "AdaptiveCheapest3"
)]
fn cheapest3(theta: &[f32]) -> Vec<f32> {
    let mut z = vec![0.0; theta.len()];
    top3_into(theta, &mut z);
    z
}

fn theta() -> Result<Var> {
    let values: Vec<f32> = (0..4 * 12)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    Var::from_vec(values, (4, 12), &Device::Cpu)
}

/// z and ∂L/∂θ of two training steps, with a loss that weights entries differently, as bits.
fn run<S: Solver>(layer: &ImleLayer<S>) -> Result<Vec<Vec<u32>>> {
    let theta = theta()?;
    let mut out = Vec::new();
    for step in 0..2 {
        let z = layer.forward(theta.as_tensor())?;
        let weights = Tensor::arange(0f32, z.elem_count() as f32, &Device::Cpu)?
            .reshape(z.shape())?
            .affine(0.1, step as f64)?
            .cos()?;
        let grads = (&z * weights)?.sum_all()?.backward()?;
        let grad = grads.get(&theta).expect("θ has a gradient");
        let nonzero = grad.abs()?.sum_all()?.to_scalar::<f32>()?;
        assert!(
            nonzero > 0.0,
            "a zero gradient would make the comparison vacuous"
        );
        for t in [&z, grad] {
            let bits = t.flatten_all()?.to_vec1::<f32>()?;
            out.push(bits.iter().map(|v| v.to_bits()).collect());
        }
    }
    Ok(out)
}

#[test]
fn matches_a_hand_built_layer_bit_for_bit() -> Result<()> {
    let config = ImleConfig::new(Noise::SumOfGamma { k: 3.0, terms: 5 })
        .with_lambda(5.0)?
        .with_alpha(0.9)?
        .with_samples(3)?
        .with_marginal_samples(2)?
        .with_tau(0.8)?
        .with_target_tau(1.25)?
        .with_symmetric(true)
        .with_scale_by_lambda(true)
        .with_seed(11);
    let by_hand = ImleLayer::new(TopK::new(3)?, config)?;
    let by_macro = Top3::default();
    assert_eq!(by_macro.config(), &config);
    assert_eq!(run(&by_macro)?, run(&by_hand)?);
    assert_eq!(by_macro.map(theta()?.as_tensor())?.to_vec2::<f32>()?, {
        by_hand.map(theta()?.as_tensor())?.to_vec2::<f32>()?
    });
    Ok(())
}

#[test]
fn every_key_reaches_the_config() -> Result<()> {
    let config = ImleConfig::new(Noise::Gaussian)
        .with_target(Target::Adaptive {
            target_density: 2.0,
            step: 0.001,
        })?
        .with_lambda(0.5)?
        .with_sense(Sense::Minimize)
        .with_reduce(Reduce::Mean)
        .with_samples(2)?
        .with_seed(3);
    let by_macro = AdaptiveCheapest3::default();
    assert_eq!(by_macro.config(), &config);
    assert_eq!(Solver::name(by_macro.solver()), "AdaptiveCheapest3");
    let by_hand = ImleLayer::new(TopK::new(3)?, config)?;
    assert_eq!(run(&by_macro)?, run(&by_hand)?);
    assert_eq!(by_macro.lambda(), by_hand.lambda(), "the same adaptive β");
    Ok(())
}

/// The top 3 under the normalized target (the README's recommended first choice).
#[imle_layer(
    noise = "sum_of_gamma",
    k = 3,
    target = "normalized",
    lambda = 1,
    samples = 2
)]
fn normalized_top3(theta: &[f32], z: &mut [f32]) {
    top3_into(theta, z);
}

#[test]
fn the_normalized_target_reaches_the_config() -> Result<()> {
    let config = ImleConfig::new(Noise::SumOfGamma { k: 3.0, terms: 10 })
        .with_target(Target::Normalized)?
        .with_lambda(1.0)?
        .with_samples(2)?;
    let by_macro = NormalizedTop3::default();
    assert_eq!(by_macro.config(), &config);
    let by_hand = ImleLayer::new(TopK::new(3)?, config)?;
    assert_eq!(run(&by_macro)?, run(&by_hand)?);
    Ok(())
}

#[test]
fn run_time_overrides_are_validated() -> Result<()> {
    let tuned = Top3::default().with_lambda(20.0)?.with_seed(7);
    assert_eq!((tuned.config().lambda, tuned.config().seed), (20.0, 7));
    assert_eq!(
        Top3::default().config().lambda,
        5.0,
        "the type's config is unchanged"
    );
    assert!(Top3::default().with_lambda(-1.0).is_err());
    assert!(Top3::default().with_samples(0).is_err());
    Ok(())
}

#[test]
fn evaluation_is_map_of_theta() -> Result<()> {
    let theta = theta()?;
    let layer = Top3::default();
    let eval = layer.forward_t(theta.as_tensor(), false)?;
    assert_eq!(eval.dims(), &[4, 12]);
    assert_eq!(
        eval.to_vec2::<f32>()?,
        layer.map(theta.as_tensor())?.to_vec2::<f32>()?
    );
    let train = layer.forward_t(theta.as_tensor(), true)?;
    assert_eq!(train.dims(), &[4 * 3, 12], "three samples per row");
    Ok(())
}

/// Picks the best entry, but refuses instances whose best score is negative.
#[imle_layer(noise = "none")]
fn picky(theta: &[f32], z: &mut [f32]) -> std::result::Result<(), String> {
    let best = (0..theta.len()).fold(0, |b, i| if theta[i] > theta[b] { i } else { b });
    if theta[best] < 0.0 {
        return Err(format!("nothing worth picking (best {})", theta[best]));
    }
    z[best] = 1.0;
    Ok(())
}

#[imle_layer]
fn wrong_length(theta: &[f32]) -> Vec<f32> {
    vec![1.0; theta.len() + 1]
}

#[test]
fn solver_errors_name_the_layer() -> Result<()> {
    let fine = Tensor::new(&[[1f32, 2.0]], &Device::Cpu)?;
    assert_eq!(
        Picky::default().forward(&fine)?.to_vec2::<f32>()?,
        [[0.0, 1.0]]
    );
    let bad = Tensor::new(&[[1f32, 2.0], [-1.0, -2.0]], &Device::Cpu)?;
    for result in [Picky::default().forward(&bad), Picky::default().map(&bad)] {
        let message = result.unwrap_err().to_string();
        assert!(message.contains("`Picky`"), "{message}");
        assert!(
            message.contains("nothing worth picking (best -1)"),
            "{message}"
        );
    }
    // Said once, and not as "returned an error": the solver returned a value of the wrong
    // length. The same for a built-in's own error (a negative cost), prefixed once.
    let message = WrongLength::default().map(&fine).unwrap_err().to_string();
    assert_eq!(
        message,
        "imle solver `WrongLength`: returned a solution of length 3 for an instance of 2 elements"
    );
    let grid = imle::ImleLayer::new(
        imle::GridShortestPath::new(imle::Neighbourhood::Four)
            .with_negative_costs(imle::NegativeCosts::Error),
        imle::ImleConfig::new(imle::Noise::None).with_sense(imle::Sense::Minimize),
    )?;
    let message = grid
        .map(&Tensor::new(&[[[1f32, -1.0], [1.0, 1.0]]], &Device::Cpu)?)
        .unwrap_err()
        .to_string();
    assert_eq!(message.matches("imle solver").count(), 1, "{message}");
    assert!(!message.contains("returned an error"), "{message}");
    Ok(())
}

/// A directed graph on `n` nodes: the context of a path solver.
#[derive(Debug, PartialEq)]
struct Chain {
    /// The allowed first nodes.
    starts: Vec<usize>,
}

/// The best node among the allowed starts, with the instance shape checked.
#[imle_layer(noise = "gumbel", seed = 5)]
fn start(chain: &Chain, theta: &[f32], shape: &[usize], z: &mut [f32]) {
    assert_eq!(shape, [theta.len()]);
    let best =
        chain.starts.iter().copied().fold(
            chain.starts[0],
            |b, i| {
                if theta[i] > theta[b] { i } else { b }
            },
        );
    z[best] = 1.0;
}

#[test]
fn a_context_solver_owns_its_context() -> Result<()> {
    let layer = Start::from_context(Chain { starts: vec![1, 3] });
    assert_eq!(layer.context(), &Chain { starts: vec![1, 3] });
    assert_eq!(layer.config().seed, 5);
    let theta = Tensor::new(&[[9f32, 1.0, 9.0, 2.0], [0.0, 5.0, 9.0, 2.0]], &Device::Cpu)?;
    let z = layer.map(&theta)?.to_vec2::<f32>()?;
    assert_eq!(z, [[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]);
    // Clones share the context; the solver type is usable on its own.
    let solver = StartSolver(Chain { starts: vec![0] });
    let z = ImleLayer::configured(solver).clone().map(&theta)?;
    assert_eq!(z.to_vec2::<f32>()?, [[1.0, 0.0, 0.0, 0.0]; 2]);
    Ok(())
}

/// A batched solver written with tensor operations: the mask of the positive entries.
#[imle_layer(noise = "gaussian", tau = 0.5, samples = 2)]
fn positives(theta: &Tensor) -> Result<Tensor> {
    theta.gt(0.0)?.to_dtype(DType::F32)
}

#[imle_layer]
fn failing_batch(theta: &Tensor) -> std::result::Result<Tensor, &'static str> {
    let _ = theta;
    Err("the batch solver is out of order")
}

#[test]
fn the_batched_form_solves_whole_batches() -> Result<()> {
    let theta = Var::new(&[[0.5f32, -2.0, 3.0], [-1.0, 1.0, 0.2]], &Device::Cpu)?;
    let layer = Positives::default();
    assert_eq!(
        layer.map(theta.as_tensor())?.to_vec2::<f32>()?,
        [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    );
    let z = layer.forward(theta.as_tensor())?;
    assert_eq!(z.dims(), &[4, 3]);
    let grads = z.sum_all()?.backward()?;
    assert_eq!(grads.get(&theta).unwrap().dims(), &[2, 3]);
    let message = FailingBatch::default()
        .map(theta.as_tensor())
        .unwrap_err()
        .to_string();
    assert!(message.contains("`FailingBatch`"), "{message}");
    assert!(message.contains("out of order"), "{message}");
    Ok(())
}

/// The same top-3 in f64.
#[imle_layer(
    noise = "sum_of_gamma",
    k = 3,
    gamma_terms = 5,
    lambda = 5,
    alpha = 0.9,
    samples = 3,
    marginal_samples = 2,
    tau = 0.8,
    target_tau = 1.25,
    symmetric,
    scale_by_lambda = true,
    seed = 11
)]
fn top3_f64(theta: &[f64]) -> Vec<f64> {
    let theta32: Vec<f32> = theta.iter().map(|&t| t as f32).collect();
    let mut z = vec![0.0; theta.len()];
    top3_into(&theta32, &mut z);
    z.into_iter().map(f64::from).collect()
}

#[test]
fn f64_solvers_match_f32_ones() -> Result<()> {
    assert_eq!(run(&Top3F64::default())?, run(&Top3::default())?);
    Ok(())
}

// Values at the edges of what the attribute accepts: each must be a config the runtime accepts.
#[imle_layer(noise = "sum_of_gamma", k = 0.0436, gamma_terms = 255, tau = 0, target_tau = 0,
    alpha = -1e30, lambda = 1e-30, samples = 65536, marginal_samples = 65535)]
fn edges_perturb(theta: &[f32]) -> Vec<f32> {
    theta.to_vec()
}

#[imle_layer(
    noise = "sum_of_gamma",
    k = 1e30,
    gamma_terms = 1,
    target = "adaptive",
    lambda = 0,
    target_density = 0,
    adaptive_step = 1e-30,
    seed = 18446744073709551615
)]
fn edges_adaptive(theta: &[f32]) -> Vec<f32> {
    theta.to_vec()
}

#[test]
fn edge_values_make_valid_configs() -> Result<()> {
    use imle::ConfiguredSolver;
    EdgesPerturbSolver::CONFIG.validate()?;
    EdgesAdaptiveSolver::CONFIG.validate()?;
    assert_eq!(EdgesAdaptive::default().config().seed, u64::MAX);
    assert_eq!(EdgesPerturb::default().config().alpha, -1e30);
    Ok(())
}

// ---- `estimator = "..."`: each estimator the attribute generates equals the same estimator
// built by hand over the same solver, through a few steps of training on a tiny top-3 problem.

/// Top-3 under the straight-through estimator, with Gumbel perturb-and-MAP in the forward pass.
#[imle_layer(
    estimator = "straight_through",
    noise = "gumbel",
    samples = 2,
    seed = 4
)]
fn top3_ste(theta: &[f32], z: &mut [f32]) {
    top3_into(theta, z);
}

/// Top-3 under blackbox differentiation.
#[imle_layer(estimator = "blackbox", lambda = 3)]
fn top3_blackbox(theta: &[f32], z: &mut [f32]) {
    top3_into(theta, z);
}

/// Top-3 under the perturbed optimizer.
#[imle_layer(
    estimator = "perturbed",
    noise = "gumbel",
    sigma = 0.5,
    samples = 3,
    seed = 9
)]
fn top3_perturbed(theta: &[f32], z: &mut [f32]) {
    top3_into(theta, z);
}

/// Top-3 under SPO+.
#[imle_layer(estimator = "spo_plus")]
fn top3_spo(theta: &[f32], z: &mut [f32]) {
    top3_into(theta, z);
}

/// The cheapest 3 (a minimiser) under SPO+ and the multiplicative perturbed optimizer.
#[imle_layer(estimator = "spo_plus", sense = "minimize")]
fn cheapest3_spo(theta: &[f32], z: &mut [f32]) {
    let negated: Vec<f32> = theta.iter().map(|t| -t).collect();
    top3_into(&negated, z);
}

#[imle_layer(
    estimator = "perturbed",
    perturbation = "multiplicative",
    sense = "minimize",
    sigma = 0.3,
    samples = 2
)]
fn cheapest3_perturbed(theta: &[f32], z: &mut [f32]) {
    let negated: Vec<f32> = theta.iter().map(|t| -t).collect();
    top3_into(&negated, z);
}

/// A tiny top-3 problem: features `x [8, 5]`, true scores `c = x·W* [8, 10]`, labels
/// `y = top3(c)`.
fn top3_problem() -> Result<(Tensor, Tensor, Tensor)> {
    let dev = &Device::Cpu;
    let x: Vec<f32> = (0..8 * 5)
        .map(|i| ((i * 17 % 11) as f32 - 5.0) / 4.0)
        .collect();
    let w: Vec<f32> = (0..5 * 10)
        .map(|i| ((i * 29 % 13) as f32 - 6.0) / 5.0)
        .collect();
    let x = Tensor::from_vec(x, (8, 5), dev)?;
    let c = x.matmul(&Tensor::from_vec(w, (5, 10), dev)?)?;
    let y = ImleLayer::new(TopK::new(3)?, ImleConfig::new(Noise::None))?.map(&c)?;
    Ok((x, c, y))
}

/// Five steps of gradient descent on `W [5, 10]` (θ = x·W) through `loss(θ)`: every loss and
/// the final weights, as bits.
fn train(loss: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Vec<u32>> {
    let (x, _, _) = top3_problem()?;
    let w0: Vec<f32> = (0..5 * 10)
        .map(|i| ((i * 7 % 9) as f32 - 4.0) / 10.0)
        .collect();
    let w = Var::from_vec(w0, (5, 10), &Device::Cpu)?;
    let mut bits = Vec::new();
    for _ in 0..5 {
        let value = loss(&x.matmul(w.as_tensor())?)?;
        bits.push(value.to_scalar::<f32>()?.to_bits());
        let grad = value.backward()?.get(&w).expect("W has a gradient").clone();
        assert!(
            grad.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
            "a live gradient"
        );
        w.set(&(w.as_tensor() - (grad * 0.05)?)?)?;
    }
    let weights = w.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    bits.extend(weights.iter().map(|v| v.to_bits()));
    Ok(bits)
}

fn hamming_sum(z: &Tensor, y: &Tensor) -> Result<Tensor> {
    imle::loss::hamming(z, y, imle::loss::Reduction::Sum)
}

#[test]
fn the_straight_through_estimator_matches_a_hand_built_one() -> Result<()> {
    let config = ImleConfig::new(Noise::Gumbel).with_samples(2)?.with_seed(4);
    let by_macro = Top3Ste::default();
    assert_eq!(by_macro.config(), &config);
    let by_hand = ImleLayer::new(TopK::new(3)?, config)?;
    let (_, _, y) = top3_problem()?;
    let y2 = by_hand.repeat_for_samples(&y)?;
    let macro_run = train(|theta| hamming_sum(&by_macro.forward(theta)?, &y2))?;
    let hand_run = train(|theta| hamming_sum(&by_hand.straight_through(theta, true)?, &y2))?;
    assert_eq!(macro_run, hand_run);
    let (x, _, _) = top3_problem()?;
    let eval = by_macro.forward_t(&x, false)?.to_vec2::<f32>()?;
    assert_eq!(eval, by_hand.straight_through(&x, false)?.to_vec2::<f32>()?);
    assert_eq!(eval, by_hand.map(&x)?.to_vec2::<f32>()?);
    Ok(())
}

#[test]
fn the_blackbox_layer_is_imle_config_blackbox() -> Result<()> {
    let config = ImleConfig::blackbox(3.0)?;
    let by_macro = Top3Blackbox::default();
    assert_eq!(by_macro.config(), &config);
    let by_hand = ImleLayer::new(TopK::new(3)?, config)?;
    let (_, _, y) = top3_problem()?;
    let macro_run = train(|theta| hamming_sum(&by_macro.forward(theta)?, &y))?;
    let hand_run = train(|theta| hamming_sum(&by_hand.forward(theta)?, &y))?;
    assert_eq!(macro_run, hand_run);
    Ok(())
}

#[test]
fn the_perturbed_optimizer_matches_a_hand_built_one() -> Result<()> {
    use imle::perturbed::{Perturbation, PerturbedConfig, PerturbedOptimizer};
    let config = PerturbedConfig::new(Noise::Gumbel, 0.5, 3).with_seed(9);
    let (_, _, y) = top3_problem()?;
    // Through the Fenchel-Young loss, and through the forward pass's Jacobian.
    let fy = |optimizer: &PerturbedOptimizer<_>| {
        train(|theta| optimizer.fenchel_young_loss(theta, &y, imle::loss::Reduction::Sum))
    };
    let jacobian = |optimizer: &PerturbedOptimizer<_>| {
        train(|theta| (optimizer.forward(theta)? - &y)?.sqr()?.sum_all())
    };
    let by_macro = Top3Perturbed::default();
    assert_eq!(by_macro.config(), &config);
    let by_hand = PerturbedOptimizer::new(Top3PerturbedSolver, config)?;
    let by_hand_topk = PerturbedOptimizer::new(TopK::new(3)?, config)?;
    assert_eq!(fy(&by_macro)?, fy(&by_hand)?);
    assert_eq!(jacobian(&by_macro)?, jacobian(&by_hand)?);
    let topk =
        train(|theta| by_hand_topk.fenchel_young_loss(theta, &y, imle::loss::Reduction::Sum))?;
    assert_eq!(
        fy(&Top3Perturbed::default())?,
        topk,
        "the same as over the built-in TopK"
    );

    let multiplicative = PerturbedConfig::new(Noise::Gaussian, 0.3, 2)
        .with_perturbation(Perturbation::Multiplicative)
        .with_sense(Sense::Minimize);
    assert_eq!(Cheapest3Perturbed::default().config(), &multiplicative);
    Ok(())
}

#[test]
fn the_spo_plus_loss_matches_a_hand_built_one() -> Result<()> {
    use imle::spo::SpoPlus;
    let (_, c, y) = top3_problem()?;
    let loss =
        |spo: &SpoPlus<_>| train(|theta| spo.loss(theta, &c, &y, imle::loss::Reduction::Sum));
    let by_macro = Top3Spo::default();
    assert_eq!(by_macro.sense(), Sense::Maximize);
    assert_eq!(
        loss(&by_macro)?,
        loss(&SpoPlus::new(Top3SpoSolver, Sense::Maximize))?
    );
    let topk = SpoPlus::new(TopK::new(3)?, Sense::Maximize);
    assert_eq!(
        train(|theta| by_macro.loss(theta, &c, &y, imle::loss::Reduction::Sum))?,
        train(|theta| topk.loss(theta, &c, &y, imle::loss::Reduction::Sum))?,
        "the same as over the built-in TopK"
    );
    assert_eq!(Cheapest3Spo::default().sense(), Sense::Minimize);
    Ok(())
}
