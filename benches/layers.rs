//! Speed of the hot paths, printed as a table (median and min over repeats after warm-up),
//! beside a PyTorch reference doing the same work when one is available.
//!
//! ```sh
//! cargo bench --bench layers              # the table
//! cargo bench --bench layers -- --json    # plus one JSON object, one key per row
//! cargo bench --bench layers -- --quick   # fewer repeats, no scaling rows
//! ```
//!
//! The PyTorch side runs `benches/reference/torch_imle.py --json` with the python named by
//! `IMLE_TORCH_PYTHON` (default `python3`) when that python can import torch; otherwise its
//! column says "-". Rows: noise generation (ns/element, 10^6 elements, 1 thread and all
//! threads), the top-k layer forward + backward (B = 128, n = 1000, k = 10, SoG noise,
//! λ = 10, S = 1 and 10), the grid shortest-path layer forward + backward (B = 32, S = 1,
//! 12×12 and 30×30), the PyEPO 5×5 arc-cost shortest-path layer forward + backward (B = 32,
//! S = 10, as PyEPO's I-MLE defaults) and its solver alone, the macro-generated layer against the same layer built by hand,
//! scaling of the top-k layer in B and n, and peak memory of one call.

mod common;

use candle_core::{Device, Result, Tensor, Var};
use common::{Table, time, torch_reference};
use imle::noise::{NoiseKey, fill_instance};
use imle::{
    DigraphScratch, DigraphShortestPath, GridShortestPath, ImleConfig, ImleLayer, MapSolver,
    NegativeCosts, Neighbourhood, Noise, Sense, Solver, TopK, imle_layer,
};
use rayon::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes and their peak, so a row can report the memory one call allocates.
struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counters only
// observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn scaled((median, min): (f64, f64), factor: f64) -> (f64, f64) {
    (median * factor, min * factor)
}

fn noise_rows(table: &mut Table, threads: usize, repeats: usize) {
    const ROWS: usize = 1000;
    const N: usize = 1000;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool");
    let mut out = vec![0.0f32; ROWS * N];
    for (key, noise) in [
        ("sum_of_gamma", Noise::SumOfGamma { k: 10.0, terms: 10 }),
        ("gumbel", Noise::Gumbel),
        ("gaussian", Noise::Gaussian),
    ] {
        let mut call = 0;
        let timing = time(2, repeats, || {
            call += 1;
            let key = NoiseKey::new(0, call);
            pool.install(|| {
                out.par_chunks_mut(N)
                    .enumerate()
                    .for_each(|(r, row)| fill_instance(&noise, key, r as u32, 0, row));
            });
        });
        table.add(
            &format!("noise_{key}_{threads}_threads"),
            format!("noise {key}, 10^6 elements, {threads} thread(s)"),
            "ns/element",
            scaled(timing, 1e9 / (ROWS * N) as f64),
        );
    }
}

/// Forward + backward of `layer` with the loss `sum(z ⊙ weights)` (the loss's multiply, sum
/// and their backward run in candle and are part of the time).
fn step<S: Solver>(layer: &ImleLayer<S>, theta: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let var = Var::from_tensor(theta)?;
    let z = layer.forward(var.as_tensor())?;
    let grads = (z * weights)?.sum_all()?.backward()?;
    Ok(grads.get(&var).expect("θ has a gradient").clone())
}

fn top_k_layer(k: usize, samples: u32) -> Result<ImleLayer<TopK>> {
    ImleLayer::new(
        TopK::new(k)?,
        ImleConfig::new(Noise::SumOfGamma {
            k: k as f32,
            terms: 10,
        })
        .with_lambda(10.0)?
        .with_samples(samples)?,
    )
}

