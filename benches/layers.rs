//! Speed of the hot paths, printed as a table (median and min over repeats after warm-up).
//!
//! ```sh
//! cargo bench --bench layers
//! ```
//!
//! Rows: noise generation (ns/element, 10^6 elements, 1 thread and all threads), the top-k
//! layer forward + backward (B = 128, n = 1000, k = 10, SoG noise, λ = 10, S = 1 and 10), and
//! the grid shortest-path layer forward + backward (B = 32, S = 1, 12×12 and 30×30).

use candle_core::{DType, Device, Result, Tensor, Var};
use imle::noise::{NoiseKey, fill_instance};
use imle::{
    GridShortestPath, ImleConfig, ImleLayer, MapSolver, NegativeCosts, Neighbourhood, Noise, Sense,
    TopK,
};
use rayon::prelude::*;
use std::time::Instant;

/// Median and min of `repeats` timings of `work` (seconds), after `warmup` untimed runs.
fn time(warmup: usize, repeats: usize, mut work: impl FnMut()) -> (f64, f64) {
    for _ in 0..warmup {
        work();
    }
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn row(name: &str, unit: &str, (median, min): (f64, f64)) {
    println!("{name:<48} {median:>12.2} {min:>12.2}  {unit}");
}

fn noise_rows(threads: usize) {
    const ROWS: usize = 1000;
    const N: usize = 1000;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut out = vec![0.0f32; ROWS * N];
    for (name, noise) in [
        (
            "sum_of_gamma k=10 s=10",
            Noise::SumOfGamma { k: 10.0, terms: 10 },
        ),
        ("gumbel", Noise::Gumbel),
        ("gaussian", Noise::Gaussian),
    ] {
        let mut call = 0;
        let timing = time(2, 9, || {
            call += 1;
            let key = NoiseKey::new(0, call);
            pool.install(|| {
                out.par_chunks_mut(N)
                    .enumerate()
                    .for_each(|(r, row)| fill_instance(&noise, key, r as u32, 0, row));
            });
        });
        let per_element = |t: f64| t * 1e9 / (ROWS * N) as f64;
        row(
            &format!("noise {name}, {threads} thread(s)"),
            "ns/element",
            (per_element(timing.0), per_element(timing.1)),
        );
    }
}

/// Forward + backward of `layer` on `theta` with the linear loss `sum(z ⊙ weights)` (the loss's
/// own multiply, sum and their backward run in candle and are part of the time).
fn layer_step<S: MapSolver>(layer: &ImleLayer<S>, theta: &Tensor, weights: &Tensor) -> Result<()> {
    let var = Var::from_tensor(theta)?;
    let z = layer.forward(var.as_tensor())?;
    let grads = (z * weights)?.sum_all()?.backward()?;
    assert!(grads.get(&var).is_some());
    Ok(())
}

fn layer_rows() -> Result<()> {
    let cpu = &Device::Cpu;
    for samples in [1u32, 10] {
        let (batch, n, k) = (128, 1000, 10);
        let layer = ImleLayer::new(
            TopK::new(k)?,
            ImleConfig::new(Noise::SumOfGamma {
                k: k as f32,
                terms: 10,
            })
            .with_lambda(10.0)?
            .with_samples(samples)?,
        )?;
        let theta = Tensor::randn(0f32, 1.0, (batch, n), cpu)?;
        let weights = Tensor::randn(0f32, 1.0, (batch * samples as usize, n), cpu)?;
        let forward = time(2, 9, || {
            layer.forward(&theta).unwrap();
        });
        row(
            &format!("top-k forward only B=128 n=1000 k=10 S={samples}"),
            "ms/call",
            (forward.0 * 1e3, forward.1 * 1e3),
        );
        let (median, min) = time(2, 9, || layer_step(&layer, &theta, &weights).unwrap());
        row(
            &format!("top-k fwd+bwd B=128 n=1000 k=10 S={samples}"),
            "ms/call",
            (median * 1e3, min * 1e3),
        );
        let per = (batch * samples as usize) as f64 / 1e6;
        row(
            &format!("  per instance·sample (S={samples})"),
            "µs",
            (median / per, min / per),
        );
    }
    for side in [12usize, 30] {
        let batch = 32;
        let grid = GridShortestPath::new(Neighbourhood::Eight)
            .with_negative_costs(NegativeCosts::ClampToZero);
        let layer = ImleLayer::new(
            grid,
            ImleConfig::new(Noise::SumOfGamma {
                k: side as f32,
                terms: 10,
            })
            .with_sense(Sense::Minimize),
        )?;
        let theta = (Tensor::rand(0f32, 1.0, (batch, side, side), cpu)? + 0.1)?;
        let weights = Tensor::randn(0f32, 1.0, (batch, side, side), cpu)?.to_dtype(DType::F32)?;
        let (median, min) = time(2, 15, || layer_step(&layer, &theta, &weights).unwrap());
        row(
            &format!("shortest path fwd+bwd B=32 {side}x{side} S=1"),
            "ms/call",
            (median * 1e3, min * 1e3),
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let threads = rayon::current_num_threads();
    println!("imle benchmarks ({threads} rayon threads available)");
    println!("{:<48} {:>12} {:>12}", "row", "median", "min");
    noise_rows(1);
    if threads > 1 {
        noise_rows(threads);
    }
    layer_rows()
}
