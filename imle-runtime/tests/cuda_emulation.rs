//! The CUDA kernels of `src/cuda/kernels.cu`, compiled as host C++ and run under a small
//! emulation of CUDA's thread blocks (`tests/cuda_emulation/`), against the CPU path.
//!
//! The kernels are meant to reproduce the CPU path exactly: the same f32 operations in the
//! same order (noise), the same selections with the same tie rule (top-k, argmax), the same
//! sums in the same order (gradients, the mean over samples). So every comparison here has
//! zero tolerance. This checks the kernels' logic -- indexing, the radix select, ties, the
//! draws' bookkeeping -- on machines without a GPU; `tests/cuda.rs` (feature `cuda`) checks
//! the same on a GPU.
//!
//! Needs a C++20 compiler (`$CXX`, else `g++`). Without one each test passes having checked
//! nothing, and says so where CI shows it: `support/skip.rs` records the skip and `.ci/run`
//! prints a `SKIPPED: ...` line for it. With `IMLE_REQUIRE_GXX=1` (set by `.ci/run`, which
//! installs g++ first) a missing compiler fails the tests instead.

#[path = "support/skip.rs"]
mod skip;
mod support;

use imle_runtime::cuda::params::{
    BackwardParams, ForwardParams, KEYS_RECOMPUTED, KEYS_SCRATCH, NoiseParams,
    dynamic_shared_bytes, key_words, sog_coefficients,
};
use imle_runtime::noise::fill_instance;
use imle_runtime::{Argmax, DeviceKernel, ImleConfig, MapSolver, Noise, NoiseKey, Target, TopK};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use support::cases::{
    Case, CpuRun, all_cases, assert_same_bits, first_indices, noise_kinds, zero_gradient_cases,
    zero_theta_case,
};

type NoiseFn = unsafe extern "C" fn(NoiseParams, u32, u32, u64, *mut f32, u32, u32);
type ForwardFn = unsafe extern "C" fn(
    NoiseParams,
    ForwardParams,
    *const f32,
    *const f32,
    *mut u32,
    *mut f32,
    *mut u32,
    u32,
    u32,
);
type BackwardFn = unsafe extern "C" fn(
    NoiseParams,
    BackwardParams,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *mut u32,
    *mut f32,
    *mut u64,
    *mut u32,
    u32,
    u32,
);
type BackwardRowsFn = unsafe extern "C" fn(
    NoiseParams,
    BackwardParams,
    u32,
    u32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *mut u32,
    *mut i8,
    *mut u64,
    *mut u32,
    u32,
    u32,
);
type BackwardSumFn =
    unsafe extern "C" fn(BackwardParams, u32, u32, *const f32, *const i8, *mut f32, u32, u32);
type MeanRowsFn = unsafe extern "C" fn(ForwardParams, *const f32, *mut f32, u32, u32);
type LambdasFn =
    unsafe extern "C" fn(*const f32, *const f32, u32, u32, u32, f32, *mut f32, u32, u32);

/// Blocks per emulated launch: the kernels loop over the rest, so a few blocks exercise the
/// grid-stride loops without starting too many threads.
const GRID: u32 = 3;

/// The global key scratch of a launch with `keys` (one region per block), filled with junk
/// that the kernels must overwrite before reading.
fn scratch_for(keys: u32, n: usize) -> Vec<u32> {
    if keys == KEYS_SCRATCH {
        vec![0xdead_beef; GRID as usize * key_words(n)]
    } else {
        Vec::new()
    }
}

struct Emulated {
    library: libloading::Library,
}

/// The emulated kernels, compiled once per test process; `None` (with the skip of `test`
/// recorded) where no C++ compiler is available, a failure if `IMLE_REQUIRE_GXX` is set.
fn emulated(test: &str) -> Option<&'static Emulated> {
    static LIBRARY: OnceLock<Result<Emulated, String>> = OnceLock::new();
    let built = LIBRARY.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cuda_emulation");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imle_emulated_kernels.so");
        let compiler = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        let status = Command::new(&compiler)
            .args(["-std=c++20", "-O2", "-fPIC", "-shared", "-pthread"])
            // No fused multiply-add, as the NVRTC options ask of the GPU compiler.
            .args(["-ffp-contract=off", "-fno-fast-math"])
            .arg(dir.join("driver.cpp"))
            .arg("-o")
            .arg(&out)
            .status()
            .map_err(|e| format!("no C++ compiler `{compiler}` ({e})"))?;
        if !status.success() {
            // The compiler exists but the kernels do not compile: a real failure.
            panic!("{compiler} failed to compile the emulated kernels ({status})");
        }
        // SAFETY: the library is ours, built just now; its initialisers do nothing unusual.
        let library = unsafe { libloading::Library::new(&out) }.map_err(|e| e.to_string())?;
        Ok(Emulated { library })
    });
    match built {
        Ok(emulated) => Some(emulated),
        Err(why) => {
            let why = format!("the CUDA kernels were not emulated: {why}");
            skip::skip_unless_required(test, "IMLE_REQUIRE_GXX", &why);
            None
        }
    }
}

