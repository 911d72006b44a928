//! Noise as a tensor on a device: the one place where noise meets devices. `noise/` draws
//! values into slices and knows nothing of tensors or devices; this module wraps it in an op
//! whose CPU backend fills rows in parallel and whose CUDA backend (feature `cuda`) runs the
//! `imle_noise` kernel, so candle's storage picks the device.

use crate::error::input_error;
use crate::host::backend_device;
use crate::noise::{Noise, NoiseKey, fill_instance};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Noise rows as a tensor on `device`: the result has shape `[batch · draws, instance...]`,
/// and its row `b · draws + d` is what [`fill_instance`](crate::noise::fill_instance) writes
/// for instance `b`, stream `d` (the layout of a layer's explicit noise, see
/// `ImleLayer::forward_with_noise`).
///
/// On the CPU the rows are filled in parallel. On a CUDA device (feature `cuda`) the noise is
/// drawn there by a kernel, with the same values bit for bit; other devices get the CPU's rows
/// copied over.
///
/// ```
/// use candle_core::Device;
/// use imle_runtime::noise::{Noise, NoiseKey, fill_instance};
/// use imle_runtime::noise_tensor;
///
/// let key = NoiseKey::new(1, 0);
/// let noise = noise_tensor(&Noise::Gumbel, key, 2, 3, &[4], &Device::Cpu)?;
/// assert_eq!(noise.dims(), &[6, 4]);
/// let mut row = [0.0f32; 4];
/// fill_instance(&Noise::Gumbel, key, 1, 2, &mut row); // instance 1, stream 2: row 1·3 + 2
/// assert_eq!(noise.get(5)?.to_vec1::<f32>()?, row);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn noise_tensor(
    noise: &Noise,
    key: NoiseKey,
    batch: usize,
    draws: usize,
    instance: &[usize],
    device: &Device,
) -> Result<Tensor> {
    let n: usize = instance.iter().product();
    if batch > u32::MAX as usize || draws > u32::MAX as usize || n as u64 > 1 << 32 {
        return Err(input_error(format!(
            "noise_tensor: batch and draws must be < 2^32 and the instance at most 2^32 \
             elements, got {batch}, {draws}, {instance:?}"
        )));
    }
    noise.validate()?;
    let mut shape = vec![batch * draws];
    shape.extend_from_slice(instance);
    if batch * draws * n == 0 {
        return Tensor::zeros(shape, DType::F32, device);
    }
    let op = NoiseRows {
        noise: *noise,
        key,
        draws,
        shape: shape.into(),
    };
    // The op's input only says where to run: one element on the device.
    Tensor::zeros(1, DType::F32, &backend_device(device))?
        .apply_op1_no_bwd(&op)?
        .to_device(device)
}

/// Draws the rows of [`noise_tensor`] (the op's input is ignored).
struct NoiseRows {
    noise: Noise,
    key: NoiseKey,
    draws: usize,
    shape: Shape,
}

impl CustomOp1 for NoiseRows {
    fn name(&self) -> &'static str {
        "imle-noise"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        let rows = self.shape.dims()[0];
        let n = self.shape.elem_count() / rows;
        let mut values = vec![0.0f32; rows * n];
        values
            .par_chunks_mut(n)
            .enumerate()
            .with_min_len(crate::plumbing::min_rows(rows, n))
            .for_each(|(row, out)| {
                let (b, d) = (row / self.draws, row % self.draws);
                fill_instance(&self.noise, self.key, b as u32, d as u32, out)
            });
        Ok((CpuStorage::F32(values), self.shape.clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        let rows = self.shape.dims()[0];
        let n = self.shape.elem_count() / rows;
        let device = storage.device();
        let values = crate::cuda::launch::noise(
            &self.noise,
            self.key,
            rows / self.draws,
            self.draws,
            n,
            device,
        )?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(values, device.clone()),
            self.shape.clone(),
        ))
    }
}
