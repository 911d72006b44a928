//! The CUDA path on a GPU (feature `cuda`), against the CPU path: noise element by element,
//! forward solutions, gradients and MAP for every configuration of `support/cases.rs`, all
//! with zero tolerance (the kernels use the CPU's f32 operations in the CPU's order; see
//! `imle_runtime::cuda`). Also: training through the layer on the GPU, `ModuleT`, other
//! dtypes, solvers without a kernel (host round trip), and errors.
//!
//! Compiled only with the `cuda` feature (or `cuda-dry-run`, below): the default build has
//! no such tests at all, rather than tests that pass without a GPU. With the feature, a
//! device that does not start fails every test; nothing here skips.
//!
//! Dry run: with `IMLE_CUDA_TESTS_ON_CPU=1` the CPU stands in for the GPU, which checks the
//! tests' own logic where there is no GPU (every comparison is then trivially equal). Without
//! a CUDA toolkit, build the file with the test-only feature `cuda-dry-run` instead of `cuda`:
//!
//! ```sh
//! IMLE_CUDA_TESTS_ON_CPU=1 cargo test --release -p imle-runtime --features cuda-dry-run --test cuda
//! ```
//!
//! CI's clippy builds neither feature, so after editing this file lint it with
//! `cargo clippy --release -p imle-runtime --features cuda-dry-run --tests -- -D warnings`.
#![cfg(any(feature = "cuda", feature = "cuda-dry-run"))]

mod support;

use candle_core::{DType, Device, ModuleT, Tensor, Var};
use imle_runtime::noise_tensor;
use imle_runtime::{
    GridShortestPath, ImleConfig, ImleLayer, NegativeCosts, Neighbourhood, Noise, NoiseKey, Sense,
    TopK,
};
use support::cases::{
    all_cases, assert_same_bits, first_indices, host, noise_kinds, zero_gradient_cases,
    zero_theta_case,
};

/// The GPU, or the CPU in a dry run. Panics when the device does not start: on a machine
/// meant to run these tests, a missing device is a failure, never a pass.
fn gpu() -> Device {
    if std::env::var_os("IMLE_CUDA_TESTS_ON_CPU").is_some() {
        eprintln!("dry run: IMLE_CUDA_TESTS_ON_CPU is set, the CPU stands in for the GPU");
        return Device::Cpu;
    }
    Device::new_cuda(0).unwrap_or_else(|e| {
        panic!(
            "no CUDA device ({}); for a dry run without a GPU set IMLE_CUDA_TESTS_ON_CPU=1",
            e.to_string().lines().next().unwrap_or("")
        )
    })
}

#[test]
fn noise_tensors_match_the_cpu_bit_for_bit() {
    let gpu = gpu();
    let key = NoiseKey::new(99, 5);
    for noise in noise_kinds() {
        for (batch, draws, n) in [(3, 2, 1), (5, 3, 37), (64, 2, 1000), (2, 1, 1 << 20)] {
            let on_gpu = noise_tensor(&noise, key, batch, draws, &[n], &gpu).unwrap();
            let on_cpu = noise_tensor(&noise, key, batch, draws, &[n], &Device::Cpu).unwrap();
            assert!(on_gpu.device().same_device(&gpu));
            let what = format!("{noise:?}, {batch}×{draws}×{n}");
            assert_same_bits(&what, &host(&on_gpu), &host(&on_cpu));
        }
    }
}

/// Forward, backward and MAP of a fresh layer on the GPU equal the CPU's, bit for bit.
#[test]
fn layers_match_the_cpu_bit_for_bit() {
    let gpu = gpu();
    for case in all_cases() {
        let cpu = case.run_on(&Device::Cpu);
        let cuda = case.run_on(&gpu);
        assert_eq!(cuda.z_dims, cpu.z_dims, "{}: output dims", case.name);
        assert_same_bits(&format!("{}: forward", case.name), &cuda.z, &cpu.z);
        assert_same_bits(
            &format!("{}: gradient", case.name),
            &cuda.gradient,
            &cpu.gradient,
        );
        assert_same_bits(&format!("{}: map", case.name), &cuda.map, &cpu.map);
        assert_eq!(cuda.density, cpu.density, "{}: density", case.name);
        assert_eq!(
            cuda.lambda_after, cpu.lambda_after,
            "{}: λ after",
            case.name
        );
    }
}

