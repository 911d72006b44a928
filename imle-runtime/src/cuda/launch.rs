//! Launching the kernels on candle's CUDA backend (feature `cuda`): NVRTC compilation and
//! caching, the Sum-of-Gamma table's upload, launch shapes, and one function per kernel
//! launch over device buffers. It knows the kernels' parameter structs, not the ops: the
//! op's CUDA backend (`op/cuda.rs`) builds the parameters and calls these.

use super::params::{
    BackwardParams, ForwardParams, KEYS_RECOMPUTED, KEYS_SCRATCH, MAX_GRID, NoiseParams,
    SCRATCH_BUDGET, SELECT_THREADS, check_sizes, dynamic_shared_bytes, grid, key_words,
    sog_coefficients,
};
use super::{KERNELS, NVRTC_OPTIONS};
use crate::error::{INPUT_OVERFLOW, input_error};
use crate::noise::{Noise, NoiseKey};
use candle_core::cuda_backend::cudarc::driver::sys::CUdevice_attribute;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DevicePtr, DeviceRepr, LaunchArgs, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, WrapErr};
use candle_core::{Layout, Result, Storage, Tensor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

// SAFETY: `#[repr(C)]` structs of 4-byte integers and floats (and, in NoiseParams, one 8-byte
// device address, 8-aligned in both languages) with the field order of the structs of the same
// names in kernels.cu (sizes checked in params.rs); any bit pattern is valid.
unsafe impl DeviceRepr for NoiseParams {}
// SAFETY: as above.
unsafe impl DeviceRepr for ForwardParams {}
// SAFETY: as above.
unsafe impl DeviceRepr for BackwardParams {}

/// candle's per-device module cache holds the kernels under this name.
const MODULE: &str = "imle_kernels";

/// Threads per block of the element-wise kernels (noise, AIMLE's λ).
const ELEMENTWISE_THREADS: u32 = 256;

/// PTX of [`KERNELS`] for the device's compute capability: compiled by NVRTC once per process
/// and capability (the lock is taken once per kernel launch, never per element or row).
fn ptx(device: &CudaDevice) -> Result<Arc<str>> {
    static CACHE: Mutex<BTreeMap<(i32, i32), Arc<str>>> = Mutex::new(BTreeMap::new());
    let (major, minor) = device.cuda_stream().context().compute_capability().w()?;
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ptx) = cache.get(&(major, minor)) {
        return Ok(ptx.clone());
    }
    let mut options: Vec<String> = NVRTC_OPTIONS.iter().map(|o| o.to_string()).collect();
    options.push(format!("--gpu-architecture=compute_{major}{minor}"));
    let compiled = compile_ptx_with_opts(
        KERNELS,
        CompileOptions {
            options,
            name: Some("imle_kernels.cu".into()),
            ..Default::default()
        },
    )
    .map_err(|e| input_error(format!("NVRTC could not compile imle's CUDA kernels: {e}")))?;
    let ptx: Arc<str> = compiled.to_src().into();
    cache.insert((major, minor), ptx.clone());
    Ok(ptx)
}

/// `NoiseParams` of `noise` under `key` for kernels on `device`: for Sum-of-Gamma, with the
/// address of its quantile table there, uploaded once per (k, s) and device and kept for the
/// life of the process (64 KiB each; the lock is taken once per launch).
pub(crate) fn noise_params(
    noise: &Noise,
    key: NoiseKey,
    device: &CudaDevice,
) -> Result<NoiseParams> {
    type Uploaded = Vec<(
        candle_core::cuda_backend::DeviceId,
        u32,
        u32,
        CudaSlice<f32>,
    )>;
    static UPLOADED: Mutex<Uploaded> = Mutex::new(Vec::new());
    let params = NoiseParams::new(noise, key);
    let Some(table) = sog_coefficients(noise)? else {
        return Ok(params);
    };
    let id = (device.id(), table.k().to_bits(), table.terms());
    let mut uploaded = UPLOADED.lock().unwrap_or_else(|e| e.into_inner());
    let index = match uploaded.iter().position(|u| (u.0, u.1, u.2) == id) {
        Some(i) => i,
        None => {
            let slice = device.clone_htod(&table.coefficients()[..])?;
            uploaded.push((id.0, id.1, id.2, slice));
            uploaded.len() - 1
        }
    };
    let stream = device.cuda_stream();
    let (address, _sync) = uploaded[index].3.device_ptr(&stream);
    Ok(params.with_sog_table(address))
}

