//! The CUDA backend of the ops (feature `cuda`): the solver's kernel when it names one
//! ([`crate::MapSolver::device_kernel`]), fused with the noise and the target (θ, the noise
//! and the solutions stay on the GPU); otherwise the CPU backend over host copies.

use super::{Dims, ImleOp, cpu};
use crate::cuda::launch;
use crate::cuda::params::{BackwardParams, ForwardParams, NoiseParams, check_sizes};
use crate::error::input_error;
use crate::plumbing::Solver;
use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::cuda_backend::CudaStorage;
use candle_core::cuda_backend::cudarc::driver::CudaSlice;
use candle_core::{CpuStorage, Layout, Result, Shape};

/// The forward pass on a CUDA storage of θ.
pub(super) fn forward<S: Solver>(
    op: &ImleOp<S>,
    storage: &CudaStorage,
    layout: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let Some(kernel) = op.solver.device_kernel() else {
        let theta = storage.to_cpu_storage()?;
        let (out, shape) = cpu::forward(op, &theta, layout)?;
        return Ok((storage.device().storage_from_cpu_storage(&out)?, shape));
    };
    let device = storage.device();
    let Dims { batch, n, .. } = op.dims;
    check_sizes(batch as u64 * op.config.draws() as u64, n)?;
    if let Some(noise) = &op.explicit_noise
        && op.config.marginal_samples > 1
    {
        // The kernels flag the noise rows they read; the forward reads only the first S of
        // each instance's S·M, so the marginal rows are checked here, as on the CPU, where
        // all of them are checked before anything runs. (0·x sums to NaN iff x has one.)
        let probe = noise.affine(0.0, 0.0)?.sum_all()?.to_scalar::<f32>()?;
        if !probe.is_finite() {
            return Err(input_error(
                "the explicit noise has a non-finite value (NaN or ±inf)",
            ));
        }
    }
    let explicit = op.explicit_noise.is_some();
    let params = ForwardParams::training(&op.config, kernel, batch, n, explicit);
    let theta = launch::view(storage, layout)?;
    let two_phases =
        params.mean != 0 && !launch::one_pass_fills_the_gpu(device, batch, params.samples)?;
    let noise = launch::noise_params(&op.config.noise, op.key, device)?;
    let out = launch::with_optional_view(op.explicit_noise.as_ref(), |explicit| {
        if two_phases {
            launch::mean_in_two_phases(device, noise, params, &theta, explicit)
        } else {
            launch::forward(device, noise, params, &theta, explicit)
        }
    })?;
    let shape = op.output_shape(params.units());
    Ok((CudaStorage::wrap_cuda_slice(out, device.clone()), shape))
}

/// The backward pass on CUDA storages of θ, the forward's output and ∂L/∂z.
pub(super) fn backward<S: Solver>(
    op: &ImleOp<S>,
    theta: (&CudaStorage, &Layout),
    z: (&CudaStorage, &Layout),
    grad: (&CudaStorage, &Layout),
) -> Result<(CudaStorage, Shape)> {
    let device = theta.0.device();
    let Some(kernel) = op.solver.device_kernel() else {
        let host = |(storage, _): (&CudaStorage, &Layout)| storage.to_cpu_storage();
        let (theta_h, z_h, grad_h): (CpuStorage, CpuStorage, CpuStorage) =
            (host(theta)?, host(z)?, host(grad)?);
        let (out, shape) = cpu::backward(op, (&theta_h, theta.1), (&z_h, z.1), (&grad_h, grad.1))?;
        return Ok((device.storage_from_cpu_storage(&out)?, shape));
    };
    let Dims { batch, n, .. } = op.dims;
    let (theta_view, z_view, grad_view) = (
        launch::view(theta.0, theta.1)?,
        launch::view(z.0, z.1)?,
        launch::view(grad.0, grad.1)?,
    );
    let grad_rows = grad.1.shape().elem_count() / n;
    let explicit = op.explicit_noise.is_some();
    let params = BackwardParams::new(&op.config, kernel, batch, n, grad_rows, op.lambda, explicit);
    // The normalized and adaptive targets take λ·‖θ_b‖/‖g_row‖ per gradient row
    // (`target::row_lambdas` on the CPU).
    let row_lambda: Option<CudaSlice<f32>> = if op.config.target.scales_per_row() {
        Some(launch::row_lambdas(
            device,
            &theta_view,
            &grad_view,
            batch,
            n,
            grad_rows,
            op.lambda,
        )?)
    } else {
        None
    };
    let noise: NoiseParams = launch::noise_params(&op.config.noise, op.key, device)?;
    let (gradient, nonzeros) =
        launch::with_optional_view(op.explicit_noise.as_ref(), |explicit| {
            launch::backward(
                device,
                noise,
                params,
                &theta_view,
                &z_view,
                &grad_view,
                row_lambda.as_ref(),
                explicit,
            )
        })?;
    // Counted for every target: `ImleLayer::gradient_density` reports it.
    let rows = batch * op.config.draws() as usize;
    op.state
        .record_density(nonzeros as f32 / rows as f32, &op.config);
    Ok((
        CudaStorage::wrap_cuda_slice(gradient, device.clone()),
        theta.1.shape().clone(),
    ))
}

/// `MAP(θ)` of every instance of a CUDA storage.
pub(super) fn map<S: Solver>(
    solver: &S,
    dims: &Dims,
    storage: &CudaStorage,
    layout: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let device = storage.device();
    let Some(kernel) = solver.device_kernel() else {
        let theta = storage.to_cpu_storage()?;
        let (out, shape) = cpu::map(solver, dims, &theta, layout)?;
        return Ok((device.storage_from_cpu_storage(&out)?, shape));
    };
    check_sizes(dims.batch as u64, dims.n)?;
    let params = ForwardParams::map(kernel, dims.batch, dims.n);
    let theta = launch::view(storage, layout)?;
    let out = launch::forward(device, NoiseParams::default(), params, &theta, None)?;
    Ok((
        CudaStorage::wrap_cuda_slice(out, device.clone()),
        layout.shape().clone(),
    ))
}
