//! Layer configurations run on the CPU and on the CUDA path (emulated in
//! `cuda_emulation.rs`, on a GPU in `cuda.rs`), whose results must agree bit for bit.

use candle_core::{Device, Tensor, Var};
use imle_runtime::{
    Argmax, DeviceKernel, ImleConfig, ImleLayer, MapSolver, Noise, Reduce, Sense, Target, TopK,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// One layer configuration with its inputs.
#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub config: ImleConfig,
    pub kernel: DeviceKernel,
    pub batch: usize,
    pub instance: Vec<usize>,
    /// How θ (and, except where `Values` says otherwise, the loss weights) are drawn.
    pub values: Values,
    /// Loss weights all zero: a zero incoming gradient, whose gradient must be exactly 0
    /// (the backward regenerates the forward's noise, so θ + ε − λ·0 solves to z again).
    pub zero_weights: bool,
    /// Run with explicit noise (B·S·M rows) instead of the configured noise.
    pub explicit_noise: bool,
}

/// How a case's θ is drawn, row by row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Values {
    /// Uniform reals in [−2, 2); the loss weights alike.
    Uniform,
    /// Small integers {0, 1, 2}: many ties; the loss weights alike.
    SmallIntegers,
    /// From {−1, −0, +0, 1}, and explicit noise (if any) from {−0, +0}: ties between zeros of
    /// both signs, which must tie (−0 = +0); the loss weights alike.
    SignedZeros,
    /// θ ≡ 0: every entry ties, so top-k selects the first k indices. Uniform loss weights.
    Zeros,
    /// In each row, `ones` entries equal to 1.0 among distinct values, `above` of them
    /// larger than 1 and the rest smaller, shuffled: with k between `above` and
    /// `above + ones` the lowest-index rule picks which ones are selected. Uniform loss
    /// weights.
    OnesAmongDistinct { above: usize, ones: usize },
}

/// Everything the CPU path computed for a case.
pub struct CpuRun {
    pub theta: Vec<f32>,
    /// The explicit noise, when the case has some.
    pub noise: Option<Vec<f32>>,
    /// The forward output and its dims.
    pub z: Vec<f32>,
    pub z_dims: Vec<usize>,
    /// The loss weights w of the loss sum(z · w), i.e. the incoming gradient.
    pub w: Vec<f32>,
    pub gradient: Vec<f32>,
    pub map: Vec<f32>,
    /// AIMLE's running density after the backward pass.
    pub density: f32,
    pub lambda_after: f32,
}

impl Case {
    pub fn new(
        name: &str,
        config: ImleConfig,
        kernel: DeviceKernel,
        batch: usize,
        n: usize,
    ) -> Self {
        Case {
            name: name.to_string(),
            config,
            kernel,
            batch,
            instance: vec![n],
            values: Values::Uniform,
            zero_weights: false,
            explicit_noise: false,
        }
    }

    pub fn n(&self) -> usize {
        self.instance.iter().product()
    }

    pub fn theta_dims(&self) -> Vec<usize> {
        let mut dims = vec![self.batch];
        dims.extend_from_slice(&self.instance);
        dims
    }

    pub fn noise_dims(&self) -> Vec<usize> {
        let mut dims = vec![self.batch * self.draws()];
        dims.extend_from_slice(&self.instance);
        dims
    }

    pub fn draws(&self) -> usize {
        (self.config.samples * self.config.marginal_samples) as usize
    }

    fn rng(&self) -> StdRng {
        let seed = self
            .name
            .bytes()
            .fold(self.n() as u64, |h, b| h.wrapping_mul(31) + b as u64);
        StdRng::seed_from_u64(seed)
    }

