//! Bad input gets a clear error naming the problem: never a panic, never a silent NaN.

use candle_core::{DType, Device, Result, Tensor, Var};
use imle_runtime::{
    Argmax, GridShortestPath, ImleConfig, ImleLayer, MapSolver, NegativeCosts, Neighbourhood,
    Noise, Sense, Target, TopK, copy_solution,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn gumbel() -> ImleConfig {
    ImleConfig::new(Noise::Gumbel)
}

fn argmax_layer() -> ImleLayer<Argmax> {
    ImleLayer::new(Argmax, gumbel()).unwrap()
}

fn expect_error(result: Result<Tensor>, needle: &str) {
    match result {
        Ok(t) => panic!("expected an error containing {needle:?}, got a tensor {t:?}"),
        Err(err) => assert!(
            err.to_string().contains(needle),
            "error {err:?} does not mention {needle:?}"
        ),
    }
}

#[test]
fn wrong_dtype_rank_and_empty_batches_are_errors() {
    let cpu = &Device::Cpu;
    let layer = argmax_layer();
    expect_error(
        layer.forward(&Tensor::zeros((2, 3), DType::U32, cpu).unwrap()),
        "float tensor",
    );
    expect_error(
        layer.forward(&Tensor::zeros(3, DType::F32, cpu).unwrap()),
        "rank >= 2",
    );
    expect_error(
        layer.forward(&Tensor::zeros((0, 3), DType::F32, cpu).unwrap()),
        "empty batch",
    );
    expect_error(
        layer.forward(&Tensor::zeros((2, 0), DType::F32, cpu).unwrap()),
        "empty",
    );
    expect_error(
        layer.map(&Tensor::zeros(3, DType::F32, cpu).unwrap()),
        "rank >= 2",
    );
}

#[test]
fn other_float_dtypes_are_converted_and_returned_in_their_dtype() {
    let theta = Tensor::new(&[[0.0f64, 2.0, 1.0]], &Device::Cpu).unwrap();
    let z = argmax_layer().map(&theta).unwrap();
    assert_eq!(z.dtype(), DType::F64);
    assert_eq!(z.to_vec2::<f64>().unwrap(), vec![vec![0.0, 1.0, 0.0]]);
    let half = theta.to_dtype(DType::BF16).unwrap();
    assert_eq!(argmax_layer().forward(&half).unwrap().dtype(), DType::BF16);
}

#[test]
fn non_finite_theta_is_an_error() {
    let layer = argmax_layer();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let theta = Tensor::new(&[[0.0f32, bad]], &Device::Cpu).unwrap();
        expect_error(layer.forward(&theta), "non-finite");
        expect_error(layer.map(&theta), "non-finite");
    }
}