fn top_k_rows(table: &mut Table, repeats: usize) -> Result<()> {
    let cpu = &Device::Cpu;
    let (batch, n, k) = (128, 1000, 10);
    for samples in [1u32, 10] {
        let layer = top_k_layer(k, samples)?;
        let theta = Tensor::randn(0f32, 1.0, (batch, n), cpu)?;
        let weights = Tensor::randn(0f32, 1.0, (batch * samples as usize, n), cpu)?;
        let forward = time(2, repeats, || {
            layer.forward(&theta).expect("forward");
        });
        table.add(
            &format!("topk_fwd_s{samples}"),
            format!("top-k forward only, B=128 n=1000 k=10 S={samples}"),
            "ms/call",
            scaled(forward, 1e3),
        );
        let timing = time(2, repeats, || {
            step(&layer, &theta, &weights).expect("step");
        });
        table.add(
            &format!("topk_fwd_bwd_s{samples}"),
            format!("top-k fwd+bwd, B=128 n=1000 k=10 S={samples}"),
            "ms/call",
            scaled(timing, 1e3),
        );
        table.add(
            &format!("topk_fwd_bwd_s{samples}_per_instance_sample"),
            format!("  the same, per instance·sample (S={samples})"),
            "µs",
            scaled(timing, 1e6 / (batch * samples as usize) as f64),
        );
    }
    Ok(())
}

/// What bounds the top-k row at S = 10, measured in the same run: the copy bandwidth (for
/// the bytes the layer must move), one selection pass over the B·S rows, and one noise pass
/// over the B·S·n values. The layer does two of each (forward, and the target in backward).
fn top_k_bound_rows(table: &mut Table, repeats: usize) -> Result<()> {
    let (batch, n, k, samples) = (128usize, 1000usize, 10usize, 10usize);
    let rows = batch * samples;
    // Copy bandwidth on all threads: 64 MiB, both buffers already faulted in.
    let len = 16 << 20;
    let src = vec![1.0f32; len];
    let mut dst = vec![0.0f32; len];
    let copy = time(1, repeats, || {
        dst.par_chunks_mut(1 << 16)
            .zip(src.par_chunks(1 << 16))
            .for_each(|(d, s)| d.copy_from_slice(s));
    });
    let bandwidth = (len * 4 * 2) as f64 / copy.0 / 1e9; // read + write
    table.add(
        "copy_bandwidth",
        "bound: copy bandwidth, 64 MiB, all threads (read+write)".into(),
        "GB/s",
        (bandwidth, (len * 8) as f64 / copy.1 / 1e9),
    );
    let solver = TopK::new(k)?;
    let inputs: Vec<f32> = (0..rows * n).map(|i| ((i * 7919) % 1009) as f32).collect();
    let mut z = vec![0.0f32; rows * n];
    let select = time(1, repeats, || {
        solver
            .solve_rows(
                &[n],
                &|row, input| input.copy_from_slice(&inputs[row * n..][..n]),
                &mut z,
            )
            .expect("top-k");
    });
    table.add(
        "topk_select_pass_s10",
        "bound: one top-k pass over B·S = 1280 rows, all threads".into(),
        "ms/call",
        scaled(select, 1e3),
    );
    let noise = Noise::SumOfGamma { k: 10.0, terms: 10 };
    let mut values = vec![0.0f32; rows * n];
    let draw = time(1, repeats, || {
        values
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(row, out)| fill_instance(&noise, NoiseKey::new(1, 0), row as u32, 0, out));
    });
    table.add(
        "topk_noise_pass_s10",
        "bound: one SoG noise pass over B·S·n = 1.28M, all threads".into(),
        "ms/call",
        scaled(draw, 1e3),
    );
    // The layer must read θ (B·n) and write z (B·S·n) forward, and read g, z and θ and
    // write the gradient backward: (2 B·n + 3 B·S·n) f32 values at least.
    let bytes = ((2 * batch * n + 3 * rows * n) * 4) as f64;
    let bound = bytes / (bandwidth * 1e9) + 2.0 * select.0 + 2.0 * draw.0;
    table.add(
        "topk_bound_s10",
        "bound: the layer's S=10 fwd+bwd at that speed (2+2 passes + bytes)".into(),
        "ms/call",
        (bound * 1e3, bound * 1e3),
    );
    Ok(())
}