    fn random(values: Values, rng: &mut StdRng, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| match values {
                Values::SignedZeros => [-1.0, -0.0, 0.0, 1.0][rng.random_range(0..4)],
                Values::SmallIntegers => rng.random_range(0..3) as f32,
                _ => rng.random_range(-2.0f32..2.0),
            })
            .collect()
    }

    fn theta(&self, rng: &mut StdRng) -> Vec<f32> {
        let (batch, n) = (self.batch, self.n());
        match self.values {
            Values::Zeros => vec![0.0; batch * n],
            Values::OnesAmongDistinct { above, ones } => {
                assert!(above + ones <= n, "{}: too few entries", self.name);
                // Distinct and exact in f32: 1 + i/64 above, 1 − i/1024 below.
                let row = (1..=above)
                    .map(|i| 1.0 + i as f32 / 64.0)
                    .chain(std::iter::repeat_n(1.0, ones))
                    .chain((1..=n - above - ones).map(|i| 1.0 - i as f32 / 1024.0));
                let row: Vec<f32> = row.collect();
                (0..batch)
                    .flat_map(|_| {
                        let mut row = row.clone();
                        row.shuffle(rng);
                        row
                    })
                    .collect()
            }
            values => Self::random(values, rng, batch * n),
        }
    }

    /// The loss weights of the loss sum(z · w), `len` of them.
    fn weights(&self, rng: &mut StdRng, len: usize) -> Vec<f32> {
        match self.values {
            _ if self.zero_weights => vec![0.0; len],
            Values::Zeros | Values::OnesAmongDistinct { .. } => {
                Self::random(Values::Uniform, rng, len)
            }
            values => Self::random(values, rng, len),
        }
    }

    /// θ, the explicit noise (if any) and a generator for the loss weights.
    pub fn inputs(&self) -> (Vec<f32>, Option<Vec<f32>>, StdRng) {
        let mut rng = self.rng();
        let theta = self.theta(&mut rng);
        let noise = self.explicit_noise.then(|| {
            (0..self.batch * self.draws() * self.n())
                .map(|_| {
                    if self.values == Values::SignedZeros {
                        [-0.0, 0.0][rng.random_range(0..2)]
                    } else {
                        rng.random_range(-1.0f32..1.0)
                    }
                })
                .collect()
        });
        (theta, noise, rng)
    }

    /// A fresh layer with this case's solver and configuration, on `device`, run forward and
    /// backward (loss sum(z · w)) and in evaluation; the results come back to the host.
    pub fn run_on(&self, device: &Device) -> CpuRun {
        match self.kernel {
            DeviceKernel::TopK { k } => self.run_with(TopK::new(k).unwrap(), device),
            DeviceKernel::Argmax => self.run_with(Argmax, device),
        }
    }

    fn run_with<S: MapSolver>(&self, solver: S, device: &Device) -> CpuRun {
        let (theta_values, noise_values, mut rng) = self.inputs();
        let theta = Var::from_vec(theta_values.clone(), self.theta_dims(), device).unwrap();
        let layer = ImleLayer::new(solver, self.config).unwrap();
        let z = match &noise_values {
            Some(values) => {
                let noise = Tensor::from_vec(values.clone(), self.noise_dims(), device).unwrap();
                layer.forward_with_noise(&theta, &noise).unwrap()
            }
            None => layer.forward(&theta).unwrap(),
        };
        let w_values = self.weights(&mut rng, z.elem_count());
        let w = Tensor::from_vec(w_values.clone(), z.dims(), device).unwrap();
        let grads = (&z * &w).unwrap().sum_all().unwrap().backward().unwrap();
        CpuRun {
            theta: theta_values,
            noise: noise_values,
            z: host(&z),
            z_dims: z.dims().to_vec(),
            w: w_values,
            gradient: host(grads.get(&theta).unwrap()),
            map: host(&layer.map(&theta).unwrap()),
            density: layer.gradient_density(),
            lambda_after: layer.lambda(),
        }
    }
}

/// A tensor's values on the host, flattened.
pub fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Asserts that two float slices are equal bit for bit, naming the first difference.
pub fn assert_same_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let differing: Vec<usize> = (0..got.len())
        .filter(|&i| got[i].to_bits() != want[i].to_bits())
        .collect();
    if let Some(&i) = differing.first() {
        panic!(
            "{what}: {} of {} values differ; first at {i}: got {} vs CPU {}",
            differing.len(),
            got.len(),
            got[i],
            want[i]
        );
    }
}

/// Every kind of noise, with Sum-of-Gamma on both sides of the sampler's boost (shape 1/k
/// below and above 1) and at the largest number of terms.
pub fn noise_kinds() -> [Noise; 6] {
    [
        Noise::Gumbel,
        Noise::Gaussian,
        Noise::sum_of_gamma(10.0),
        Noise::SumOfGamma { k: 0.5, terms: 3 },
        Noise::SumOfGamma { k: 1.0, terms: 255 },
        Noise::None,
    ]
}