/// The contiguous f32 data of a CUDA storage, as a view.
pub(crate) fn view<'a>(storage: &'a CudaStorage, layout: &Layout) -> Result<CudaView<'a, f32>> {
    let slice = storage.as_cuda_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(slice.slice(start..end)),
        None => Err(input_error(
            "the CUDA I-MLE op expected a contiguous tensor",
        )),
    }
}

/// Runs `f` on the CUDA storage of an f32, contiguous tensor.
fn with_view<R>(tensor: &Tensor, f: impl FnOnce(&CudaView<'_, f32>) -> Result<R>) -> Result<R> {
    let (storage, layout) = tensor.storage_and_layout();
    match &*storage {
        Storage::Cuda(cuda) => f(&view(cuda, layout)?),
        _ => Err(input_error("expected a CUDA tensor")),
    }
}

/// Runs `f` on the CUDA storage of an optional f32, contiguous tensor.
pub(crate) fn with_optional_view<R>(
    tensor: Option<&Tensor>,
    f: impl FnOnce(Option<&CudaView<'_, f32>>) -> Result<R>,
) -> Result<R> {
    match tensor {
        Some(tensor) => with_view(tensor, |view| f(Some(view))),
        None => f(None),
    }
}

/// The kernels set bits of a `bad` word for non-finite inputs they read (`IMLE_BAD_*` in
/// kernels.cu); this reads it back (4 bytes, after the kernel) and names the culprits.
fn check_inputs(device: &CudaDevice, bad: &CudaSlice<u32>) -> Result<()> {
    let flags = device.clone_dtoh(bad)?[0];
    if flags == 0 {
        return Ok(());
    }
    if flags == 8 {
        // IMLE_BAD_INPUT alone: finite inputs, overflowing sum.
        return Err(input_error(INPUT_OVERFLOW));
    }
    let names = ["θ", "the incoming gradient", "the explicit noise"];
    let culprits: Vec<&str> = (0..3)
        .filter(|bit| flags & (1 << bit) != 0)
        .map(|bit| names[bit])
        .collect();
    Err(input_error(format!(
        "{} has a non-finite value (NaN or ±inf)",
        culprits.join(" and ")
    )))
}

/// Pushes a device buffer, or a null pointer where there is none.
fn push_optional<'a, T>(
    launch: &mut LaunchArgs<'a>,
    buffer: Option<&'a mut CudaSlice<T>>,
    null: &'a u64,
) {
    match buffer {
        Some(buffer) => launch.arg(buffer),
        None => launch.arg(null),
    };
}

/// A launch of a selection kernel: `blocks` blocks, whose keys live where `keys` says.
fn selection(blocks: u32, keys: u32, n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (SELECT_THREADS, 1, 1),
        shared_mem_bytes: dynamic_shared_bytes(keys, n),
    }
}

/// The streaming multiprocessors of the device.
fn sm_count(device: &CudaDevice) -> Result<usize> {
    let sms = device
        .cuda_stream()
        .context()
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .w()?;
    Ok(sms.max(1) as usize)
}

/// Where the selections of a launch keep their keys, the launch's shape, and its scratch.
struct KeyPlan {
    keys: u32,
    config: LaunchConfig,
    scratch: Option<CudaSlice<u32>>,
}

impl KeyPlan {
    /// For a launch over `units` rows (or instances) of `n` elements whose keys default to
    /// `keys`: rows too long for shared memory get a region of a global scratch buffer per
    /// block, unless that would exceed [`SCRATCH_BUDGET`]; the grid is then capped at
    /// `blocks_per_sm` blocks per SM (what fits at once), so the scratch stays small.
    fn new(
        device: &CudaDevice,
        keys: u32,
        units: usize,
        n: usize,
        blocks_per_sm: usize,
    ) -> Result<Self> {
        if keys == KEYS_RECOMPUTED {
            let blocks = units.clamp(1, blocks_per_sm * sm_count(device)?);
            let words = blocks * key_words(n);
            if words * 4 <= SCRATCH_BUDGET {
                // SAFETY: a selection writes the keys of its region before reading them, and
                // the backward clears its bits of the plus solution before setting them.
                let scratch = unsafe { device.alloc::<u32>(words) }?;
                return Ok(KeyPlan {
                    keys: KEYS_SCRATCH,
                    config: selection(blocks as u32, KEYS_SCRATCH, n),
                    scratch: Some(scratch),
                });
            }
        }
        Ok(KeyPlan {
            keys,
            config: selection(grid(units), keys, n),
            scratch: None,
        })
    }
}

