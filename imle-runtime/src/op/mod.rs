//! The I-MLE op, written as candle-nn writes its ops: one struct per op, whose `CustomOp`
//! impls hold a CPU backend (`cpu.rs`) and, with feature `cuda`, a CUDA backend (`cuda.rs`).
//! candle's storage picks the backend; nothing here branches on the device.
//!
//! * [`ImleOp`] (a `CustomOp1` over θ): perturb-and-MAP forward; its `bwd` applies
//!   [`Backward`] (a `CustomOp3` over θ, the forward's output and ∂L/∂z), the target
//!   distribution's passes.
//! * [`MapOp`]: `MAP(θ)` for evaluation, with no noise and no backward.
//!
//! Notation (ARCHITECTURE.md gives the data flow): σ = +1 to maximise, −1 to minimise; ε the
//! unscaled noise of one (instance b, draw d) with d = m·S + s (s the sample, m the marginal
//! draw); τ, τ' the forward and target temperatures. Minimisation is the maximising layer
//! applied to −θ, which in θ-space reads:
//!
//! * forward solver input: `θ + σ·τ·ε`
//! * target input: `α·θ − σ·λ·g + σ·τ'·ε`
//! * gradient term: `σ·(z − z')`, or for the central difference
//!   `σ·(MAP(αθ + σλg + στ'ε) − MAP(αθ − σλg + στ'ε)) / 2`
//! * gradient: the mean of the terms over the `S·M` draws of each instance.
//!
//! A solver without a GPU kernel ([`crate::MapSolver::device_kernel`] is `None`) still runs
//! on CUDA tensors: the CUDA backend copies its inputs to the host (θ forward; θ, the output
//! and ∂L/∂z backward; the explicit noise, if any, in each pass), runs the CPU backend and
//! copies the result back.

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;

use crate::config::ImleConfig;
use crate::host::backend_device;
use crate::noise::NoiseKey;
pub(crate) use crate::plumbing::Dims;
use crate::plumbing::Solver;
use crate::state::LayerState;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Device, Layout, Result, Shape, Tensor};
use std::sync::{Arc, OnceLock};

/// The three row layouts of a call, named once. Instance `b` has `S` samples and `D = S·M`
/// draws; draw `d = m·S + s` belongs to sample `d % S`.
///
/// * **sample rows** `b·S + s`: the forward's solutions;
/// * **draw rows** `b·D + d`: the explicit noise and the backward's target solutions (and
///   the extra forward solutions `d ≥ S` at `b·(D − S) + d − S`);
/// * **gradient rows** `b·G + s % G`: the incoming gradient ∂L/∂z and its λ, with `G = S`
///   rows per instance, or `G = 1` when the output is the mean over samples.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rows {
    pub(crate) samples: usize,
    pub(crate) draws: usize,
    pub(crate) grad_per_instance: usize,
}

impl Rows {
    /// The layout of a call with `grad_rows` rows of incoming gradient over `batch` instances.
    pub(crate) fn new(config: &ImleConfig, batch: usize, grad_rows: usize) -> Self {
        Rows {
            samples: config.samples as usize,
            draws: config.draws() as usize,
            grad_per_instance: grad_rows / batch,
        }
    }

    /// (instance, sample) of sample row `row`.
    pub(crate) fn of_sample_row(&self, row: usize) -> (usize, usize) {
        (row / self.samples, row % self.samples)
    }

    /// (instance, draw) of draw row `row`.
    pub(crate) fn of_draw_row(&self, row: usize) -> (usize, usize) {
        (row / self.draws, row % self.draws)
    }

    pub(crate) fn sample_row(&self, b: usize, s: usize) -> usize {
        b * self.samples + s
    }

    pub(crate) fn draw_row(&self, b: usize, d: usize) -> usize {
        b * self.draws + d
    }

    /// Draws per instance beyond the forward's samples (the marginal draws `m ≥ 1`).
    pub(crate) fn extra_draws(&self) -> usize {
        self.draws - self.samples
    }

    /// (instance, draw) of row `row` of the extra forward solutions.
    pub(crate) fn of_extra_row(&self, row: usize) -> (usize, usize) {
        let extra = self.extra_draws();
        (row / extra, self.samples + row % extra)
    }

    /// The extra forward solution row of draw `d ≥ S` of instance b.
    pub(crate) fn extra_row(&self, b: usize, d: usize) -> usize {
        b * self.extra_draws() + d - self.samples
    }

    /// The gradient row that draw `d` of instance b uses.
    pub(crate) fn grad_row(&self, b: usize, d: usize) -> usize {
        b * self.grad_per_instance + (d % self.samples) % self.grad_per_instance
    }
}

/// What the forward pass keeps for the backward pass.
struct Saved {
    /// Per-sample solutions (sample rows); kept only for `Reduce::Mean` (otherwise they are the
    /// op's output).
    samples: Option<Vec<f32>>,
}