fn base(noise: Noise) -> ImleConfig {
    ImleConfig::new(noise)
        .with_lambda(10.0)
        .unwrap()
        .with_seed(11)
}

fn top(k: usize) -> DeviceKernel {
    DeviceKernel::TopK { k }
}

/// The configurations every CUDA runner checks: each option of the config, both kernels,
/// edge sizes, ties (integer values without noise), and rows longer than the kernels'
/// shared-memory cache.
pub fn all_cases() -> Vec<Case> {
    let sog = Noise::sum_of_gamma(5.0);
    let blackbox = base(Noise::None).with_lambda(1.0).unwrap();
    let long = imle_runtime::cuda::params::CACHE_MAX_N as usize + 808;
    let mut cases = vec![
        Case::new("SoG, S = 1", base(sog), top(5), 4, 50),
        Case::new(
            "Gumbel, S = 3",
            base(Noise::Gumbel).with_samples(3).unwrap(),
            top(4),
            3,
            37,
        ),
        Case::new(
            "SoG, S = 2, M = 2, mean",
            base(sog)
                .with_samples(2)
                .unwrap()
                .with_marginal_samples(2)
                .unwrap()
                .with_reduce(Reduce::Mean),
            top(5),
            3,
            40,
        ),
        Case::new(
            "Gumbel, S = 5, mean",
            base(Noise::Gumbel)
                .with_samples(5)
                .unwrap()
                .with_reduce(Reduce::Mean),
            top(3),
            2,
            30,
        ),
        Case::new(
            "Gaussian, minimise, scaled, alpha, taus",
            base(Noise::Gaussian)
                .with_sense(Sense::Minimize)
                .with_scale_by_lambda(true)
                .with_alpha(0.5)
                .unwrap()
                .with_tau(0.7)
                .unwrap()
                .with_target_tau(1.3)
                .unwrap()
                .with_samples(2)
                .unwrap(),
            top(3),
            2,
            33,
        ),
        Case::new(
            "Gumbel, symmetric, M = 3",
            base(Noise::Gumbel)
                .with_symmetric(true)
                .with_marginal_samples(3)
                .unwrap(),
            top(6),
            2,
            25,
        ),
        Case::new(
            "adaptive",
            base(Noise::Gumbel)
                .with_target(Target::Adaptive {
                    target_density: 0.3,
                    step: 0.1,
                })
                .unwrap()
                .with_samples(2)
                .unwrap(),
            top(4),
            3,
            30,
        ),
        Case::new(
            "normalized, scale by λ",
            base(Noise::Gumbel)
                .with_target(Target::Normalized)
                .unwrap()
                .with_lambda(0.7)
                .unwrap()
                .with_scale_by_lambda(true)
                .with_samples(2)
                .unwrap(),
            top(4),
            3,
            30,
        ),
        Case::new("k = n", base(Noise::Gumbel), top(9), 2, 9),
        Case::new("n = 1", base(sog), top(1), 3, 1),
        Case::new(
            "argmax, Gumbel",
            base(Noise::Gumbel),
            DeviceKernel::Argmax,
            4,
            21,
        ),
        Case::new(
            "long, Gumbel",
            base(Noise::Gumbel).with_samples(2).unwrap(),
            top(100),
            2,
            long,
        ),
        Case::new(
            "long, SoG",
            base(Noise::sum_of_gamma(50.0)),
            top(50),
            1,
            long,
        ),
        Case::new(
            "n = 10^5, Gumbel",
            base(Noise::Gumbel),
            top(2500),
            1,
            100_000,
        ),
        Case {
            explicit_noise: true,
            instance: vec![4, 5],
            ..Case::new(
                "explicit noise, 2-D instances",
                base(Noise::Gumbel)
                    .with_samples(2)
                    .unwrap()
                    .with_marginal_samples(2)
                    .unwrap(),
                top(7),
                2,
                0,
            )
        },
    ];
    // Ties: most selections are decided by the lowest-index rule, also across several tiles
    // (1024 elements) of the kernels' tie scan, cached or not.
    for (n, k) in [
        (20, 3),
        (20, 19),
        (3000, 1500),
        (3000, 1),
        (3000, 2999),
        (long, 4000),
    ] {
        cases.push(Case {
            values: Values::SmallIntegers,
            ..Case::new(
                &format!("ties, n = {n}, k = {k}"),
                blackbox.with_samples(2).unwrap(),
                top(k),
                if n == long { 1 } else { 2 },
                n,
            )
        });
    }
    cases.push(Case {
        values: Values::SmallIntegers,
        ..Case::new("argmax ties", blackbox, DeviceKernel::Argmax, 3, 17)
    });
    // Zeros of both signs tie: in θ, in θ − λ·g (the backward's inputs) and in θ + τ·ε.
    for (kernel, explicit_noise) in [
        (top(1), false),
        (DeviceKernel::Argmax, true),
        (top(3), true),
    ] {
        cases.push(Case {
            values: Values::SignedZeros,
            explicit_noise,
            ..Case::new(
                &format!("signed zeros, {kernel:?}, explicit noise: {explicit_noise}"),
                blackbox.with_samples(2).unwrap(),
                kernel,
                3,
                19,
            )
        });
    }
    // 300 entries equal to 1.0 among 100 larger and 600 smaller distinct values, k = 150: the
    // lowest-index rule picks 50 of the 300 ones; with noise, the noise decides.
    for noise in [Noise::None, Noise::Gumbel, Noise::sum_of_gamma(150.0)] {
        cases.push(Case {
            values: Values::OnesAmongDistinct {
                above: 100,
                ones: 300,
            },
            ..Case::new(
                &format!("300 ones among distinct values, k = 150, {noise:?}"),
                base(noise).with_samples(2).unwrap(),
                top(150),
                2,
                1000,
            )
        });
    }
    cases
}