impl Emulated {
    fn symbol<T: Copy>(&self, name: &str) -> T {
        // SAFETY: each name is looked up with the signature driver.cpp defines it with.
        unsafe { *self.library.get::<T>(name.as_bytes()).unwrap() }
    }

    fn noise(&self, params: NoiseParams, n: usize, draws: usize, rows: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; rows * n];
        let run: NoiseFn = self.symbol("emu_noise");
        // SAFETY: `out` holds rows · n floats, as the kernel writes.
        unsafe {
            run(
                params,
                n as u32,
                draws as u32,
                rows as u64,
                out.as_mut_ptr(),
                GRID,
                64,
            );
        }
        out
    }

    fn forward(
        &self,
        noise: NoiseParams,
        params: ForwardParams,
        theta: &[f32],
        explicit_noise: Option<&[f32]>,
    ) -> (Vec<f32>, u32) {
        let n = params.n as usize;
        assert_eq!(theta.len(), params.batch as usize * n);
        let mut out = vec![f32::NAN; params.units() * n];
        let mut bad = 0u32;
        let mut scratch = scratch_for(params.keys, n);
        let run: ForwardFn = self.symbol("emu_forward");
        // SAFETY: the buffers have the sizes the params describe.
        unsafe {
            run(
                noise,
                params,
                theta.as_ptr(),
                explicit_noise.map_or(std::ptr::null(), <[f32]>::as_ptr),
                scratch.as_mut_ptr(),
                out.as_mut_ptr(),
                &mut bad,
                GRID,
                dynamic_shared_bytes(params.keys, n),
            );
        }
        (out, bad)
    }

    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        noise: NoiseParams,
        params: BackwardParams,
        theta: &[f32],
        z: &[f32],
        grad: &[f32],
        row_lambda: Option<&[f32]>,
        explicit_noise: Option<&[f32]>,
    ) -> (Vec<f32>, u64, u32) {
        let n = params.n as usize;
        let mut gradient = vec![f32::NAN; params.batch as usize * n];
        let (mut nonzeros, mut bad) = (0u64, 0u32);
        let mut scratch = scratch_for(params.keys, n);
        let run: BackwardFn = self.symbol("emu_backward");
        // SAFETY: the buffers have the sizes the params describe.
        unsafe {
            run(
                noise,
                params,
                theta.as_ptr(),
                z.as_ptr(),
                grad.as_ptr(),
                row_lambda.map_or(std::ptr::null(), <[f32]>::as_ptr),
                explicit_noise.map_or(std::ptr::null(), <[f32]>::as_ptr),
                scratch.as_mut_ptr(),
                gradient.as_mut_ptr(),
                &mut nonzeros,
                &mut bad,
                GRID,
                dynamic_shared_bytes(params.keys, n),
            );
        }
        (gradient, nonzeros, bad)
    }

    /// The two-phase mean over samples, `chunk` samples at a time: their solutions as rows,
    /// then the ordered sum (and the 1/S) into the output.
    fn forward_two_phase_mean(
        &self,
        noise: NoiseParams,
        params: ForwardParams,
        chunk: u32,
        theta: &[f32],
        explicit_noise: Option<&[f32]>,
    ) -> (Vec<f32>, u32) {
        let (batch, n) = (params.batch as usize, params.n as usize);
        let mut out = vec![f32::NAN; batch * n];
        let mut bad_total = 0;
        let mean_rows: MeanRowsFn = self.symbol("emu_mean_rows");
        for s_begin in (0..params.samples).step_by(chunk as usize) {
            let rows = params.sample_rows(s_begin, (s_begin + chunk).min(params.samples));
            let (solutions, bad) = self.forward(noise, rows, theta, explicit_noise);
            bad_total |= bad;
            // SAFETY: `solutions` holds the chunk's rows, `out` batch · n floats.
            unsafe { mean_rows(rows, solutions.as_ptr(), out.as_mut_ptr(), GRID, 64) };
        }
        (out, bad_total)
    }

    /// The two-phase backward, `chunk` draws at a time: the differences of the chunk's
    /// (instance, draw) rows, then their ordered sum into the gradient.
    #[allow(clippy::too_many_arguments)]
    fn backward_two_phase(
        &self,
        noise: NoiseParams,
        params: BackwardParams,
        chunk: u32,
        theta: &[f32],
        z: &[f32],
        grad: &[f32],
        row_lambda: Option<&[f32]>,
        explicit_noise: Option<&[f32]>,
    ) -> (Vec<f32>, u64, u32) {
        let (batch, n) = (params.batch as usize, params.n as usize);
        let mut gradient = vec![f32::NAN; batch * n];
        let (mut nonzeros, mut bad) = (0u64, 0u32);
        let rows: BackwardRowsFn = self.symbol("emu_backward_rows");
        let sum: BackwardSumFn = self.symbol("emu_backward_sum");
        let lambdas = row_lambda.map_or(std::ptr::null(), <[f32]>::as_ptr);
        let mut scratch = scratch_for(params.keys, n);
        for d_begin in (0..params.draws).step_by(chunk as usize) {
            let d_end = (d_begin + chunk).min(params.draws);
            let mut differences = vec![7i8; batch * (d_end - d_begin) as usize * n];
            // SAFETY: the buffers have the sizes the params and the chunk describe.
            unsafe {
                rows(
                    noise,
                    params,
                    d_begin,
                    d_end,
                    theta.as_ptr(),
                    z.as_ptr(),
                    grad.as_ptr(),
                    lambdas,
                    explicit_noise.map_or(std::ptr::null(), <[f32]>::as_ptr),
                    scratch.as_mut_ptr(),
                    differences.as_mut_ptr(),
                    &mut nonzeros,
                    &mut bad,
                    GRID,
                    dynamic_shared_bytes(params.keys, n),
                );
                sum(
                    params,
                    d_begin,
                    d_end,
                    lambdas,
                    differences.as_ptr(),
                    gradient.as_mut_ptr(),
                    GRID,
                    64,
                );
            }
        }
        (gradient, nonzeros, bad)
    }

    fn row_lambdas(
        &self,
        theta: &[f32],
        grad: &[f32],
        batch: usize,
        n: usize,
        beta: f32,
    ) -> Vec<f32> {
        let rows = grad.len() / n;
        let mut out = vec![f32::NAN; rows];
        let run: LambdasFn = self.symbol("emu_row_lambdas");
        // SAFETY: theta is batch · n, grad rows · n, out rows floats.
        unsafe {
            run(
                theta.as_ptr(),
                grad.as_ptr(),
                batch as u32,
                n as u32,
                (rows / batch) as u32,
                beta,
                out.as_mut_ptr(),
                GRID,
                32,
            );
        }
        out
    }
}

