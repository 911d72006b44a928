//! Speed of the CUDA path (feature `cuda`, on a GPU), printed as a table beside PyTorch doing
//! the same work on the same card, torch-imle's way (`torch_imle.py --cuda`).
//!
//! ```sh
//! cargo bench --features cuda --bench cuda              # the table
//! cargo bench --features cuda --bench cuda -- --json    # plus one JSON object
//! cargo bench --features cuda --bench cuda -- --cpu --quick   # a dry run of this file's
//!                                          # logic on the CPU, at 1/16 of the sizes
//! ```
//!
//! Rows: noise for 10^8 elements (Sum-of-Gamma k = 10, s = 10; Gumbel), the top-k layer
//! (B = 4096, n = 1000, k = 10, S = 10, λ = 10) forward alone and forward + backward of
//! `sum(z · w)`, with SoG and with Gumbel noise, and the memory bandwidth a device-to-device
//! copy reaches on this card. Each layer row also gets the bandwidth it achieves: the bytes
//! the step must read and write at the least, divided by its time, and that bound in ms.

mod common;

use candle_core::{DType, Device, Result, Tensor, Var};
use common::{Table, time, torch_reference};
use imle::noise::NoiseKey;
use imle::noise_tensor;
use imle::{ImleConfig, ImleLayer, Noise, TopK};

const N: usize = 1000;
const K: usize = 10;
const SAMPLES: u32 = 10;

/// The sizes of a run: the issue's, or 1/16 of them for a quick dry run.
#[derive(Clone, Copy)]
struct Sizes {
    batch: usize,
    noise_rows: usize,
}

/// Seconds → milliseconds.
fn ms((median, min): (f64, f64)) -> (f64, f64) {
    (median * 1e3, min * 1e3)
}

/// GB/s for `bytes` moved in (median, min) seconds: (at the median, at the best time).
fn gb_per_s(bytes: f64, (median, min): (f64, f64)) -> (f64, f64) {
    (bytes / median / 1e9, bytes / min / 1e9)
}

/// Achievable bandwidth: a device-to-device copy of 1 GiB (1/16 of it when quick), read +
/// write, GB/s.
fn copy_bandwidth(gpu: &Device, table: &mut Table, repeats: usize, sizes: Sizes) -> Result<f64> {
    let elements = (1 << 28) * sizes.batch / 4096;
    let source = Tensor::zeros(elements, DType::F32, gpu)?;
    let seconds = time(2, repeats, || {
        let copy = source.copy().unwrap();
        gpu.synchronize().unwrap();
        drop(copy);
    });
    let rate = gb_per_s(2.0 * 4.0 * elements as f64, seconds);
    table.add(
        "cuda_copy_bandwidth",
        format!(
            "device-to-device copy, {} MiB (read + write)",
            (elements * 4) >> 20
        ),
        "GB/s",
        rate,
    );
    Ok(rate.1)
}

fn noise_rows(gpu: &Device, table: &mut Table, repeats: usize, sizes: Sizes) -> Result<()> {
    let elements = (sizes.noise_rows * N) as f64;
    for (key, label, noise) in [
        (
            "cuda_noise_sum_of_gamma_1e8",
            "SoG noise (k=10, s=10)",
            Noise::sum_of_gamma(10.0),
        ),
        ("cuda_noise_gumbel_1e8", "Gumbel noise", Noise::Gumbel),
    ] {
        let mut call = 0;
        let seconds = time(1, repeats, || {
            call += 1;
            let key = NoiseKey::new(1, call);
            let t = noise_tensor(&noise, key, sizes.noise_rows, 1, &[N], gpu).unwrap();
            gpu.synchronize().unwrap();
            drop(t);
        });
        table.add(
            key,
            format!("{label}, {elements:.0e} elements"),
            "ms/call",
            ms(seconds),
        );
        table.add(
            &format!("{key}_ns_per_element"),
            "  per element".into(),
            "ns/el",
            (seconds.0 * 1e9 / elements, seconds.1 * 1e9 / elements),
        );
    }
    Ok(())
}