#[test]
fn non_finite_incoming_gradient_is_an_error() {
    let theta = Var::new(&[[0.0f32, 1.0, 2.0]], &Device::Cpu).unwrap();
    let z = argmax_layer().forward(theta.as_tensor()).unwrap();
    let weights = Tensor::new(&[[1.0f32, f32::NAN, 0.0]], &Device::Cpu).unwrap();
    let err = (z * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap_err();
    assert!(err.to_string().contains("incoming gradient"), "{err}");
}

#[test]
fn non_contiguous_input_is_made_contiguous() {
    let theta = Tensor::new(&[[0.0f32, 5.0], [3.0, 1.0], [2.0, 4.0]], &Device::Cpu).unwrap();
    let transposed = theta.t().unwrap(); // [2, 3], strided
    assert!(!transposed.is_contiguous());
    let z = argmax_layer().map(&transposed).unwrap();
    assert_eq!(
        z.to_vec2::<f32>().unwrap(),
        vec![vec![0.0, 1.0, 0.0], vec![1.0, 0.0, 0.0]]
    );
}

/// A solver whose behaviour each test picks.
struct Faulty(fn(&[f32], &mut [f32]) -> Result<()>);

impl MapSolver for Faulty {
    type Scratch = ();
    fn name(&self) -> &str {
        "faulty"
    }
    fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> Result<()> {
        (self.0)(theta, z)
    }
}

fn run_faulty(solve: fn(&[f32], &mut [f32]) -> Result<()>) -> Result<Tensor> {
    let layer = ImleLayer::new(Faulty(solve), gumbel())?;
    let theta = Tensor::zeros((4, 5), DType::F32, &Device::Cpu)?;
    layer.forward(&theta)
}

#[test]
fn solver_failures_become_errors_naming_the_solver() {
    expect_error(
        run_faulty(|_, z| copy_solution("faulty", &[1.0, 0.0], z)),
        "solution of length 2 for an instance of 5",
    );
    expect_error(
        run_faulty(|_, z| {
            z[3] = f32::NAN;
            Ok(())
        }),
        "non-finite value (NaN) at index 3",
    );
    expect_error(
        run_faulty(|_, _| Err(candle_core::Error::Msg("infeasible".into()))),
        "returned an error: infeasible",
    );
    expect_error(
        run_faulty(|_, _| panic!("index out of range")),
        "panicked: index out of range",
    );
}

#[test]
fn a_panicking_solver_leaves_no_poisoned_state() {
    let layer = ImleLayer::new(
        Faulty(|theta, z| {
            if theta.iter().any(|&t| t > 100.0) {
                panic!("too large");
            }
            z[0] = 1.0;
            Ok(())
        }),
        gumbel(),
    )
    .unwrap();
    let large = Tensor::full(1000f32, (3, 4), &Device::Cpu).unwrap();
    let small = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
    for _ in 0..3 {
        expect_error(layer.forward(&large), "panicked: too large");
        assert_eq!(
            layer
                .forward(&small)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            3.0
        );
    }
}

#[test]
fn k_out_of_range_is_an_error() {
    assert!(TopK::new(0).unwrap_err().to_string().contains("k >= 1"));
    let layer = ImleLayer::new(TopK::new(6).unwrap(), gumbel()).unwrap();
    let theta = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
    expect_error(layer.forward(&theta), "k = 6");
    expect_error(layer.map(&theta), "k = 6");
}

#[test]
fn bad_configuration_is_an_error() {
    let layer = argmax_layer();
    for lambda in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let err = layer.clone().with_lambda(lambda).unwrap_err();
        assert!(err.to_string().contains("lambda"), "{err}");
    }
    assert!(
        layer
            .clone()
            .with_samples(0)
            .unwrap_err()
            .to_string()
            .contains("samples")
    );
    assert!(layer.clone().with_marginal_samples(0).is_err());
    assert!(layer.clone().with_tau(-1.0).is_err());
    assert!(
        layer
            .clone()
            .with_noise(Noise::SumOfGamma {
                k: f32::NAN,
                terms: 10
            })
            .is_err()
    );
    assert!(
        layer
            .clone()
            .with_noise(Noise::SumOfGamma { k: 5.0, terms: 0 })
            .is_err()
    );
    let adaptive_bad_step = Target::Adaptive {
        target_density: 1.0,
        step: 0.0,
    };
    assert!(layer.clone().with_target(adaptive_bad_step).is_err());
    let mut config = gumbel();
    config.samples = 0;
    assert!(ImleLayer::new(Argmax, config).is_err());
}

#[test]
fn explicit_noise_of_the_wrong_shape_or_with_nan_is_an_error() {
    let layer = argmax_layer().with_samples(2).unwrap();
    let theta = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
    let short = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
    expect_error(
        layer.forward_with_noise(&theta, &short),
        "explicit noise must have shape",
    );
    let nan = Tensor::full(f32::NAN, (6, 4), &Device::Cpu).unwrap();
    expect_error(layer.forward_with_noise(&theta, &nan), "non-finite");
}

struct WrongShape;

impl imle_runtime::BatchSolver for WrongShape {
    fn name(&self) -> &str {
        "wrong shape"
    }
    fn solve_batch(&self, theta: &Tensor) -> Result<Tensor> {
        theta.narrow(1, 0, 1)
    }
}