/// θ ≡ 0 with n = 1000, k = 10 on the GPU: the first ten indices, in training without noise
/// and in MAP (issue #15). The ties among 1.0s, with and without noise, and θ with ±0 are
/// among `all_cases`.
#[test]
fn zero_theta_selects_the_first_indices() {
    let gpu = gpu();
    let case = zero_theta_case();
    let cuda = case.run_on(&gpu);
    let rows = cuda.z.len() / case.n();
    assert_same_bits(
        "θ ≡ 0: forward",
        &cuda.z,
        &first_indices(rows, case.n(), 10),
    );
    let map = first_indices(case.batch, case.n(), 10);
    assert_same_bits("θ ≡ 0: map", &cuda.map, &map);
}

/// A zero incoming gradient gives a gradient of exactly 0 on the GPU for every noise kind,
/// S > 1, marginal samples and the central difference (issue #15): the backward kernel
/// regenerates the forward's noise, so a non-zero entry is a counter mismatch.
#[test]
fn a_zero_incoming_gradient_gives_exactly_zero() {
    let gpu = gpu();
    for case in zero_gradient_cases(true) {
        let cuda = case.run_on(&gpu);
        let zeros = vec![0.0; cuda.gradient.len()];
        assert_same_bits(&format!("{}: gradient", case.name), &cuda.gradient, &zeros);
        let cpu = case.run_on(&Device::Cpu);
        assert_same_bits(&format!("{}: forward", case.name), &cuda.z, &cpu.z);
    }
}

/// The same configurations with 640 instances: more than twice the SMs of any current GPU,
/// so the backward runs in one pass (one block per instance) rather than in two phases
/// (one block per instance and draw), which the small batches above get.
#[test]
fn wide_batches_match_the_cpu_bit_for_bit() {
    let gpu = gpu();
    for case in all_cases().into_iter().filter(|case| case.n() <= 3000) {
        let case = support::cases::Case {
            batch: 640,
            name: format!("{}, B = 640", case.name),
            ..case
        };
        let cpu = case.run_on(&Device::Cpu);
        let cuda = case.run_on(&gpu);
        assert_same_bits(&format!("{}: forward", case.name), &cuda.z, &cpu.z);
        assert_same_bits(
            &format!("{}: gradient", case.name),
            &cuda.gradient,
            &cpu.gradient,
        );
        assert_eq!(cuda.density, cpu.density, "{}: density", case.name);
    }
}

/// A million (instance, sample) rows: the kernels' grid-stride loops over more rows than
/// blocks in a launch.
#[test]
fn a_million_rows() {
    let gpu = gpu();
    let config = ImleConfig::new(Noise::Gumbel)
        .with_samples(10)
        .unwrap()
        .with_lambda(2.0)
        .unwrap();
    let case = support::cases::Case::new(
        "10^6 rows",
        config,
        imle_runtime::DeviceKernel::TopK { k: 1 },
        100_000,
        3,
    );
    let (cpu, cuda) = (case.run_on(&Device::Cpu), case.run_on(&gpu));
    assert_same_bits("10^6 rows: forward", &cuda.z, &cpu.z);
    assert_same_bits("10^6 rows: gradient", &cuda.gradient, &cpu.gradient);
}

/// A linear model trained through the top-k layer on the GPU: the same steps as on the CPU
/// (the layer is bit-identical; the matmuls may differ in the last bits, so the comparison
/// is on the loss trend), and the expected loss goes down.
#[test]
fn trains_on_the_gpu() {
    let gpu = gpu();
    let (batch, features, n, k) = (64, 8, 50, 5);
    let x = Tensor::randn(0f32, 1.0, (batch, features), &gpu).unwrap();
    let true_w = Tensor::randn(0f32, 1.0, (features, n), &gpu).unwrap();
    let layer = ImleLayer::new(
        TopK::new(k).unwrap(),
        ImleConfig::new(Noise::sum_of_gamma(k as f32))
            .with_lambda(10.0)
            .unwrap(),
    )
    .unwrap();
    let target = layer.map(&x.matmul(&true_w).unwrap()).unwrap();
    let w = Var::zeros((features, n), DType::F32, &gpu).unwrap();
    let loss_of = |w: &Tensor| -> f32 {
        let z = layer.map(&x.matmul(w).unwrap()).unwrap();
        (z - &target)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    };
    let initial = loss_of(w.as_tensor());
    for _ in 0..100 {
        let z = layer.forward(&x.matmul(w.as_tensor()).unwrap()).unwrap();
        let loss = (z - &target).unwrap().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(&w).unwrap();
        assert!(g.device().same_device(&gpu));
        w.set(&(w.as_tensor() - (g * 0.01).unwrap()).unwrap())
            .unwrap();
    }
    let trained = loss_of(w.as_tensor());
    println!("MAP loss: {initial} -> {trained}");
    // On the CPU the same loop takes this loss from ~550 to under 5 for several seeds.
    assert!(trained < 0.1 * initial, "MAP loss {initial} -> {trained}");
}