/// The Rust mirrors of the kernels' parameter structs have the C++ structs' sizes (their
/// fields are all 4 bytes, in the same order).
/// `NoiseParams` as the CUDA op builds them, with the Sum-of-Gamma table's host address in
/// place of the device one (the table stays in the process-wide cache, so the address
/// stays valid).
fn noise_params(noise: &Noise, key: NoiseKey) -> NoiseParams {
    let params = NoiseParams::new(noise, key);
    match sog_coefficients(noise).expect("a valid noise") {
        Some(table) => params.with_sog_table(table.coefficients().as_ptr() as u64),
        None => params,
    }
}

#[test]
fn parameter_structs_match_the_kernels() {
    let Some(emu) = emulated("cuda_emulation::parameter_structs_match_the_kernels") else {
        return;
    };
    let size_of: unsafe extern "C" fn(u32) -> u32 = emu.symbol("emu_sizeof_params");
    // SAFETY: a pure function of an integer.
    let sizes = unsafe { [size_of(0), size_of(1), size_of(2)] };
    let mirrors = [
        std::mem::size_of::<NoiseParams>(),
        std::mem::size_of::<ForwardParams>(),
        std::mem::size_of::<BackwardParams>(),
    ];
    assert_eq!(sizes.map(|s| s as usize), mirrors);
}

