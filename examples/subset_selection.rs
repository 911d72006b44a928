//! Learning to explain (L2X-style subset selection) through a top-k I-MLE layer: the I-MLE
//! paper's BeerAdvocate experiment (Niepert, Minervini & Franceschi, NeurIPS 2021, Section
//! 5.2), on synthetic "reviews" this example generates.
//!
//! A review is a sequence of `L` token embeddings. `K` of its positions hold planted
//! *sentiment* tokens, each with a hidden polarity; the other positions hold neutral filler
//! tokens. The rating is the mean polarity of the planted tokens, mapped to [0, 1]. A selector
//! network scores every position, the top-k I-MLE layer keeps `k = K` of them, and a predictor
//! sees *only* the chosen tokens' embeddings and predicts the rating; the loss is the squared
//! error. The selector is never told which positions matter: it learns it from the
//! predictor's error, through the solver. The paper's measure, *subset precision*, is the
//! share of selected positions that are planted ones (a random selection gets `K / L`).
//!
//! Rows of the summary (same data, same networks):
//! * `I-MLE SoG`: Sum-of-Gamma noise (k = K), the I-MLE gradient;
//! * `I-MLE Gumbel`: Gumbel noise;
//! * `straight-through`: `z = MAP(θ + ε)` (SoG noise) forward, the identity backward;
//! * references: the untrained selector, and always predicting the mean training rating.
//!
//! ```sh
//! cargo run --release --example subset_selection
//! cargo run --release --example subset_selection -- --length 80 --k 5 --epochs 20
//! cargo run --release --example subset_selection -- --quick --json
//! ```
//!
//! The plot (`training.png`: held-out MSE and subset precision per epoch) goes to
//! `target/imle-examples/subset_selection/` (or `--out DIR`).

mod common;

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use common::{Cli, Method, Output, Panel, Series, err, table};
use imle::{ImleConfig, ImleLayer, TopK};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

const ABOUT: &str = "subset_selection: L2X-style selection of the k tokens that explain a \
rating, through a top-k I-MLE layer (the I-MLE paper's BeerAdvocate experiment, on \
synthetic reviews)";

const FLAGS: &[common::Flag] = &[
    ("--length", "positions per review L (default 40)"),
    (
        "--k",
        "planted tokens per review, and the subset size (default 4)",
    ),
    ("--train", "training reviews (default 4000; quick 3000)"),
    ("--test", "held-out reviews (default 1000; quick 500)"),
    ("--batch", "batch size (default 50)"),
    ("--lr", "Adam learning rate (default 3e-3)"),
    ("--lambda", "I-MLE λ (default 1000, as the paper for L2X)"),
    (
        "--methods",
        "comma list of sog, gumbel, ste (default all; quick sog)",
    ),
];

const VOCAB: usize = 300;
const SENTIMENT: usize = 30; // tokens 0..30 carry a polarity, the rest are filler
const DIM: usize = 16;
const HIDDEN: usize = 32;

#[derive(Clone, Debug)]
struct Options {
    length: usize,
    k: usize,
    train: usize,
    test: usize,
    epochs: usize,
    batch: usize,
    lr: f64,
    lambda: f32,
    methods: Vec<Method>,
    seed: u64,
    out: PathBuf,
}

impl Options {
    fn from_cli(cli: &Cli) -> std::result::Result<Options, String> {
        let quick = cli.quick;
        let methods = Method::from_cli(cli)?;
        let o = Options {
            length: cli.get("--length", 40),
            k: cli.get("--k", 4),
            train: cli.get("--train", if quick { 3000 } else { 4000 }),
            test: cli.get("--test", if quick { 500 } else { 1000 }),
            epochs: cli.epochs.unwrap_or(if quick { 10 } else { 30 }),
            batch: cli.get("--batch", 50),
            lr: cli.get("--lr", 3e-3),
            lambda: cli.get("--lambda", 1000.0),
            methods,
            seed: cli.seed,
            out: cli.out_dir("subset_selection"),
        };
        if o.k == 0 || o.k >= o.length || o.k > SENTIMENT {
            return Err(format!(
                "--k must be in 1..{} and below --length",
                SENTIMENT
            ));
        }
        if o.batch == 0 || o.train == 0 || o.test == 0 {
            return Err("--batch, --train and --test must be >= 1".into());
        }
        Ok(o)
    }
}