#[test]
fn a_batch_solver_returning_the_wrong_shape_is_an_error() {
    let layer = ImleLayer::new(imle_runtime::Batched(WrongShape), gumbel()).unwrap();
    let theta = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    expect_error(
        layer.forward(&theta),
        "returned a solution of shape [2, 1] for inputs of shape [2, 3]",
    );
}

/// Finite θ, g and noise whose solver input α·θ + λ·g + τ·ε overflows f32 is an error, not a
/// selection over ±inf or NaN (which solvers order in platform-dependent ways).
#[test]
fn an_overflowing_solver_input_is_an_error() {
    let cpu = &Device::Cpu;
    let layer = ImleLayer::new(TopK::new(1).unwrap(), ImleConfig::new(Noise::None)).unwrap();
    let theta = Var::new(&[[3e38f32, 0.0, 1.0]], cpu).unwrap();
    let z = layer.forward(&theta).unwrap();
    // θ − λ·g with λ = 10 and g = −3e38: far beyond f32::MAX.
    let weights = Tensor::new(&[[-3e38f32, 0.0, 0.0]], cpu).unwrap();
    let result = (z * weights).unwrap().sum_all().unwrap().backward();
    let err = result
        .expect_err("the overflow was not reported")
        .to_string();
    assert!(err.contains("overflowed"), "{err}");

    // In the forward pass: θ + τ·ε with explicit noise.
    let noisy = ImleLayer::new(TopK::new(1).unwrap(), ImleConfig::new(Noise::Gumbel)).unwrap();
    let noise = Tensor::new(&[[3e38f32, 0.0, 0.0]], cpu).unwrap();
    expect_error(noisy.forward_with_noise(&theta, &noise), "overflowed");
}

// ---------------------------------------------------------------------------------------
// Negative costs (issue #12 §3): noise must not stop training; negative θ is reported.

/// A `GridShortestPath` layer as in the issue: minimise, Sum-of-Gamma noise with k = 12.
fn grid_layer(negative_costs: Option<NegativeCosts>) -> ImleLayer<GridShortestPath> {
    let mut solver = GridShortestPath::new(Neighbourhood::Eight);
    if let Some(policy) = negative_costs {
        solver = solver.with_negative_costs(policy);
    }
    let config = ImleConfig::new(Noise::sum_of_gamma(12.0))
        .with_sense(Sense::Minimize)
        .with_lambda(10.0)
        .unwrap()
        .with_seed(3);
    ImleLayer::new(solver, config).unwrap()
}

/// Costs uniform in [0, 0.05]: small and non-negative, as a network's early predictions.
fn small_costs() -> Var {
    let mut rng = StdRng::seed_from_u64(12);
    let values: Vec<f32> = (0..4 * 12 * 12)
        .map(|_| rng.random_range(0.0..0.05f32))
        .collect();
    Var::from_vec(values, (4, 12, 12), &Device::Cpu).unwrap()
}

/// The failure: with `NegativeCosts::Error` (the old default) the first forward
/// failed with "cost -0.0119 at cell 1: costs must be finite and non-negative". Under the
/// default the perturbed costs are clamped at 0 and forward + backward run.
#[test]
fn noisy_small_costs_train_under_the_default() {
    let theta = small_costs();
    let layer = grid_layer(None);
    let z = layer.forward(theta.as_tensor()).unwrap();
    assert_eq!(z.dims(), &[4, 12, 12]);
    let target = Tensor::ones((4, 12, 12), DType::F32, &Device::Cpu).unwrap();
    let loss = (z - target).unwrap().sqr().unwrap().sum_all().unwrap();
    let gradient = loss.backward().unwrap().get(&theta).unwrap().clone();
    assert_eq!(gradient.dims(), &[4, 12, 12]);
    let total: f32 = gradient
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(total > 0.0, "the gradient is zero");
    // Evaluation sees θ itself, which is non-negative: no error either.
    layer.map(theta.as_tensor()).unwrap();

    // The strict policy still fails on the noise, and says which option to use instead.
    let strict = grid_layer(Some(NegativeCosts::Error));
    let err = strict.forward(theta.as_tensor()).unwrap_err().to_string();
    assert!(
        err.contains("NegativeCosts::ClampPerturbed") && err.contains("with_negative_costs"),
        "{err}"
    );
}