#[test]
fn noise_matches_the_cpu_bit_for_bit() {
    let Some(emu) = emulated("cuda_emulation::noise_matches_the_cpu_bit_for_bit") else {
        return;
    };
    let key = NoiseKey::new(2024, 3);
    for noise in noise_kinds() {
        for n in [1usize, 6, 37, 300] {
            let (batch, draws) = (3, 2);
            let got = emu.noise(noise_params(&noise, key), n, draws, batch * draws);
            let mut want = vec![0.0f32; batch * draws * n];
            for (row, out) in want.chunks_mut(n).enumerate() {
                fill_instance(&noise, key, (row / draws) as u32, (row % draws) as u32, out);
            }
            assert_same_bits(&format!("{noise:?}, n = {n}"), &got, &want);
        }
    }
}

/// Runs `case` on the CPU and emulated, with the params the CUDA op would launch with; the
/// CPU's results, which the emulated kernels matched bit for bit.
fn check(emu: &Emulated, case: &Case, keys: Option<u32>) -> CpuRun {
    let cpu = case.run_on(&candle_core::Device::Cpu);
    let config = case.config;
    let (batch, n) = (case.batch, case.n());
    // A fresh layer's first call is keyed by call number 0.
    let noise = noise_params(&config.noise, NoiseKey::new(config.seed, 0));
    let explicit = cpu.noise.is_some();
    let mut forward = ForwardParams::training(&config, case.kernel, batch, n, explicit);
    forward.keys = keys.unwrap_or(forward.keys);
    let (z, bad) = emu.forward(noise, forward, &cpu.theta, cpu.noise.as_deref());
    assert_same_bits(&format!("{}: forward", case.name), &z, &cpu.z);
    assert_eq!(bad, 0, "{}: finite inputs flagged", case.name);
    if forward.mean != 0 {
        // The two-phase mean (for few instances with many samples), sample by sample, two at
        // a time and all at once.
        for chunk in [1, 2, config.samples] {
            let (two_phase, bad) =
                emu.forward_two_phase_mean(noise, forward, chunk, &cpu.theta, cpu.noise.as_deref());
            let what = format!("{}: two-phase mean, {chunk} samples at a time", case.name);
            assert_same_bits(&what, &two_phase, &cpu.z);
            assert_eq!(bad, 0, "{what}");
        }
    }

    let grad_rows = cpu.w.len() / n;
    let row_lambda = match config.target {
        Target::Perturb => None,
        Target::Normalized | Target::Adaptive { .. } => {
            Some(emu.row_lambdas(&cpu.theta, &cpu.w, batch, n, config.lambda))
        }
    };
    let mut backward = BackwardParams::new(
        &config,
        case.kernel,
        batch,
        n,
        grad_rows,
        config.lambda,
        explicit,
    );
    backward.keys = keys.unwrap_or(backward.keys);
    let (gradient, nonzeros, bad) = emu.backward(
        noise,
        backward,
        &cpu.theta,
        &z,
        &cpu.w,
        row_lambda.as_deref(),
        cpu.noise.as_deref(),
    );
    assert_same_bits(
        &format!("{}: gradient", case.name),
        &gradient,
        &cpu.gradient,
    );
    assert_eq!(bad, 0, "{}: finite inputs flagged", case.name);
    // The two-phase backward (for few instances with many draws), draw by draw, two draws
    // at a time and all at once: the same gradient and count.
    for chunk in [1, 2, case.draws() as u32] {
        let (two_phase, two_phase_nonzeros, bad) = emu.backward_two_phase(
            noise,
            backward,
            chunk,
            &cpu.theta,
            &z,
            &cpu.w,
            row_lambda.as_deref(),
            cpu.noise.as_deref(),
        );
        let what = format!("{}: two-phase gradient, {chunk} draws at a time", case.name);
        assert_same_bits(&what, &two_phase, &cpu.gradient);
        assert_eq!((two_phase_nonzeros, bad), (nonzeros, 0), "{what}: counts");
    }
    // Every target reports the density of its last backward pass: the kernels' count per
    // (instance, draw).
    let density = nonzeros as f32 / (batch * case.draws()) as f32;
    assert_eq!(cpu.density, density, "{}: density", case.name);

    let mut map = ForwardParams::map(case.kernel, batch, n);
    map.keys = keys.unwrap_or(map.keys);
    let (map, _) = emu.forward(NoiseParams::default(), map, &cpu.theta, None);
    assert_same_bits(&format!("{}: map", case.name), &map, &cpu.map);
    cpu
}