/// A launch of an element-wise kernel with (at least) one thread per item; the kernels loop
/// over the rest when the grid is capped.
fn elementwise(items: usize) -> LaunchConfig {
    let blocks = items.div_ceil(ELEMENTWISE_THREADS as usize);
    LaunchConfig {
        grid_dim: (blocks.clamp(1, MAX_GRID as usize) as u32, 1, 1),
        block_dim: (ELEMENTWISE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Allocates `len` floats that the kernel about to run writes completely.
fn output(device: &CudaDevice, len: usize) -> Result<CudaSlice<f32>> {
    // SAFETY: every caller launches a kernel that writes all `len` elements before anything
    // reads them (see the kernels' loops over rows and elements).
    unsafe { device.alloc::<f32>(len) }
}

/// Launches `imle_forward`; returns the solutions (or their mean) as a flat buffer.
pub(crate) fn forward(
    device: &CudaDevice,
    noise: NoiseParams,
    params: ForwardParams,
    theta: &CudaView<'_, f32>,
    explicit_noise: Option<&CudaView<'_, f32>>,
) -> Result<CudaSlice<f32>> {
    let n = params.n as usize;
    let mut out = output(device, params.units() * n)?;
    let mut bad = device.alloc_zeros::<u32>(1)?;
    // About 60 registers a thread: four blocks of 256 fit on an SM.
    let mut plan = KeyPlan::new(device, params.keys, params.units(), n, 4)?;
    let params = ForwardParams {
        keys: plan.keys,
        ..params
    };
    let func = device.get_or_load_custom_func("imle_forward", MODULE, &ptx(device)?)?;
    let null = 0u64;
    let mut launch = func.builder();
    launch.arg(&noise).arg(&params).arg(theta);
    match explicit_noise {
        Some(noise) => launch.arg(noise),
        None => launch.arg(&null),
    };
    push_optional(&mut launch, plan.scratch.as_mut(), &null);
    launch.arg(&mut out).arg(&mut bad);
    let config = plan.config;
    // SAFETY: the arguments match `imle_forward`'s signature, and the buffers have the sizes
    // the params describe (θ: batch·n, explicit noise: batch·draws·n, out: units·n, bad: 1).
    unsafe { launch.launch(config) }.w()?;
    check_inputs(device, &bad)?;
    Ok(out)
}

/// The two-phase mean samples keep at most this many bytes of solutions at a time.
const SAMPLE_ROWS_BUDGET: usize = 256 << 20;

/// The mean over samples for few instances: `imle_forward` solves a chunk of samples into rows
/// of their own, `imle_mean_rows` adds them up in order (see kernels.cu), chunk after chunk.
pub(crate) fn mean_in_two_phases(
    device: &CudaDevice,
    noise: NoiseParams,
    params: ForwardParams,
    theta: &CudaView<'_, f32>,
    explicit_noise: Option<&CudaView<'_, f32>>,
) -> Result<CudaSlice<f32>> {
    let (batch, n, samples) = (params.batch as usize, params.n as usize, params.samples);
    let chunk = (SAMPLE_ROWS_BUDGET / (batch * n * 4)).clamp(1, samples as usize) as u32;
    let mut out = output(device, batch * n)?;
    let func = device.get_or_load_custom_func("imle_mean_rows", MODULE, &ptx(device)?)?;
    for s_begin in (0..samples).step_by(chunk as usize) {
        let rows_params = params.sample_rows(s_begin, (s_begin + chunk).min(samples));
        let rows = forward(device, noise, rows_params, theta, explicit_noise)?;
        let mut launch = func.builder();
        launch.arg(&rows_params).arg(&rows).arg(&mut out);
        let config = elementwise(batch * n);
        // SAFETY: the arguments match `imle_mean_rows`; `rows` holds the chunk's solutions,
        // `out` batch·n floats (all written by the first chunk).
        unsafe { launch.launch(config) }.w()?;
    }
    Ok(out)
}

/// Whether a kernel with one block per instance, looping over its `per_instance` samples or
/// draws in order, keeps the GPU busy. The backward fits two blocks on an SM (about 90
/// registers a thread), so fewer than twice as many instances as SMs leave some idle; then
/// the two-phase variants spread the samples or draws over blocks of their own.
pub(crate) fn one_pass_fills_the_gpu(
    device: &CudaDevice,
    batch: usize,
    per_instance: u32,
) -> Result<bool> {
    if per_instance == 1 {
        return Ok(true);
    }
    Ok(batch >= 2 * sm_count(device)?)
}

/// The two-phase backward keeps the differences of at most this many bytes of (instance,
/// draw) rows at a time (one byte per element).
const DIFFERENCES_BUDGET: usize = 64 << 20;

/// Launches the backward kernels (one pass, or two phases when one pass leaves the GPU idle)
/// and returns the gradient (`batch·n`) with its number of non-zero differences.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    device: &CudaDevice,
    noise: NoiseParams,
    params: BackwardParams,
    theta: &CudaView<'_, f32>,
    z: &CudaView<'_, f32>,
    grad: &CudaView<'_, f32>,
    row_lambda: Option<&CudaSlice<f32>>,
    explicit_noise: Option<&CudaView<'_, f32>>,
) -> Result<(CudaSlice<f32>, u64)> {
    let (batch, n) = (params.batch as usize, params.n as usize);
    let mut nonzeros = device.alloc_zeros::<u64>(1)?;
    let mut gradient = output(device, batch * n)?;
    let mut bad = device.alloc_zeros::<u32>(1)?;
    let mut run = BackwardRun {
        device,
        noise,
        params,
        theta,
        z,
        grad,
        row_lambda,
        gradient: &mut gradient,
        nonzeros: Some(&mut nonzeros),
        bad: &mut bad,
    };
    if one_pass_fills_the_gpu(device, batch, params.draws)? {
        run.one_pass(explicit_noise)?;
    } else {
        run.two_phases(explicit_noise)?;
    }
    check_inputs(device, &bad)?;
    let count = device.clone_dtoh(&nonzeros)?[0];
    Ok((gradient, count))
}

/// The buffers of one backward launch.
struct BackwardRun<'a> {
    device: &'a CudaDevice,
    noise: NoiseParams,
    params: BackwardParams,
    theta: &'a CudaView<'a, f32>,
    z: &'a CudaView<'a, f32>,
    grad: &'a CudaView<'a, f32>,
    row_lambda: Option<&'a CudaSlice<f32>>,
    gradient: &'a mut CudaSlice<f32>,
    nonzeros: Option<&'a mut CudaSlice<u64>>,
    bad: &'a mut CudaSlice<u32>,
}

impl BackwardRun<'_> {
    /// Pushes the inputs both backward kernels take in this order: θ, z, g, the λ rows and
    /// the explicit noise (null pointers for the missing ones).
    fn push_inputs<'a>(
        &self,
        launch: &mut LaunchArgs<'a>,
        noise: Option<&'a CudaView<'_, f32>>,
        null: &'a u64,
    ) where
        Self: 'a,
    {
        let (theta, z, grad) = (self.theta, self.z, self.grad);
        launch.arg(theta).arg(z).arg(grad);
        match self.row_lambda {
            Some(lambdas) => launch.arg(lambdas),
            None => launch.arg(null),
        };
        match noise {
            Some(noise) => launch.arg(noise),
            None => launch.arg(null),
        };
    }

    /// `imle_backward`: one block per instance.
    fn one_pass(&mut self, noise: Option<&CudaView<'_, f32>>) -> Result<()> {
        let ptx = ptx(self.device)?;
        let func = self
            .device
            .get_or_load_custom_func("imle_backward", MODULE, &ptx)?;
        // About 90 registers a thread: two blocks of 256 fit on an SM.
        let (batch, n) = (self.params.batch as usize, self.params.n as usize);
        let mut plan = KeyPlan::new(self.device, self.params.keys, batch, n, 2)?;
        let params = BackwardParams {
            keys: plan.keys,
            ..self.params
        };
        let null = 0u64;
        let mut launch = func.builder();
        launch.arg(&self.noise).arg(&params);
        self.push_inputs(&mut launch, noise, &null);
        push_optional(&mut launch, plan.scratch.as_mut(), &null);
        launch.arg(&mut *self.gradient);
        push_optional(&mut launch, self.nonzeros.as_deref_mut(), &null);
        launch.arg(&mut *self.bad);
        let config = plan.config;
        // SAFETY: the arguments match `imle_backward`'s signature; θ is batch·n, z the
        // forward output, g grad_rows·n, the λ rows grad_rows, the explicit noise
        // batch·draws·n, the scratch a region per block, the gradient batch·n, the count and
        // `bad` one u32 each.
        unsafe { launch.launch(config) }.w()?;
        Ok(())
    }

    /// `imle_backward_rows` then `imle_backward_sum`, a chunk of draws at a time.
    fn two_phases(&mut self, noise: Option<&CudaView<'_, f32>>) -> Result<()> {
        let (batch, n, draws) = (
            self.params.batch as usize,
            self.params.n as usize,
            self.params.draws,
        );
        let chunk = (DIFFERENCES_BUDGET / (batch * n)).clamp(1, draws as usize) as u32;
        // SAFETY: imle_backward_rows writes every byte of the chunk's rows before
        // imle_backward_sum reads them.
        let mut differences = unsafe { self.device.alloc::<i8>(batch * chunk as usize * n) }?;
        let mut plan = KeyPlan::new(self.device, self.params.keys, batch * chunk as usize, n, 2)?;
        let params = BackwardParams {
            keys: plan.keys,
            ..self.params
        };
        let ptx = ptx(self.device)?;
        let rows = self
            .device
            .get_or_load_custom_func("imle_backward_rows", MODULE, &ptx)?;
        let sum = self
            .device
            .get_or_load_custom_func("imle_backward_sum", MODULE, &ptx)?;
        let null = 0u64;
        for d_begin in (0..draws).step_by(chunk as usize) {
            let d_end = (d_begin + chunk).min(draws);
            let mut launch = rows.builder();
            launch
                .arg(&self.noise)
                .arg(&params)
                .arg(&d_begin)
                .arg(&d_end);
            self.push_inputs(&mut launch, noise, &null);
            push_optional(&mut launch, plan.scratch.as_mut(), &null);
            launch.arg(&mut differences);
            push_optional(&mut launch, self.nonzeros.as_deref_mut(), &null);
            launch.arg(&mut *self.bad);
            let config = plan.config;
            // SAFETY: as for `one_pass`; `differences` holds the chunk's units · n bytes.
            unsafe { launch.launch(config) }.w()?;

            let mut launch = sum.builder();
            launch.arg(&self.params).arg(&d_begin).arg(&d_end);
            match self.row_lambda {
                Some(lambdas) => launch.arg(lambdas),
                None => launch.arg(&null),
            };
            launch.arg(&differences).arg(&mut *self.gradient);
            let config = elementwise(batch * n);
            // SAFETY: the arguments match `imle_backward_sum`; the gradient is batch·n.
            unsafe { launch.launch(config) }.w()?;
        }
        Ok(())
    }
}