/// Reviews: embeddings `[N, L, DIM]`, ratings `[N, 1]`, planted-position masks `[N, L]`.
struct Reviews {
    x: Tensor,
    rating: Tensor,
    planted: Tensor,
}

impl Reviews {
    fn len(&self) -> usize {
        self.rating.dims()[0]
    }
}

/// The hidden world: token embeddings and the polarity of each sentiment token.
struct World {
    embeddings: Vec<f32>,
    polarity: Vec<f32>,
}

impl World {
    fn new(rng: &mut StdRng) -> World {
        let embeddings = (0..VOCAB * DIM)
            .map(|_| rng.sample::<f32, _>(StandardNormal) / (DIM as f32).sqrt() * 2.0)
            .collect();
        // Polarities spread over [-1, 1]: strong and mild, positive and negative.
        let polarity = (0..SENTIMENT)
            .map(|i| -1.0 + 2.0 * i as f32 / (SENTIMENT - 1) as f32)
            .collect();
        World {
            embeddings,
            polarity,
        }
    }

    fn reviews(&self, n: usize, o: &Options, rng: &mut StdRng) -> Result<Reviews> {
        let l = o.length;
        let mut x = Vec::with_capacity(n * l * DIM);
        let mut rating = Vec::with_capacity(n);
        let mut planted = vec![0f32; n * l];
        for r in 0..n {
            let positions = rand::seq::index::sample(rng, l, o.k);
            let mut tokens: Vec<usize> =
                (0..l).map(|_| rng.random_range(SENTIMENT..VOCAB)).collect();
            let mut total = 0.0;
            for p in positions.iter() {
                let t = rng.random_range(0..SENTIMENT);
                tokens[p] = t;
                total += self.polarity[t];
                planted[r * l + p] = 1.0;
            }
            rating.push(0.5 + 0.5 * total / o.k as f32);
            for t in tokens {
                x.extend_from_slice(&self.embeddings[t * DIM..(t + 1) * DIM]);
            }
        }
        Ok(Reviews {
            x: Tensor::from_vec(x, (n, l, DIM), &Device::Cpu)?,
            rating: Tensor::from_vec(rating, (n, 1), &Device::Cpu)?,
            planted: Tensor::from_vec(planted, (n, l), &Device::Cpu)?,
        })
    }
}

/// The selector (scores per position) and the predictor (rating from the chosen tokens).
struct Model {
    select: [Linear; 2],
    encode: [Linear; 2],
    head: Linear,
}

impl Model {
    fn new(vb: VarBuilder) -> Result<Model> {
        Ok(Model {
            select: [
                candle_nn::linear(DIM, HIDDEN, vb.pp("select1"))?,
                candle_nn::linear(HIDDEN, 1, vb.pp("select2"))?,
            ],
            encode: [
                candle_nn::linear(DIM, HIDDEN, vb.pp("encode1"))?,
                candle_nn::linear(HIDDEN, HIDDEN, vb.pp("encode2"))?,
            ],
            head: candle_nn::linear(HIDDEN, 1, vb.pp("head"))?,
        })
    }

    /// Scores θ `[B, L]` of every position.
    fn scores(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.select[0].forward(x)?.relu()?;
        self.select[1].forward(&h)?.squeeze(D::Minus1)
    }