/// Every configuration of `support/cases.rs`: forward, backward and MAP equal to the CPU's,
/// bit for bit (options, both kernels, edge sizes, ties across tiles, long rows).
#[test]
fn layers_match_the_cpu() {
    let Some(emu) = emulated("cuda_emulation::layers_match_the_cpu") else {
        return;
    };
    for case in all_cases() {
        let _ = check(emu, &case, None);
        // Rows too long for shared memory: also with their keys in the global scratch.
        if ForwardParams::map(case.kernel, 1, case.n()).keys == KEYS_RECOMPUTED {
            let _ = check(emu, &case, Some(KEYS_SCRATCH));
        }
    }
}

/// θ ≡ 0 with n = 1000, k = 10: the emulated kernels select the first ten indices, in
/// training without noise and in MAP (issue #15).
#[test]
fn zero_theta_selects_the_first_indices() {
    let Some(emu) = emulated("cuda_emulation::zero_theta_selects_the_first_indices") else {
        return;
    };
    let case = zero_theta_case();
    let run = check(emu, &case, None);
    let rows = run.z.len() / case.n();
    assert_same_bits("θ ≡ 0: forward", &run.z, &first_indices(rows, case.n(), 10));
    let map = first_indices(case.batch, case.n(), 10);
    assert_same_bits("θ ≡ 0: map", &run.map, &map);
}

/// A zero incoming gradient gives a gradient of exactly 0 (not −0 either), for every noise
/// kind, several samples, marginal samples and the central difference, in both kernels: the
/// backward kernel regenerates the forward's noise (issue #15). Six of the GPU's 36
/// combinations (`zero_gradient_cases`), each through every backward path of `check`.
#[test]
fn a_zero_incoming_gradient_gives_exactly_zero() {
    let Some(emu) = emulated("cuda_emulation::a_zero_incoming_gradient_gives_exactly_zero") else {
        return;
    };
    for case in zero_gradient_cases(false) {
        let run = check(emu, &case, None);
        assert_same_bits(
            &format!("{}: gradient", case.name),
            &run.gradient,
            &vec![0.0; run.gradient.len()],
        );
    }
}

/// Both kernels compare numerically (−0 = +0, ties to the lowest index), as the CPU solvers:
/// flipping the sign of zeros in θ or in the noise never changes a solution, top-1 is argmax,
/// and both equal the CPU's `TopK` and `Argmax` (issue #12 §1).
#[test]
fn signed_zeros_tie_in_both_kernels() {
    let Some(emu) = emulated("cuda_emulation::signed_zeros_tie_in_both_kernels") else {
        return;
    };
    // The exact case of the issue, and a row whose maxima are zeros of both signs.
    for (theta, want) in [
        (vec![-0.0f32, 0.0], vec![1.0f32, 0.0]),
        (
            vec![-1.0, -0.0, 0.0, -0.0, -3.0, 0.0],
            vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        ),
    ] {
        let n = theta.len();
        for kernel in [DeviceKernel::Argmax, DeviceKernel::TopK { k: 1 }] {
            let map = ForwardParams::map(kernel, 1, n);
            let (got, _) = emu.forward(NoiseParams::default(), map, &theta, None);
            assert_eq!(got, want, "{kernel:?} on {theta:?}");
        }
    }

    let mut rng = StdRng::seed_from_u64(12);
    let tiny = [-1.0f32, -0.0, 0.0, 1.0];
    let flip = |values: &[f32], rng: &mut StdRng| -> Vec<f32> {
        values
            .iter()
            .map(|&v| {
                if v == 0.0 && rng.random_bool(0.5) {
                    -v
                } else {
                    v
                }
            })
            .collect()
    };
    let config = ImleConfig::new(Noise::Gumbel);
    let noise = noise_params(&config.noise, NoiseKey::new(0, 0));
    // Each emulated launch starts 256 threads: few trials, each with several rows.
    for trial in 0..8 {
        let (batch, n) = (4, 2 + 3 * trial);
        let theta: Vec<f32> = (0..batch * n)
            .map(|_| tiny[rng.random_range(0..4)])
            .collect();
        let eps: Vec<f32> = (0..batch * n)
            .map(|_| [-0.0, 0.0][rng.random_range(0..2)])
            .collect();
        let (theta_flipped, eps_flipped) = (flip(&theta, &mut rng), flip(&eps, &mut rng));
        let mut kernels = vec![DeviceKernel::Argmax];
        kernels.extend([1, 2, n / 2 + 1, n].map(|k| DeviceKernel::TopK { k }));
        let mut solutions = Vec::new();
        for kernel in kernels {
            let map = ForwardParams::map(kernel, batch, n);
            let (z, _) = emu.forward(NoiseParams::default(), map, &theta, None);
            let (z_flipped, _) = emu.forward(NoiseParams::default(), map, &theta_flipped, None);
            assert_eq!(z, z_flipped, "{kernel:?}: θ {theta:?} vs {theta_flipped:?}");
            // θ + τ·ε with ε = ±0: the training path's keys.
            let training = ForwardParams::training(&config, kernel, batch, n, true);
            let (z_noisy, _) = emu.forward(noise, training, &theta_flipped, Some(&eps));
            let (z_noisy_flipped, _) = emu.forward(noise, training, &theta, Some(&eps_flipped));
            assert_eq!(z_noisy, z, "{kernel:?}: θ + τ·(±0)");
            assert_eq!(z_noisy_flipped, z, "{kernel:?}: θ + τ·(±0), flipped");
            let cpu: Vec<f32> = theta
                .chunks(n)
                .flat_map(|row| {
                    let mut out = vec![0.0f32; n];
                    match kernel {
                        DeviceKernel::Argmax => Argmax.solve(row, &[n], &mut out, &mut ()),
                        DeviceKernel::TopK { k } => {
                            TopK::new(k)
                                .unwrap()
                                .solve(row, &[n], &mut out, &mut Vec::new())
                        }
                    }
                    .unwrap();
                    out
                })
                .collect();
            assert_eq!(z, cpu, "{kernel:?} vs the CPU solver on θ {theta:?}");
            solutions.push(z);
        }
        assert_eq!(solutions[0], solutions[1], "argmax vs top-1 on θ {theta:?}");
    }
}