/// θ ≡ 0 with n = 1000, k = 10, no noise: every entry ties, so the forward and MAP select
/// the first ten indices (`first_indices`).
pub fn zero_theta_case() -> Case {
    let blackbox = base(Noise::None).with_lambda(1.0).unwrap();
    Case {
        values: Values::Zeros,
        ..Case::new("θ ≡ 0", blackbox.with_samples(2).unwrap(), top(10), 2, 1000)
    }
}

/// The top-k solution of `rows` rows of length `n` that select their first `k` indices.
pub fn first_indices(rows: usize, n: usize, k: usize) -> Vec<f32> {
    (0..rows * n)
        .map(|i| if i % n < k { 1.0 } else { 0.0 })
        .collect()
}

/// A zero incoming gradient for every kind of noise, with several samples, marginal samples
/// and the central difference: each gradient must be exactly 0. The backward regenerates the
/// forward's noise from its key, so the target θ + ε − λ·0 solves to the forward's own
/// solution unless the regenerated ε differs; a non-zero entry is a counter mismatch.
///
/// With `every_combination` each noise kind runs with each of the three options and both
/// kernels (36 cases, for the GPU). Without, for the emulation (where every launch starts
/// threads), 6 cases: each noise kind once, with S = 3 or with marginal samples (the options
/// where a counter mismatch between forward and backward shows: the central difference
/// regenerates the noise on both of its sides) and with either kernel; the central difference
/// runs once, with no noise.
pub fn zero_gradient_cases(every_combination: bool) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, noise) in noise_kinds().into_iter().enumerate() {
        let options = [
            ("S = 3", base(noise).with_samples(3).unwrap()),
            (
                "S = 2, M = 2, mean",
                base(noise)
                    .with_samples(2)
                    .unwrap()
                    .with_marginal_samples(2)
                    .unwrap()
                    .with_reduce(Reduce::Mean),
            ),
            (
                "central difference, S = 2, M = 2",
                base(noise)
                    .with_symmetric(true)
                    .with_samples(2)
                    .unwrap()
                    .with_marginal_samples(2)
                    .unwrap(),
            ),
        ];
        // The one combination the emulation runs for this noise kind.
        let (option, kernel_index) = if noise == Noise::None {
            (2, 0)
        } else {
            (i % 2, (i / 2) % 2)
        };
        for (j, (what, config)) in options.into_iter().enumerate() {
            for (l, kernel) in [top(5), DeviceKernel::Argmax].into_iter().enumerate() {
                if !every_combination && (j != option || l != kernel_index) {
                    continue;
                }
                cases.push(Case {
                    zero_weights: true,
                    ..Case::new(
                        &format!("zero gradient, {noise:?}, {what}, {kernel:?}"),
                        config,
                        kernel,
                        3,
                        50,
                    )
                });
            }
        }
    }
    cases
}