/// Negative costs in θ itself -- the network's prediction, before any noise -- are an error
/// in training and in evaluation, naming the instance and the option that clamps them.
#[test]
fn negative_theta_costs_are_errors_naming_the_option() {
    let mut values = vec![1.0f32; 2 * 3 * 3];
    values[9 + 4] = -0.5; // instance 1, cell 4
    let theta = Tensor::from_vec(values, (2, 3, 3), &Device::Cpu).unwrap();
    for policy in [None, Some(NegativeCosts::Error)] {
        let layer = grid_layer(policy);
        for result in [layer.forward(&theta), layer.map(&theta)] {
            let err = result.unwrap_err().to_string();
            for needle in [
                "instance 1",
                "cost -0.5 at cell 4",
                "with_negative_costs(NegativeCosts::ClampToZero)",
            ] {
                assert!(err.contains(needle), "{policy:?}: {err:?} lacks {needle:?}");
            }
        }
    }
    // ClampToZero takes them, and −0.0 is no negative cost under any policy.
    let lenient = grid_layer(Some(NegativeCosts::ClampToZero));
    lenient.forward(&theta).unwrap();
    lenient.map(&theta).unwrap();
    let zeros = Tensor::new(&[[[-0.0f32, -0.0], [5.0, 1.0]]], &Device::Cpu).unwrap();
    for policy in [None, Some(NegativeCosts::Error)] {
        let z = grid_layer(policy).map(&zeros).unwrap();
        assert_eq!(
            z.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1.0, 0.0, 0.0, 1.0]
        );
    }
}

/// Sum-of-Gamma's k must be finite and at least `Noise::sum_of_gamma_min_k(terms)` (1e-3 for
/// 10 terms: the sampler's exact distribution needs a bounded number of mixture terms); the
/// error names the bound. At the bound and at huge k the noise is finite.
#[test]
fn sum_of_gamma_k_outside_its_range_is_an_error() {
    let min_k = Noise::sum_of_gamma_min_k(10);
    assert_eq!(min_k, 1e-3);
    for k in [
        min_k * 0.99,
        1e-39f32,
        1e-45,
        0.0,
        -1.0,
        f32::INFINITY,
        f32::NAN,
    ] {
        let err = ImleConfig::new(Noise::SumOfGamma { k, terms: 10 })
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("k >= 1e-3") && err.contains("sum_of_gamma"),
            "k = {k:e}: {err}"
        );
        assert!(
            ImleLayer::new(Argmax, ImleConfig::new(Noise::SumOfGamma { k, terms: 10 })).is_err()
        );
    }
    for k in [min_k, 1e-2, 1e30, f32::MAX] {
        let config = ImleConfig::new(Noise::SumOfGamma { k, terms: 10 });
        let layer = ImleLayer::new(Argmax, config).unwrap();
        let theta = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
        let noise = imle_runtime::noise_tensor(
            &config.noise,
            imle_runtime::NoiseKey::new(1, 0),
            2,
            1,
            &[4],
            &Device::Cpu,
        )
        .unwrap();
        let values = noise.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "k = {k:e}: {values:?}"
        );
        assert_eq!(layer.forward(&theta).unwrap().dims(), &[2, 4]);
    }
}

/// A grid layer given flat `[B, H·W]` costs says that θ is the problem (an input error, not a
/// configuration one) and how to reshape it.
#[test]
fn flat_costs_for_a_grid_are_an_input_error_with_the_reshape() {
    let flat = Tensor::ones((2, 9), DType::F32, &Device::Cpu).unwrap();
    let err = grid_layer(None).forward(&flat).unwrap_err().to_string();
    assert!(
        err.starts_with("imle input: grid shortest path needs 2-D instances")
            && err.contains("got [9]")
            && err.contains("[B, H, W]"),
        "{err}"
    );
}