/// NaN and infinities in θ, the incoming gradient or the explicit noise are reported through
/// the kernels' `bad` word, one bit per input, so that the op can return an error.
#[test]
fn non_finite_inputs_are_flagged() {
    let Some(emu) = emulated("cuda_emulation::non_finite_inputs_are_flagged") else {
        return;
    };
    let config = ImleConfig::new(Noise::Gumbel);
    let kernel = DeviceKernel::TopK { k: 2 };
    let noise = noise_params(&config.noise, NoiseKey::new(0, 0));
    let theta = [0.5f32, f32::NAN, 1.0, 0.0, 2.0];
    let finite = [0.5f32, 0.1, 1.0, 0.0, 2.0];
    let forward = ForwardParams::training(&config, kernel, 1, 5, false);
    assert_eq!(emu.forward(noise, forward, &theta, None).1, 1, "NaN in θ");
    let map = ForwardParams::map(kernel, 1, 5);
    assert_eq!(emu.forward(noise, map, &theta, None).1, 1, "NaN in θ, MAP");
    let explicit = ForwardParams::training(&config, kernel, 1, 5, true);
    let eps = [0.0f32, 0.0, f32::INFINITY, 0.0, 0.0];
    assert_eq!(
        emu.forward(noise, explicit, &finite, Some(&eps)).1,
        4,
        "inf in the noise"
    );
    let (z, bad) = emu.forward(noise, forward, &finite, None);
    assert_eq!(bad, 0);
    let backward = BackwardParams::new(&config, kernel, 1, 5, 1, 1.0, false);
    let grad = [0.0f32, f32::NEG_INFINITY, 0.0, 0.0, 0.0];
    let (.., bad) = emu.backward(noise, backward, &finite, &z, &grad, None, None);
    assert_eq!(bad, 2, "-inf in the incoming gradient");
    let (.., bad) = emu.backward(noise, backward, &theta, &z, &grad, None, None);
    assert_eq!(bad, 3, "both");
    // Finite inputs whose solver input overflows: θ − λ·g = 3e38 + 3e38 = inf.
    let huge = [3e38f32, 0.0, 0.0, 0.0, 0.0];
    let minus_huge = [-3e38f32, 0.0, 0.0, 0.0, 0.0];
    let (.., bad) = emu.backward(noise, backward, &huge, &z, &minus_huge, None, None);
    assert_eq!(bad, 8, "overflow of the solver input");
}