/// `ModuleT`: train → perturb-and-MAP, eval → MAP, both on the GPU; other float dtypes come
/// back in their dtype with the f32 path's values.
#[test]
fn module_t_and_dtypes() {
    let gpu = gpu();
    let layer = ImleLayer::new(TopK::new(3).unwrap(), ImleConfig::new(Noise::Gumbel)).unwrap();
    let theta = Tensor::randn(0f32, 1.0, (16, 40), &gpu).unwrap();
    let eval = layer.forward_t(&theta, false).unwrap();
    assert!(eval.device().same_device(&gpu));
    let cpu_eval = layer.map(&theta.to_device(&Device::Cpu).unwrap()).unwrap();
    assert_same_bits("eval", &host(&eval), &host(&cpu_eval));
    let train = layer.forward_t(&theta, true).unwrap();
    let sums = train.sum(1).unwrap().to_vec1::<f32>().unwrap();
    assert!(sums.iter().all(|&s| s == 3.0));
    for dtype in [DType::F64, DType::F16, DType::BF16] {
        let t = theta.to_dtype(dtype).unwrap();
        let z = layer.map(&t).unwrap();
        assert_eq!(z.dtype(), dtype);
        let want = layer.map(&t.to_dtype(DType::F32).unwrap()).unwrap();
        assert_same_bits(
            &format!("{dtype:?}"),
            &host(&z.to_dtype(DType::F32).unwrap()),
            &host(&want),
        );
    }
}

/// A solver without a kernel runs on the host: one copy of θ each way per call, same
/// results as with a CPU tensor, and the gradient lands on the GPU.
#[test]
fn solvers_without_a_kernel_use_the_host() {
    let gpu = gpu();
    // Noisy costs can be negative: clamped, as the shortest-path example does.
    let solver =
        GridShortestPath::new(Neighbourhood::Eight).with_negative_costs(NegativeCosts::ClampToZero);
    let config = ImleConfig::new(Noise::sum_of_gamma(10.0))
        .with_lambda(5.0)
        .unwrap()
        .with_sense(Sense::Minimize);
    let costs: Vec<f32> = (0..2 * 6 * 6).map(|i| 1.0 + (i * 37 % 11) as f32).collect();
    let run = |device: &Device| {
        let layer = ImleLayer::new(solver, config).unwrap();
        let theta = Var::from_vec(costs.clone(), (2, 6, 6), device).unwrap();
        let z = layer.forward(&theta).unwrap();
        assert!(z.device().same_device(device));
        let grads = z.sum_all().unwrap().backward().unwrap();
        let g = grads.get(&theta).unwrap().clone();
        assert!(g.device().same_device(device));
        (host(&z), host(&g))
    };
    let (z_gpu, g_gpu) = run(&gpu);
    let (z_cpu, g_cpu) = run(&Device::Cpu);
    assert_same_bits("shortest path z", &z_gpu, &z_cpu);
    assert_same_bits("shortest path gradient", &g_gpu, &g_cpu);
}

#[test]
fn bad_input_is_an_error() {
    let gpu = gpu();
    let layer = ImleLayer::new(TopK::new(2).unwrap(), ImleConfig::new(Noise::Gumbel)).unwrap();
    let theta = Tensor::new(&[[1f32, f32::NAN, 0.0]], &gpu).unwrap();
    let err = layer.forward(&theta).unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
    let theta = Var::new(&[[1f32, 2.0, 0.0]], &gpu).unwrap();
    let z = layer.forward(&theta).unwrap();
    let bad = (z * Tensor::new(&[[1f32, f32::INFINITY, 0.0]], &gpu).unwrap()).unwrap();
    let err = bad.sum_all().unwrap().backward().unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
    let too_many = ImleLayer::new(TopK::new(4).unwrap(), ImleConfig::new(Noise::Gumbel)).unwrap();
    assert!(too_many.forward(&theta).is_err());
    // Finite θ and g whose solver input overflows: θ − λ·g = 3e38 + 3e38.
    let top1 = ImleLayer::new(TopK::new(1).unwrap(), ImleConfig::new(Noise::None)).unwrap();
    let theta = Var::new(&[[3e38f32, 0.0, 1.0]], &gpu).unwrap();
    let z = top1.forward(&theta).unwrap();
    let weights = Tensor::new(&[[-3e38f32, 0.0, 0.0]], &gpu).unwrap();
    let err = (z * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap_err();
    assert!(err.to_string().contains("overflowed"), "{err}");
}