    /// The rating `[B', 1]` from the tokens a mask `z` `[B', L]` keeps (x is `[B', L, DIM]`).
    fn predict(&self, x: &Tensor, z: &Tensor, k: usize) -> Result<Tensor> {
        let h = self.encode[0].forward(x)?.relu()?;
        let h = self.encode[1].forward(&h)?.relu()?;
        let pooled = (h.broadcast_mul(&z.unsqueeze(D::Minus1)?)?.sum(1)? / k as f64)?;
        self.head.forward(&pooled)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Scores {
    mse: f64,
    precision: f64,
}

struct Run {
    method: Method,
    scores: Scores,
    history: Vec<(usize, f64, Scores)>,
    seconds: f64,
}

struct Summary {
    options: Options,
    untrained: Scores,
    mean_predictor_mse: f64,
    runs: Vec<Run>,
    plot: PathBuf,
    seconds: f64,
}

fn evaluate(model: &Model, layer: &ImleLayer<TopK>, data: &Reviews, k: usize) -> Result<Scores> {
    let z = layer.map(&model.scores(&data.x)?)?;
    let y = model.predict(&data.x, &z, k)?;
    let mse = (y - &data.rating)?.sqr()?.mean_all()?.to_scalar::<f32>()? as f64;
    let hits = (z * &data.planted)?.sum_all()?.to_scalar::<f32>()? as f64;
    Ok(Scores {
        mse,
        precision: hits / (data.len() * k) as f64,
    })
}

fn train_one(
    method: Method,
    o: &Options,
    train: &Reviews,
    test: &Reviews,
    output: &Output,
) -> Result<(Run, Scores)> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    common::seeded_init(&varmap, o.seed)?;
    let layer = ImleLayer::new(
        TopK::new(o.k)?,
        ImleConfig::new(method.noise(o.k))
            .with_lambda(o.lambda)?
            .with_seed(o.seed),
    )?;
    let untrained = evaluate(&model, &layer, test, o.k)?;
    let mut optimizer = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: o.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0x5e1ec7);
    let n = train.len();
    let progress = output.progress(method.name(), (o.epochs * n.div_ceil(o.batch)) as u64);
    let start = Instant::now();
    let mut history = Vec::new();
    for epoch in 1..=o.epochs {
        let order = common::shuffled(n, &mut rng);
        let (mut total, mut count) = (0.0, 0usize);
        for chunk in order.chunks(o.batch) {
            let idx = Tensor::new(chunk, &device)?;
            let x = train.x.index_select(&idx, 0)?;
            let y = train.rating.index_select(&idx, 0)?;
            let theta = model.scores(&x)?;
            let z = match method {
                Method::StraightThrough => layer.straight_through(&theta, true)?,
                Method::Sog | Method::Gumbel => layer.forward(&theta)?,
            };
            let y_hat = model.predict(&x, &z, o.k)?;
            // Squared error summed over the batch: each review's ∂L/∂z has the size λ is
            // chosen for, whatever the batch size (Adam ignores the overall scale).
            let sse = (y_hat - y)?.sqr()?.sum_all()?;
            optimizer.backward_step(&sse)?;
            total += sse.to_scalar::<f32>()? as f64;
            count += chunk.len();
            progress.step(|| format!("epoch {epoch}/{} MSE {:.4}", o.epochs, total / count as f64));
        }
        let scores = evaluate(&model, &layer, test, o.k)?;
        progress.line(format!(
            "epoch {epoch:>3}  train MSE {:.4}  held-out MSE {:.4}  subset precision {:>5.1}%  ({:.0}s)",
            total / count as f64,
            scores.mse,
            100.0 * scores.precision,
            start.elapsed().as_secs_f64()
        ));
        history.push((epoch, total / count as f64, scores));
    }
    progress.finish();
    Ok((
        Run {
            method,
            scores: history.last().map(|h| h.2).unwrap_or(untrained),
            history,
            seconds: start.elapsed().as_secs_f64(),
        },
        untrained,
    ))
}