/// AIMLE's λ per row of the incoming gradient, `β·‖θ_b‖/‖g_row‖`, on the device.
pub(crate) fn row_lambdas(
    device: &CudaDevice,
    theta: &CudaView<'_, f32>,
    grad: &CudaView<'_, f32>,
    batch: usize,
    n: usize,
    grad_rows: usize,
    beta: f32,
) -> Result<CudaSlice<f32>> {
    let mut out = output(device, grad_rows)?;
    let func = device.get_or_load_custom_func("imle_row_lambdas", MODULE, &ptx(device)?)?;
    let (batch, n, per_instance) = (batch as u32, n as u32, (grad_rows / batch) as u32);
    let mut launch = func.builder();
    launch
        .arg(theta)
        .arg(grad)
        .arg(&batch)
        .arg(&n)
        .arg(&per_instance)
        .arg(&beta)
        .arg(&mut out);
    let config = elementwise(grad_rows);
    // SAFETY: the arguments match `imle_row_lambdas`; θ is batch·n, g and out grad_rows rows.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}

/// Noise rows drawn on the GPU: row `b·draws + d` of a `[batch·draws, n]` buffer.
pub(crate) fn noise(
    noise: &Noise,
    key: NoiseKey,
    batch: usize,
    draws: usize,
    n: usize,
    device: &CudaDevice,
) -> Result<CudaSlice<f32>> {
    let rows = batch * draws;
    check_sizes(rows as u64, n)?;
    let mut out = output(device, rows * n)?;
    let func = device.get_or_load_custom_func("imle_noise", MODULE, &ptx(device)?)?;
    let params = noise_params(noise, key, device)?;
    let (n32, draws32, rows64) = (n as u32, draws as u32, rows as u64);
    let mut launch = func.builder();
    launch
        .arg(&params)
        .arg(&n32)
        .arg(&draws32)
        .arg(&rows64)
        .arg(&mut out);
    let config = elementwise(rows * n.div_ceil(4));
    // SAFETY: the arguments match `imle_noise`; out holds rows·n floats.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}