/// The training op of an I-MLE layer over θ (`f32`, contiguous; `[B, instance…]`).
pub(crate) struct ImleOp<S: Solver> {
    solver: Arc<S>,
    config: ImleConfig,
    dims: Dims,
    key: NoiseKey,
    /// λ for the perturb and normalized targets, β for the adaptive one (read when the op was
    /// made, so one training step uses one λ).
    lambda: f32,
    /// Noise given by the caller, draw rows, unscaled, f32, contiguous, on θ's device.
    explicit_noise: Option<Tensor>,
    state: Arc<LayerState>,
    /// Set by the CPU backend's forward (candle runs a forward once per op value).
    saved: OnceLock<Saved>,
}

impl<S: Solver> ImleOp<S> {
    fn output_shape(&self, rows: usize) -> Shape {
        let mut dims = vec![rows];
        dims.extend_from_slice(&self.dims.instance);
        Shape::from(dims)
    }
}

/// Training forward of a layer: perturb-and-MAP over θ (any float dtype, any device) with
/// the I-MLE backward; `noise`, if given, has the draw rows' shape (checked by the layer).
/// The output has θ's dtype and device.
pub(crate) fn train<S: Solver>(
    solver: Arc<S>,
    config: ImleConfig,
    dims: Dims,
    key: NoiseKey,
    theta: &Tensor,
    noise: Option<&Tensor>,
    state: Arc<LayerState>,
) -> Result<Tensor> {
    let prepared = Prepared::new(theta)?;
    let explicit_noise = match noise {
        Some(noise) => Some(prepared.like_theta(noise)?),
        None => None,
    };
    let op = ImleOp {
        solver,
        lambda: state.lambda(&config),
        config,
        dims,
        key,
        explicit_noise,
        state,
        saved: OnceLock::new(),
    };
    let z = prepared.theta.apply_op1(op)?;
    prepared.restore(z)
}

/// `MAP(θ)` of every instance (evaluation), in θ's shape, dtype and device; no tape.
pub(crate) fn map<S: Solver>(solver: &S, dims: &Dims, theta: &Tensor) -> Result<Tensor> {
    let prepared = Prepared::new(theta)?;
    let z = prepared.theta.apply_op1_no_bwd(&MapOp { solver, dims })?;
    prepared.restore(z)
}

impl<S: Solver> CustomOp1 for ImleOp<S> {
    fn name(&self) -> &'static str {
        "imle"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu::forward(self, storage, layout)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::forward(self, storage, layout)
    }

    fn bwd(&self, theta: &Tensor, z: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.to_dtype(DType::F32)?.contiguous()?;
        let z = z.contiguous()?;
        theta.apply_op3_no_bwd(&z, &grad, &Backward(self)).map(Some)
    }
}

/// The backward pass of an [`ImleOp`], as an op over (θ, its output z, ∂L/∂z) that returns
/// ∂L/∂θ.
struct Backward<'a, S: Solver>(&'a ImleOp<S>);

impl<S: Solver> CustomOp3 for Backward<'_, S> {
    fn name(&self) -> &'static str {
        "imle-backward"
    }

    fn cpu_fwd(
        &self,
        theta: &CpuStorage,
        theta_layout: &Layout,
        z: &CpuStorage,
        z_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu::backward(
            self.0,
            (theta, theta_layout),
            (z, z_layout),
            (grad, grad_layout),
        )
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        theta: &candle_core::CudaStorage,
        theta_layout: &Layout,
        z: &candle_core::CudaStorage,
        z_layout: &Layout,
        grad: &candle_core::CudaStorage,
        grad_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::backward(
            self.0,
            (theta, theta_layout),
            (z, z_layout),
            (grad, grad_layout),
        )
    }
}

/// `MAP(θ)` without noise, as an op with no backward.
struct MapOp<'a, S: Solver> {
    solver: &'a S,
    dims: &'a Dims,
}

impl<S: Solver> CustomOp1 for MapOp<'_, S> {
    fn name(&self) -> &'static str {
        "imle-map"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu::map(self.solver, self.dims, storage, layout)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::map(self.solver, self.dims, storage, layout)
    }
}

/// θ as the ops take it: contiguous `f32`, on a device with a backend here (CPU or CUDA;
/// any other, such as Metal, is copied to the CPU and the result copied back), with what
/// [`Prepared::restore`] needs to give the result θ's dtype and device.
struct Prepared {
    theta: Tensor,
    dtype: DType,
    device: Device,
}

impl Prepared {
    fn new(theta: &Tensor) -> Result<Self> {
        let device = theta.device().clone();
        Ok(Prepared {
            theta: theta
                .to_device(&backend_device(&device))?
                .to_dtype(DType::F32)?
                .contiguous()?,
            dtype: theta.dtype(),
            device,
        })
    }

    /// Another input (the explicit noise) in the same form as θ: a copy of its own, so that
    /// changing the caller's tensor between forward and backward changes nothing.
    fn like_theta(&self, tensor: &Tensor) -> Result<Tensor> {
        tensor
            .to_device(self.theta.device())?
            .to_dtype(DType::F32)?
            .copy()
    }

    fn restore(&self, z: Tensor) -> Result<Tensor> {
        z.to_dtype(self.dtype)?.to_device(&self.device)
    }
}