fn run(o: &Options, output: &Output) -> Result<Summary> {
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(o.seed);
    let world = World::new(&mut rng);
    let train = world.reviews(o.train, o, &mut rng)?;
    let test = world.reviews(o.test, o, &mut rng)?;
    let mean_rating = train.rating.mean_all()?.to_scalar::<f32>()? as f64;
    let mean_predictor_mse = (&test.rating - mean_rating)?
        .sqr()?
        .mean_all()?
        .to_scalar::<f32>()? as f64;
    output.say(format!(
        "{} training and {} held-out reviews of {} tokens, {} planted; select k = {}",
        o.train, o.test, o.length, o.k, o.k
    ));
    let mut runs = Vec::new();
    let mut untrained = Scores::default();
    for &method in &o.methods {
        let (r, u) = train_one(method, o, &train, &test, output)?;
        untrained = u;
        runs.push(r);
    }
    std::fs::create_dir_all(&o.out).map_err(err)?;
    let plot = o.out.join("training.png");
    let curve = |r: &Run, f: &dyn Fn(&Scores) -> f64| -> Vec<(f64, f64)> {
        std::iter::once((0.0, f(&untrained)))
            .chain(r.history.iter().map(|(e, _, s)| (*e as f64, f(s))))
            .collect()
    };
    let epochs = o.epochs as f64;
    let mut mse: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Series::new(r.method.name(), curve(r, &|s| s.mse), i))
        .collect();
    mse.push(
        Series::new(
            "predict the mean",
            vec![(0.0, mean_predictor_mse), (epochs, mean_predictor_mse)],
            7,
        )
        .dashed(),
    );
    let mut precision: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Series::new(r.method.name(), curve(r, &|s| 100.0 * s.precision), i))
        .collect();
    let random = 100.0 * o.k as f64 / o.length as f64;
    precision.push(Series::new("random subset", vec![(0.0, random), (epochs, random)], 7).dashed());
    common::line_charts(
        &plot,
        &[
            Panel {
                log_y: true,
                ..Panel::new("Held-out rating error", "epoch", "MSE (log scale)", mse)
            },
            Panel::new(
                "Subset precision",
                "epoch",
                "selected positions that are planted (%)",
                precision,
            ),
        ],
        560,
        420,
    )?;
    Ok(Summary {
        options: o.clone(),
        untrained,
        mean_predictor_mse,
        runs,
        plot,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn report(s: &Summary, output: &Output) {
    let o = &s.options;
    let mut rows = vec![
        vec![
            "predict the mean rating".to_string(),
            format!("{:.4}", s.mean_predictor_mse),
            "-".into(),
            "-".into(),
        ],
        vec![
            "untrained selector".to_string(),
            format!("{:.4}", s.untrained.mse),
            format!("{:.1}%", 100.0 * s.untrained.precision),
            "-".into(),
        ],
    ];
    for r in &s.runs {
        rows.push(vec![
            r.method.name().to_string(),
            format!("{:.4}", r.scores.mse),
            format!("{:.1}%", 100.0 * r.scores.precision),
            format!("{:.0}", r.seconds),
        ]);
    }
    output.say(format!(
        "\nHeld-out reviews ({}), after {} epochs, k = {} of L = {} (random precision {:.1}%):",
        o.test,
        o.epochs,
        o.k,
        o.length,
        100.0 * o.k as f64 / o.length as f64
    ));
    output.say(table(
        &["method", "MSE", "subset precision", "train s"],
        &rows,
    ));
    output.say(format!("λ = {}; plot: {}", o.lambda, s.plot.display()));
    output.say(format!("total {:.0}s", s.seconds));
    output.json(&json!({
        "example": "subset_selection",
        "length": o.length, "k": o.k, "train": o.train, "test": o.test,
        "epochs": o.epochs, "lambda": o.lambda, "seed": o.seed,
        "mean_predictor_mse": s.mean_predictor_mse,
        "untrained": {"mse": s.untrained.mse, "precision": s.untrained.precision},
        "methods": s.runs.iter().map(|r| json!({
            "method": r.method.name(),
            "mse": r.scores.mse,
            "precision": r.scores.precision,
            "seconds": r.seconds,
            "history": r.history.iter().map(|(e, loss, sc)| json!({
                "epoch": e, "train_mse": loss, "mse": sc.mse, "precision": sc.precision,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "plots": [s.plot.display().to_string()],
        "seconds": s.seconds,
    }));
}

fn main() -> Result<()> {
    common::run_main(ABOUT, FLAGS, Options::from_cli, run, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_mode_selects_the_planted_tokens() -> Result<()> {
        let out = common::TempOut::new("subset-selection");
        let cli = out.quick_cli(FLAGS);
        let o = Options::from_cli(&cli).unwrap();
        let s = run(&o, &Output::silent())?;
        let trained = s.runs[0].scores;
        // Margins. Precision: per review a proportion of k = 4 picks, so its standard error
        // over the 500 held-out reviews is at most √(0.25/500) ≈ 2.2 points; an untrained or
        // random selector sits near K/L = 10%. Requiring 30 points above the untrained
        // selector is more than 13 standard errors. MSE: a predictor blind to the planted
        // tokens cannot beat "predict the mean" by more than noise; a mean of n squared
        // (roughly Gaussian) residuals has relative standard error √(2/n) ≈ 6.3% for n = 500,
        // so the trained MSE must be below the reference by 5 of those (31.6%).
        let se = common::proportion_se(0.5, o.test);
        assert!(
            trained.precision >= s.untrained.precision + 0.30,
            "precision {:.3} vs untrained {:.3} (se {se:.3})",
            trained.precision,
            s.untrained.precision
        );
        assert!(0.30 > 10.0 * se);
        let relative_se = (2.0 / o.test as f64).sqrt();
        assert!(
            trained.mse <= (1.0 - 5.0 * relative_se) * s.mean_predictor_mse,
            "MSE {:.4} vs predict-the-mean {:.4}",
            trained.mse,
            s.mean_predictor_mse
        );
        assert!(std::fs::metadata(&s.plot)?.len() > 1000);
        Ok(())
    }
}
