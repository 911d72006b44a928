//! The CUDA path: noise and fused perturb-and-MAP top-k kernels for CUDA tensors.
//!
//! With the `cuda` feature, a layer whose solver names a [`DeviceKernel`](crate::DeviceKernel)
//! ([`TopK`](crate::TopK), [`Argmax`](crate::Argmax)) runs on the GPU when θ is a CUDA
//! tensor:
//!
//! * **forward**: one thread block per (instance, sample) row computes `θ + σ·τ·ε` with the
//!   noise drawn in registers from the same Philox counters as the CPU path (ε is never
//!   written to memory) and selects the top k by a radix select over the keys of θ + σ·τ·ε,
//!   kept in shared memory (rows up to 8192 elements) or in a global scratch region per
//!   block (longer rows; beyond a 512 MiB budget they are recomputed at every pass). The mean
//!   over samples (`Reduce::Mean`) is taken by one block per instance, or, for fewer
//!   instances than twice the GPU's SMs, by a second kernel over the samples' solutions;
//! * **backward**: one block per instance walks its draws in order, regenerates the same ε,
//!   selects the target's top k (`αθ − σλg + στ'ε`) and accumulates the mean difference of the
//!   two solutions into the gradient, in the same order as the CPU path. With fewer instances
//!   than twice the GPU's SMs (and several draws), one block per (instance, draw) writes the
//!   differences as bytes and a second kernel adds them up in the same order instead;
//! * [`noise_tensor`](crate::noise_tensor()) draws noise tensors on the GPU.
//!
//! Every value is computed with the same `f32` operations in the same order as on the CPU, so
//! the same seed gives the same noise, the same solutions and the same gradients, bit for bit.
//! The tests compare with zero tolerance: `tests/cuda_emulation.rs` runs the kernels on the
//! CPU under an emulation of thread blocks, `tests/cuda.rs` on a GPU (not yet run on one).
//!
//! Any other solver also works on CUDA tensors, at the cost of one host round trip per call:
//! θ (and in backward the output and the incoming gradient) is copied to the host, the
//! solver runs there in parallel, and the result is copied back in one transfer.
//!
//! The kernels are CUDA C ([`KERNELS`]) compiled at run time by NVRTC with [`NVRTC_OPTIONS`]
//! for the device's compute capability, once per process and architecture, and loaded once
//! per device through candle's module cache. Without the `cuda` feature nothing here needs a
//! CUDA toolkit; the sources are still public so that tests can compile them wherever NVRTC
//! is installed.
//!
//! ```
//! assert!(imle_runtime::cuda::KERNELS.contains("imle_forward"));
//! assert!(imle_runtime::cuda::NVRTC_OPTIONS.contains(&"--fmad=false"));
//! ```

#[cfg(feature = "cuda")]
pub(crate) mod launch;
#[doc(hidden)]
pub mod params;

/// The CUDA C source of all kernels.
///
/// ```
/// for name in imle_runtime::cuda::KERNEL_NAMES {
///     assert!(imle_runtime::cuda::KERNELS.contains(&format!("void {name}(")));
/// }
/// ```
pub const KERNELS: &str = include_str!("kernels.cu");

/// The entry points of [`KERNELS`].
///
/// ```
/// assert_eq!(imle_runtime::cuda::KERNEL_NAMES.len(), 7);
/// ```
pub const KERNEL_NAMES: [&str; 7] = [
    "imle_noise",
    "imle_forward",
    "imle_mean_rows",
    "imle_backward",
    "imle_backward_rows",
    "imle_backward_sum",
    "imle_row_lambdas",
];

/// NVRTC options for [`KERNELS`] (the architecture is added per device). No fused
/// multiply-add contraction, IEEE-rounded division and square root, and subnormals kept: the
/// noise functions rely on all three to reproduce the CPU path bit for bit.
///
/// ```
/// assert!(imle_runtime::cuda::NVRTC_OPTIONS.iter().all(|o| o.starts_with("--")));
/// ```
pub const NVRTC_OPTIONS: [&str; 5] = [
    "--fmad=false",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--ftz=false",
    "--std=c++17",
];

/// Whether this build can run the kernels (the `cuda` feature is on).
///
/// ```
/// if !imle_runtime::cuda::ENABLED {
///     println!("CUDA tensors use the host round trip for every solver");
/// }
/// ```
pub const ENABLED: bool = cfg!(feature = "cuda");