fn shortest_path_rows(table: &mut Table, repeats: usize) -> Result<()> {
    let cpu = &Device::Cpu;
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
        let weights = Tensor::randn(0f32, 1.0, (batch, side, side), cpu)?;
        let timing = time(2, repeats, || {
            step(&layer, &theta, &weights).expect("step");
        });
        table.add(
            &format!("shortest_path_{side}x{side}"),
            format!("shortest path fwd+bwd, B=32 {side}x{side} 8-nbhd S=1"),
            "ms/call",
            scaled(timing, 1e3),
        );
    }
    Ok(())
}

/// PyEPO's 5×5 shortest-path benchmark: 40 arc costs per instance, B = 32, S = 10 with
/// Sum-of-Gamma κ = 5 and λ = 10 (PyEPO's `implicitMLE` defaults); the layer solves B·S = 320
/// instances forward and 320 backward. The second row times the solver alone, one call per
/// instance on one thread, with its scratch reused as the layer does.
fn digraph_rows(table: &mut Table, repeats: usize) -> Result<()> {
    let cpu = &Device::Cpu;
    let (batch, samples) = (32, 10u32);
    let grid = DigraphShortestPath::grid(5, 5)?;
    let arcs = grid.arcs().len();
    let layer = ImleLayer::new(
        grid.clone(),
        ImleConfig::new(Noise::SumOfGamma { k: 5.0, terms: 10 })
            .with_sense(Sense::Minimize)
            .with_samples(samples)?
            .with_lambda(10.0)?,
    )?;
    // Costs around 1 with some below 0, as PyEPO's generator makes at deg 1 with noise.
    let theta = (Tensor::randn(0f32, 0.5, (batch, arcs), cpu)? + 1.0)?;
    let weights = Tensor::randn(0f32, 1.0, (batch * samples as usize, arcs), cpu)?;
    let timing = time(2, repeats, || {
        step(&layer, &theta, &weights).expect("step");
    });
    table.add(
        "digraph_5x5_fwd_bwd_s10",
        "digraph 5x5 (PyEPO grid) fwd+bwd, B=32 S=10".into(),
        "ms/call",
        scaled(timing, 1e3),
    );
    let costs = (Tensor::randn(0f32, 0.5, (1000, arcs), cpu)? + 1.0)?.to_vec2::<f32>()?;
    let mut z = vec![0.0f32; arcs];
    let mut scratch = DigraphScratch::default();
    let timing = time(2, repeats, || {
        for row in &costs {
            z.fill(0.0);
            grid.solve(row, &[arcs], &mut z, &mut scratch)
                .expect("solve");
            std::hint::black_box(&z);
        }
    });
    table.add(
        "digraph_5x5_solve",
        "  the solver alone, per solve (1 thread)".into(),
        "ns/solve",
        scaled(timing, 1e9 / costs.len() as f64),
    );
    Ok(())
}

/// Top-10 by the built-in solver, wrapped by the attribute (the macro-generated layer).
#[imle_layer(noise = "sum_of_gamma", k = 10, lambda = 10.0)]
fn top10(theta: &[f32], z: &mut [f32]) -> candle_core::Result<()> {
    TopK::new(10)?.solve(theta, &[theta.len()], z, &mut Vec::new())
}

/// The same function behind a hand-written `MapSolver`.
struct HandTop10;

impl MapSolver for HandTop10 {
    type Scratch = ();
    fn name(&self) -> &str {
        "hand top10"
    }
    fn solve(&self, theta: &[f32], _: &[usize], z: &mut [f32], _: &mut ()) -> Result<()> {
        top10(theta, z)
    }
}