fn layer_rows(
    gpu: &Device,
    table: &mut Table,
    repeats: usize,
    sizes: Sizes,
    bandwidth: f64,
) -> Result<()> {
    let batch = sizes.batch;
    let theta_bytes = (batch * N * 4) as f64;
    let samples_bytes = theta_bytes * SAMPLES as f64;
    // What the layer itself must read and write at the least. Forward: θ in, z (S rows per
    // instance) out. Backward: θ, z and the incoming gradient in, the gradient out. (The
    // loss sum(z · w) and its backward, candle's ops, come on top in the timed step.)
    let forward_bytes = theta_bytes + samples_bytes;
    let step_bytes = forward_bytes + 2.0 * theta_bytes + 2.0 * samples_bytes;
    for (name, noise) in [
        ("sog", Noise::sum_of_gamma(K as f32)),
        ("gumbel", Noise::Gumbel),
    ] {
        let config = ImleConfig::new(noise)
            .with_lambda(10.0)?
            .with_samples(SAMPLES)?;
        let layer = ImleLayer::new(TopK::new(K)?, config)?;
        let theta = Var::randn(0f32, 1.0, (batch, N), gpu)?;
        let weights = Tensor::randn(0f32, 1.0, (batch * SAMPLES as usize, N), gpu)?;
        let forward = time(2, repeats, || {
            let z = layer.forward(theta.as_tensor()).unwrap();
            gpu.synchronize().unwrap();
            drop(z);
        });
        table.add(
            &format!("cuda_topk_forward_{name}"),
            format!("top-k forward, B={batch} n=1000 k=10 S=10, {name}"),
            "ms/call",
            ms(forward),
        );
        table.add(
            &format!("cuda_topk_forward_{name}_gb_s"),
            format!(
                "  achieved, of {:.0} MB that must move",
                forward_bytes / 1e6
            ),
            "GB/s",
            gb_per_s(forward_bytes, forward),
        );
        let step = time(2, repeats, || {
            let z = layer.forward(theta.as_tensor()).unwrap();
            let grads = (z * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            gpu.synchronize().unwrap();
            drop(grads);
        });
        table.add(
            &format!("cuda_topk_fwd_bwd_{name}"),
            format!("top-k fwd+bwd of sum(z·w), {name}"),
            "ms/call",
            ms(step),
        );
        table.add(
            &format!("cuda_topk_fwd_bwd_{name}_gb_s"),
            format!("  achieved, of the layer's {:.0} MB", step_bytes / 1e6),
            "GB/s",
            gb_per_s(step_bytes, step),
        );
        let bound = step_bytes / (bandwidth * 1e9) * 1e3;
        table.add(
            &format!("cuda_topk_fwd_bwd_{name}_bound"),
            "  bandwidth bound at the copy's rate".into(),
            "ms",
            (bound, bound),
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let on_cpu = args.iter().any(|a| a == "--cpu");
    let quick = args.iter().any(|a| a == "--quick");
    let repeats = if quick { 3 } else { 9 };
    let sizes = if quick {
        Sizes {
            batch: 256,
            noise_rows: 6250,
        }
    } else {
        Sizes {
            batch: 4096,
            noise_rows: 100_000,
        }
    };
    let (gpu, name) = if on_cpu {
        (Device::Cpu, "the CPU (a dry run)".to_string())
    } else {
        let gpu = Device::new_cuda(0)?;
        let name = gpu
            .as_cuda_device()?
            .cuda_stream()
            .context()
            .name()
            .unwrap_or_else(|_| "an unnamed CUDA device".into());
        (gpu, name)
    };
    // PyTorch's rows are for the full sizes on the GPU only.
    let reference = if on_cpu || quick {
        Default::default()
    } else {
        torch_reference(&["--cuda"])
    };
    let mut table = Table {
        reference,
        ..Table::default()
    };
    println!("imle CUDA benchmarks on {name}; median and min over {repeats} repeats");
    println!(
        "{:<52} {:>11} {:>11} {:>12}   {:>7}  unit",
        "row", "median", "min", "PyTorch", "speedup"
    );
    let bandwidth = copy_bandwidth(&gpu, &mut table, repeats, sizes)?;
    noise_rows(&gpu, &mut table, repeats, sizes)?;
    layer_rows(&gpu, &mut table, repeats, sizes, bandwidth)?;
    if json {
        println!("{}", table.json());
    }
    Ok(())
}
