//! Reading CPU tensors as `f32` slices without copying, and the finiteness check on them:
//! what the CPU backends of every op in this crate (I-MLE, perturbed, SPO+) share.

use crate::error::input_error;
use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

/// The contiguous f32 data of a CPU storage.
pub(crate) fn cpu_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(input_error("expected a contiguous tensor")),
    }
}

/// Runs `f` on the contiguous f32 data of a CPU tensor.
pub(crate) fn with_cpu_f32<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(cpu_f32(cpu, layout)?),
        _ => Err(input_error(
            "the CPU I-MLE op got a tensor on another device",
        )),
    }
}

/// An error naming the first non-finite value of `values` and its flat index.
pub(crate) fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(input_error(format!(
            "{what} has a non-finite value ({}) at flat index {i}",
            values[i]
        ))),
    }
}

/// Where an op runs for tensors on `device`: the device itself when it has a backend here
/// (CPU, and CUDA with this crate's feature `cuda`), else the CPU (a Metal tensor, or a CUDA
/// one when only candle's `cuda` feature is on, is copied to the host and the result copied
/// back).
pub(crate) fn backend_device(device: &candle_core::Device) -> candle_core::Device {
    if device.is_cpu() || (cfg!(feature = "cuda") && device.is_cuda()) {
        device.clone()
    } else {
        candle_core::Device::Cpu
    }
}