fn macro_rows(table: &mut Table, repeats: usize) -> Result<()> {
    let cpu = &Device::Cpu;
    let theta = Tensor::randn(0f32, 1.0, (128, 1000), cpu)?;
    let weights = Tensor::randn(0f32, 1.0, (128, 1000), cpu)?;
    let generated = Top10::default();
    let by_hand = ImleLayer::new(HandTop10, *generated.config())?;
    // Interleave the two so that drifts of the machine hit both alike.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a.push(time(1, repeats, || {
            step(&generated, &theta, &weights).expect("step");
        }));
        b.push(time(1, repeats, || {
            step(&by_hand, &theta, &weights).expect("step");
        }));
    }
    let best = |v: &[(f64, f64)]| {
        let mut medians: Vec<f64> = v.iter().map(|t| t.0).collect();
        medians.sort_by(f64::total_cmp);
        (
            medians[medians.len() / 2],
            v.iter().map(|t| t.1).fold(f64::MAX, f64::min),
        )
    };
    table.add(
        "macro_layer_fwd_bwd",
        "#[imle_layer] top-10 fwd+bwd, B=128 n=1000 S=1".into(),
        "ms/call",
        scaled(best(&a), 1e3),
    );
    table.add(
        "hand_layer_fwd_bwd",
        "  the same solver behind a hand-written MapSolver".into(),
        "ms/call",
        scaled(best(&b), 1e3),
    );
    Ok(())
}

fn scaling_rows(table: &mut Table, repeats: usize) -> Result<()> {
    let cpu = &Device::Cpu;
    let k = 10;
    let layer = top_k_layer(k, 1)?;
    let mut sizes: Vec<(usize, usize)> = (0..5).map(|j| (128 << j, 1000)).collect();
    sizes.extend([100, 10_000, 100_000].map(|n| (128, n)));
    for (batch, n) in sizes {
        let theta = Tensor::randn(0f32, 1.0, (batch, n), cpu)?;
        let weights = Tensor::randn(0f32, 1.0, (batch, n), cpu)?;
        let timing = time(1, repeats.min(5), || {
            step(&layer, &theta, &weights).expect("step");
        });
        table.add(
            &format!("scaling_b{batch}_n{n}"),
            format!("scaling: top-k fwd+bwd B={batch} n={n}, per element"),
            "ns/element",
            scaled(timing, 1e9 / (batch * n) as f64),
        );
    }
    // Peak bytes allocated by one forward + backward at the largest size, against θ's size.
    let (batch, n) = (128, 100_000);
    let theta = Tensor::randn(0f32, 1.0, (batch, n), cpu)?;
    let weights = Tensor::randn(0f32, 1.0, (batch, n), cpu)?;
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let gradient = step(&layer, &theta, &weights)?;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    drop(gradient);
    let theta_bytes = (batch * n * 4) as f64;
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let z = layer.forward(&theta)?;
    let forward_peak = PEAK.load(Ordering::Relaxed) - before;
    drop(z);
    table.add(
        "peak_memory_forward_in_theta_sizes",
        "  of which the forward alone, in multiples of θ".into(),
        "×θ",
        (
            forward_peak as f64 / theta_bytes,
            forward_peak as f64 / theta_bytes,
        ),
    );
    table.add(
        "peak_memory_b128_n100000",
        "peak heap of one top-k fwd+bwd, B=128 n=10^5 S=1".into(),
        "MB",
        (peak as f64 / 1e6, peak as f64 / 1e6),
    );
    table.add(
        "peak_memory_in_theta_sizes",
        "  the same, in multiples of θ's size".into(),
        "×θ",
        (peak as f64 / theta_bytes, peak as f64 / theta_bytes),
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let quick = args.iter().any(|a| a == "--quick");
    let repeats = if quick { 3 } else { 9 };
    let threads = rayon::current_num_threads();
    let mut table = Table {
        reference: torch_reference(&[]),
        ..Table::default()
    };
    println!(
        "imle benchmarks: {threads} rayon threads; median and min over {repeats} repeats; \
         PyTorch median and speed-up where the reference ran"
    );
    println!(
        "{:<52} {:>11} {:>11} {:>12}   {:>7}  unit",
        "row", "median", "min", "PyTorch", "speedup"
    );
    noise_rows(&mut table, 1, repeats);
    if threads > 1 {
        noise_rows(&mut table, threads, repeats);
    }
    top_k_rows(&mut table, repeats)?;
    top_k_bound_rows(&mut table, repeats)?;
    shortest_path_rows(&mut table, repeats)?;
    digraph_rows(&mut table, repeats)?;
    macro_rows(&mut table, repeats)?;
    if !quick {
        scaling_rows(&mut table, repeats)?;
    }
    if json {
        println!("{}", table.json());
    }
    Ok(())
}
