//! Trains a small network through the top-k I-MLE layer on data it generates itself.
//!
//! Each example is a feature vector `x`; its label is the set of the `k` largest entries of a
//! hidden, non-linear score `s(x)`. A two-layer MLP predicts scores θ, the I-MLE top-k layer
//! turns them into a k-subset, and the loss is the Hamming distance between that subset and
//! the label. The solver has no gradient: I-MLE supplies it.
//!
//! ```sh
//! cargo run --release --example train_topk            # defaults
//! cargo run --release --example train_topk -- --epochs 30 --seed 3
//! ```

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use imle::{ImleConfig, ImleLayer, Noise, TopK};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::time::Instant;

const FEATURES: usize = 16;
const ITEMS: usize = 20;
const K: usize = 5;
const HIDDEN: usize = 64;
const TRAIN: usize = 8192;
const TEST: usize = 512;
const BATCH: usize = 64;

struct Args {
    epochs: usize,
    seed: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        epochs: 40,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok());
        match flag.as_str() {
            "--epochs" => args.epochs = value().expect("--epochs takes a number") as usize,
            "--seed" => args.seed = value().expect("--seed takes a number"),
            other => {
                eprintln!("unknown argument {other}; use --epochs N and --seed N");
                std::process::exit(2);
            }
        }
    }
    args
}

fn normal(rng: &mut StdRng, rows: usize, cols: usize) -> Result<Tensor> {
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| rng.sample(StandardNormal))
        .collect();
    Tensor::from_vec(values, (rows, cols), &Device::Cpu)
}

/// Mean Hamming distance between predicted and true masks, and the share of exact matches.
fn evaluate(z: &Tensor, labels: &Tensor) -> Result<(f32, f32)> {
    let wrong = (z - labels)?.abs()?.sum(1)?; // per example
    let rows = wrong.dims1()? as f32;
    let hamming = wrong.sum_all()?.to_scalar::<f32>()? / rows;
    let exact = wrong
        .eq(0f32)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?
        / rows;
    Ok((hamming, exact))
}

fn main() -> Result<()> {
    let args = parse_args();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let device = Device::Cpu;

    // The hidden scoring rule: s(x) = tanh(x A) B, labels = top-k of s(x).
    let (a, b) = (
        normal(&mut rng, FEATURES, 32)?,
        normal(&mut rng, 32, ITEMS)?,
    );
    let score = |x: &Tensor| x.matmul(&a)?.tanh()?.matmul(&b);
    let (x_train, x_test) = (
        normal(&mut rng, TRAIN, FEATURES)?,
        normal(&mut rng, TEST, FEATURES)?,
    );
    let layer = ImleLayer::new(
        TopK::new(K)?,
        ImleConfig::new(Noise::SumOfGamma {
            k: K as f32,
            terms: 10,
        })
        .with_lambda(10.0)?
        .with_seed(args.seed),
    )?;
    let (y_train, y_test) = (layer.map(&score(&x_train)?)?, layer.map(&score(&x_test)?)?);

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let net = candle_nn::seq()
        .add(candle_nn::linear(FEATURES, HIDDEN, vb.pp("hidden"))?)
        .add(candle_nn::Activation::Relu)
        .add(candle_nn::linear(HIDDEN, ITEMS, vb.pp("scores"))?);
    let mut optimizer = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 3e-3,
            ..Default::default()
        },
    )?;

    let (hamming, exact) = evaluate(&layer.map(&net.forward(&x_test)?)?, &y_test)?;
    println!("top-{K} of {ITEMS} items, {TRAIN} training and {TEST} test examples");
    println!(
        "{:>5} {:>12} {:>14} {:>12} {:>8}",
        "epoch", "train loss", "test Hamming", "test exact", "secs"
    );
    println!(
        "{:>5} {:>12} {:>14.3} {:>11.1}% {:>8}",
        0,
        "-",
        hamming,
        100.0 * exact,
        "-"
    );
    let start = Instant::now();
    for epoch in 1..=args.epochs {
        let mut total = 0.0;
        for batch in 0..TRAIN / BATCH {
            let x = x_train.narrow(0, batch * BATCH, BATCH)?;
            let y = y_train.narrow(0, batch * BATCH, BATCH)?;
            let z = layer.forward(&net.forward(&x)?)?;
            // Hamming distance of 0/1 masks, as a differentiable function of z.
            let loss = ((z - y)?.sqr()?.sum_all()? / BATCH as f64)?;
            optimizer.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()?;
        }
        let (hamming, exact) = evaluate(&layer.map(&net.forward(&x_test)?)?, &y_test)?;
        println!(
            "{:>5} {:>12.3} {:>14.3} {:>11.1}% {:>8.1}",
            epoch,
            total / (TRAIN / BATCH) as f32,
            hamming,
            100.0 * exact,
            start.elapsed().as_secs_f32()
        );
    }
    Ok(())
}
