//! Wraps a solver of your own in an I-MLE layer with `#[imle_layer]`, and trains through it.
//!
//! The problem: a shop sells `ITEMS` products with known prices. For a customer `x`, a network
//! predicts how much they value each product (θ); the solver recommends at most `PICKS`
//! products, those with the largest positive surplus `θ_i − price_i` (a greedy choice, exact
//! for this constraint). The solver is an ordinary Rust function; the attribute makes it a
//! differentiable Candle layer that owns the price list. The labels come from a hidden
//! valuation, and the network learns it through the solver, which has no gradient of its own.
//!
//! ```sh
//! cargo run --release --example wrap_solver
//! ```

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use imle::imle_layer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::time::Instant;

const FEATURES: usize = 8;
const ITEMS: usize = 10;
const PICKS: usize = 3;
const HIDDEN: usize = 32;
const TRAIN: usize = 8192;
const TEST: usize = 512;
const BATCH: usize = 64;
const EPOCHS: usize = 15;

/// The solver's context: what it needs besides θ. The layer owns it.
struct Shop {
    prices: Vec<f32>,
}

/// Recommends at most `PICKS` products with the largest positive surplus `θ_i − price_i`.
///
/// The attribute keeps this function as it is and adds `type Recommend` (the layer) and
/// `RecommendSolver`. Sum-of-Gamma noise with `k` = `PICKS` suits a solver that picks about
/// `PICKS` items (the attribute takes literals, so it says 3).
#[imle_layer(noise = "sum_of_gamma", k = 3, lambda = 30, samples = 2, seed = 1)]
fn recommend(shop: &Shop, theta: &[f32], z: &mut [f32]) -> std::result::Result<(), String> {
    if theta.len() != shop.prices.len() {
        return Err(format!(
            "{} values for {} products",
            theta.len(),
            shop.prices.len()
        ));
    }
    let surplus = |i: usize| theta[i] - shop.prices[i];
    let mut order: Vec<usize> = (0..theta.len()).filter(|&i| surplus(i) > 0.0).collect();
    // Largest surplus first; `cmp_desc` compares numerically (−0.0 = +0.0, unlike
    // `total_cmp`) and breaks ties by the lower index.
    order.sort_by(|&a, &b| imle::cmp_desc((a, surplus(a)), (b, surplus(b))));
    for &i in order.iter().take(PICKS) {
        z[i] = 1.0;
    }
    Ok(())
}

fn normal(rng: &mut StdRng, rows: usize, cols: usize) -> Result<Tensor> {
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| rng.sample(StandardNormal))
        .collect();
    Tensor::from_vec(values, (rows, cols), &Device::Cpu)
}

/// Mean number of wrong entries per customer, and the share of exactly right recommendations.
fn evaluate(z: &Tensor, labels: &Tensor) -> Result<(f32, f32)> {
    let wrong = (z - labels)?.abs()?.sum(1)?;
    let rows = wrong.dims1()? as f32;
    let hamming = wrong.sum_all()?.to_scalar::<f32>()? / rows;
    let exact = wrong.eq(0f32)?.to_dtype(DType::F32)?.sum_all()?;
    Ok((hamming, exact.to_scalar::<f32>()? / rows))
}

fn main() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(0);
    let prices: Vec<f32> = (0..ITEMS).map(|i| 0.5 + 0.1 * i as f32).collect();
    let layer = Recommend::from_context(Shop { prices });

    // The hidden valuation, and the recommendations it leads to (the labels).
    let (a, b) = (
        normal(&mut rng, FEATURES, 16)?,
        normal(&mut rng, 16, ITEMS)?,
    );
    let value = |x: &Tensor| x.matmul(&a)?.tanh()?.matmul(&b);
    let (x_train, x_test) = (
        normal(&mut rng, TRAIN, FEATURES)?,
        normal(&mut rng, TEST, FEATURES)?,
    );
    let y_train = layer.forward_t(&value(&x_train)?, false)?; // MAP(θ): no noise
    let y_test = layer.forward_t(&value(&x_test)?, false)?;

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = candle_nn::seq()
        .add(candle_nn::linear(FEATURES, HIDDEN, vb.pp("hidden"))?)
        .add(candle_nn::Activation::Relu)
        .add(candle_nn::linear(HIDDEN, ITEMS, vb.pp("values"))?);
    let params = ParamsAdamW {
        lr: 1e-2,
        ..Default::default()
    };
    let mut optimizer = AdamW::new(varmap.all_vars(), params)?;

    println!(
        "{ITEMS} products, at most {PICKS} recommended; config: {:?}",
        layer.config()
    );
    println!(
        "{:>5} {:>11} {:>14} {:>11} {:>6}",
        "epoch", "train loss", "test wrong", "test exact", "secs"
    );
    let (wrong, exact) = evaluate(&layer.forward_t(&net.forward(&x_test)?, false)?, &y_test)?;
    println!(
        "{:>5} {:>11} {:>14.3} {:>10.1}% {:>6}",
        0,
        "-",
        wrong,
        100.0 * exact,
        "-"
    );
    let start = Instant::now();
    for epoch in 1..=EPOCHS {
        let mut total = 0.0;
        for batch in 0..TRAIN / BATCH {
            let x = x_train.narrow(0, batch * BATCH, BATCH)?;
            let y = layer.repeat_for_samples(&y_train.narrow(0, batch * BATCH, BATCH)?)?;
            let z = layer.forward(&net.forward(&x)?)?; // [BATCH·2, ITEMS]: two samples each
            let loss = ((z - y)?.sqr()?.sum_all()? / z_rows(&layer))?;
            optimizer.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()?;
        }
        let z_test = layer.forward_t(&net.forward(&x_test)?, false)?;
        let (wrong, exact) = evaluate(&z_test, &y_test)?;
        println!(
            "{:>5} {:>11.3} {:>14.3} {:>10.1}% {:>6.1}",
            epoch,
            total / (TRAIN / BATCH) as f32,
            wrong,
            100.0 * exact,
            start.elapsed().as_secs_f32()
        );
    }

    // A solver error comes back as a candle error that names the layer.
    let wrong_width = Tensor::zeros((1, ITEMS + 1), DType::F32, &Device::Cpu)?;
    println!("a bad input: {}", layer.map(&wrong_width).unwrap_err());
    Ok(())
}

/// Rows of a training output: the batch times the samples per instance.
fn z_rows(layer: &Recommend) -> f64 {
    (BATCH * layer.config().samples as usize) as f64
}
