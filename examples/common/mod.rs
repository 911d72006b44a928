//! What the examples share: command-line flags, progress output (an indicatif bar on a
//! terminal, plain lines elsewhere), tables, a JSON summary, PNG plots (plotters) and small
//! statistics. Each example includes it with `mod common;`.

#![allow(dead_code)] // each example uses a different part of it

use candle_core::{Error, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plotters::prelude::*;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

/// Turns any displayable error (plotters, I/O) into a candle error.
pub fn err(e: impl std::fmt::Display) -> Error {
    Error::Msg(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Command line

/// The flags every example takes, plus the example's own (`extra`, still as text).
#[derive(Clone, Debug, Default)]
pub struct Cli {
    pub seed: u64,
    pub epochs: Option<usize>,
    pub quick: bool,
    pub json: bool,
    pub quiet: bool,
    pub out: Option<PathBuf>,
    extra: Vec<(String, String)>,
}

/// One example-specific flag that takes a value: name (with the dashes) and help text.
pub type Flag = (&'static str, &'static str);

const COMMON_HELP: &str = "  --seed N        random seed (data, initialisation, noise); default 0
  --epochs N      training epochs (steps for topk_synthetic)
  --quick         a small, fast setting (what CI runs)
  --json          print one JSON summary on stdout (the rest goes to stderr)
  --quiet         no progress bar: plain lines only
  --out DIR       where the PNG plots go (default target/imle-examples/<example>)
  --help          this text";

impl Cli {
    /// Parses `std::env::args()`; prints the usage and exits on `--help` or a bad flag.
    pub fn from_env(about: &str, flags: &[Flag]) -> Cli {
        match Cli::parse(std::env::args().skip(1), flags) {
            Ok(Some(cli)) => cli,
            Ok(None) => {
                println!("{}", usage(about, flags));
                std::process::exit(0);
            }
            Err(message) => {
                eprintln!("error: {message}\n\n{}", usage(about, flags));
                std::process::exit(2);
            }
        }
    }

    /// Parses flags; `Ok(None)` for `--help`.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        flags: &[Flag],
    ) -> std::result::Result<Option<Cli>, String> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} takes a value"))
            };
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--quick" => cli.quick = true,
                "--json" => cli.json = true,
                "--quiet" => cli.quiet = true,
                "--seed" => cli.seed = parse_value("--seed", &value("--seed")?)?,
                "--epochs" => cli.epochs = Some(parse_value("--epochs", &value("--epochs")?)?),
                "--out" => cli.out = Some(PathBuf::from(value("--out")?)),
                other if flags.iter().any(|(name, _)| *name == other) => {
                    let v = value(other)?;
                    cli.extra.push((other.to_string(), v));
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(cli))
    }

    /// The value of an example-specific flag, parsed; `default` when absent.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.extra.iter().rev().find(|(n, _)| n == name) {
            None => default,
            Some((_, v)) => parse_value(name, v).unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(2)
            }),
        }
    }

    /// The raw value of an example-specific flag.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `--out`, or `target/imle-examples/<example>` in the workspace.
    pub fn out_dir(&self, example: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| default_out_dir(example))
    }

    /// Where human-readable output goes, from `--json` and `--quiet`.
    pub fn output(&self) -> Output {
        Output {
            json: self.json,
            bar: !self.quiet && std::io::stderr().is_terminal(),
            silent: false,
        }
    }
}

fn parse_value<T: FromStr>(name: &str, value: &str) -> std::result::Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: cannot read {value:?}"))
}

/// `target/imle-examples/<example>` under the workspace root.
pub fn default_out_dir(example: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("imle-examples")
        .join(example)
}

/// The usage text: the example's description, its flags and the common ones.
pub fn usage(about: &str, flags: &[Flag]) -> String {
    let mut text = format!("{about}\n\nOptions:\n");
    for (name, help) in flags {
        text.push_str(&format!("  {:<15} {help}\n", format!("{name} X")));
    }
    text.push_str(COMMON_HELP);
    text
}

/// A fresh directory under the system's temp dir for a test's plots, removed on drop.
pub struct TempOut(pub PathBuf);

impl TempOut {
    pub fn new(name: &str) -> TempOut {
        let path = std::env::temp_dir().join(format!("imle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempOut(path)
    }
}

impl TempOut {
    /// The command line of a `--quick` run that writes its plots here (what the tests run).
    pub fn quick_cli(&self, flags: &[Flag]) -> Cli {
        let args = [
            "--quick".to_string(),
            "--out".into(),
            self.0.display().to_string(),
        ];
        Cli::parse(args, flags)
            .expect("the quick flags parse")
            .expect("not --help")
    }
}

/// Every example's `main`: parse the flags (exit 2 on a bad one), turn them into the
/// example's options, run, and report.
pub fn run_main<O, S>(
    about: &str,
    flags: &[Flag],
    options: impl FnOnce(&Cli) -> std::result::Result<O, String>,
    run: impl FnOnce(&O, &Output) -> Result<S>,
    report: impl FnOnce(&S, &Output),
) -> Result<()> {
    default_to_one_thread();
    let cli = Cli::from_env(about, flags);
    let options = options(&cli).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let output = cli.output();
    let summary = run(&options, &output)?;
    report(&summary, &output);
    Ok(())
}

impl Drop for TempOut {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Output: text, progress, JSON

/// Where text goes: stdout, or stderr when stdout carries the JSON summary; nothing when
/// silent (tests).
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
    /// An indicatif bar (a terminal and no `--quiet`); plain lines otherwise.
    pub bar: bool,
    pub silent: bool,
}

impl Output {
    /// No output at all (for tests).
    pub fn silent() -> Output {
        Output {
            json: false,
            bar: false,
            silent: true,
        }
    }

    /// Prints one line of human-readable text.
    pub fn say(&self, text: impl AsRef<str>) {
        if self.silent {
        } else if self.json {
            eprintln!("{}", text.as_ref());
        } else {
            println!("{}", text.as_ref());
        }
    }

    /// A progress display over `total` steps, labelled `what`.
    pub fn progress(&self, what: &str, total: u64) -> Progress {
        let bar = (self.bar && !self.silent).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30.cyan/blue}] {pos:>5}/{len:5} {elapsed_precise} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            bar
        });
        Progress {
            bar,
            output: *self,
            what: what.to_string(),
        }
    }

    /// Prints the JSON summary on stdout (with `--json`).
    pub fn json(&self, value: &serde_json::Value) {
        if self.json && !self.silent {
            println!("{value}");
        }
    }
}

/// A progress bar on a terminal; plain lines (one per [`Progress::line`]) elsewhere.
pub struct Progress {
    bar: Option<ProgressBar>,
    output: Output,
    what: String,
}

impl Progress {
    /// Advances by one step and shows `message` (e.g. the running loss) on the bar.
    pub fn step(&self, message: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message());
            bar.inc(1);
        }
    }

    /// A line that stays (e.g. an epoch's summary): above the bar, or a plain line.
    pub fn line(&self, text: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.println(format!("{:>14} {}", self.what, text.as_ref())),
            None => self
                .output
                .say(format!("{:>14} {}", self.what, text.as_ref())),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A plain-text table with right-aligned columns (the first left-aligned).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([headers[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut text = line(headers.to_vec());
    text.push('\n');
    text.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    for row in rows {
        text.push('\n');
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Mean of a slice (0 for an empty one).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Standard error of the mean (sample standard deviation / √n).
pub fn std_error(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let m = mean(values);
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    (var / n).sqrt()
}

/// Standard error of a proportion `p` measured on `n` independent trials, `√(p(1−p)/n)`.
pub fn proportion_se(p: f64, n: usize) -> f64 {
    (p * (1.0 - p) / n as f64).sqrt()
}

/// A shuffled permutation of `0..n` (Fisher–Yates).
pub fn shuffled(n: usize, rng: &mut impl rand::Rng) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

// ---------------------------------------------------------------------------------------------
// Plots

/// Registers a TrueType font for plot text (from `IMLE_FONT`, or a usual system path);
/// `false` if none was found (or `IMLE_FONT` is set but empty), and the plots are drawn
/// without text.
pub fn fonts_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if std::env::var_os("IMLE_FONT").is_some_and(|f| f.is_empty()) {
            return false;
        }
        let candidates = std::env::var("IMLE_FONT").into_iter().chain(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
                "/Library/Fonts/Arial.ttf",
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(String::from),
        );
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, bytes);
                    return true;
                }
            }
        }
        false
    })
}

/// Distinct colours for the series of a plot.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// One line of a chart, with an optional band (e.g. ± one standard error) around it.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Option<Vec<(f64, f64, f64)>>,
    pub color: RGBColor,
    pub dashed: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Series {
        Series {
            name: name.into(),
            points,
            band: None,
            color: PALETTE[color % PALETTE.len()],
            dashed: false,
        }
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }

    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Series {
        self.band = Some(band);
        self
    }
}

/// One chart of a figure.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub log_y: bool,
}

impl Panel {
    pub fn new(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Panel {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
            log_y: false,
        }
    }
}

/// Draws panels side by side into a PNG (`width` per panel); creates the folder.
pub fn line_charts(path: &Path, panels: &[Panel], width: u32, height: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let text = fonts_ready();
    let root = BitMapBackend::new(path, (width * panels.len() as u32, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, panels.len()));
    for (panel, area) in panels.iter().zip(areas) {
        draw_panel(&area, panel, text)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn bounds(panel: &Panel) -> (f64, f64, f64, f64) {
    let mut xs = (f64::INFINITY, f64::NEG_INFINITY);
    let mut ys = (f64::INFINITY, f64::NEG_INFINITY);
    for s in &panel.series {
        for &(x, y) in &s.points {
            xs = (xs.0.min(x), xs.1.max(x));
            ys = (ys.0.min(y), ys.1.max(y));
        }
        for &(x, lo, hi) in s.band.iter().flatten() {
            xs = (xs.0.min(x), xs.1.max(x));
            ys = (ys.0.min(lo), ys.1.max(hi));
        }
    }
    if !xs.0.is_finite() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    if xs.1 <= xs.0 {
        xs.1 = xs.0 + 1.0;
    }
    let pad = ((ys.1 - ys.0) * 0.05).max(1e-9);
    (xs.0, xs.1, ys.0 - pad, ys.1 + pad)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    text: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (x0, x1, y0, y1) = bounds(panel);
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(&panel.title, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(60);
    }
    if panel.log_y {
        // Multiplicative padding on a log axis (the additive one could reach below 0).
        let positive = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|&y| y > 0.0);
        let (lo, hi) = positive.fold((f64::INFINITY, 0f64), |(l, h), y| (l.min(y), h.max(y)));
        let (y0, y1) = if lo.is_finite() {
            (lo / 1.2, (hi * 1.2).max(lo * 2.0))
        } else {
            (y0.max(1e-6), y1.max(1e-5))
        };
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(panel.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .x_label_formatter(&tick)
            .y_label_formatter(&tick);
        if !text {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(err)?;
        draw_series(&mut chart, panel, text)
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(panel.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .x_label_formatter(&tick)
            .y_label_formatter(&tick);
        if !text {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(err)?;
        draw_series(&mut chart, panel, text)
    }
}

/// Tick labels: whole numbers without decimals, others with up to 3 significant decimals.
fn tick(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').to_string()
    }
}

fn draw_series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    panel: &Panel,
    text: bool,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for s in &panel.series {
        if let Some(band) = &s.band {
            let mut polygon: Vec<(f64, f64)> = band.iter().map(|&(x, lo, _)| (x, lo)).collect();
            polygon.extend(band.iter().rev().map(|&(x, _, hi)| (x, hi)));
            chart
                .draw_series(std::iter::once(Polygon::new(polygon, s.color.mix(0.15))))
                .map_err(err)?;
        }
        let style = s.color.stroke_width(2);
        let drawn = if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(s.points.iter().copied(), 6, 4, style))
                .map_err(err)?
        } else if s.points.len() == 1 {
            chart
                .draw_series(std::iter::once(Circle::new(
                    s.points[0],
                    4,
                    s.color.filled(),
                )))
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(err)?
        };
        if text {
            let color = s.color;
            drawn.label(s.name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Draws `text` at a pixel position, if a font is available.
pub fn label<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    at: (i32, i32),
    size: u32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    if fonts_ready() {
        area.draw(&Text::new(text.to_string(), at, ("sans-serif", size)))
            .map_err(err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reproducible initialisation

/// Re-initialises every variable of `varmap` from `seed` (candle's CPU generator cannot be
/// seeded): weights Kaiming-normal (std √(2 / fan_in)), biases uniform in ±1/√fan_in, as
/// candle-nn's `linear` and `conv2d` do. Variables are visited in name order.
pub fn seeded_init(varmap: &candle_nn::VarMap, seed: u64) -> Result<()> {
    use rand::{Rng, SeedableRng};
    let data = varmap.data().lock().map_err(err)?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = match name.strip_suffix("bias") {
            Some(prefix) => {
                let fan_in = data
                    .get(&format!("{prefix}weight"))
                    .map(|w| w.dims()[1..].iter().product::<usize>())
                    .unwrap_or(n)
                    .max(1);
                let bound = 1.0 / (fan_in as f32).sqrt();
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            }
            None => {
                let fan_in = dims
                    .get(1..)
                    .map(|d| d.iter().product::<usize>())
                    .unwrap_or(1);
                let std = (2.0 / fan_in.max(1) as f32).sqrt();
                (0..n)
                    .map(|_| std * rng.sample::<f32, _>(rand_distr::StandardNormal))
                    .collect()
            }
        };
        var.set(&candle_core::Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// Runs candle's CPU kernels and the solvers on one thread unless `RAYON_NUM_THREADS` says
/// otherwise. The examples' tensors are small: candle's worker pool spin-waits at every
/// operation, which costs more than a second core gains (3× slower on a busy 2-core machine).
/// Call first thing in `main`, before any thread exists.
pub fn default_to_one_thread() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: called at the start of `main`, before any other thread is spawned, so no
        // thread can be reading the environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

// ---------------------------------------------------------------------------------------------
// The estimators compared by the top-k examples (subset_selection, discrete_vae)

/// I-MLE with Sum-of-Gamma or Gumbel noise, or the straight-through baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Sog,
    Gumbel,
    StraightThrough,
}

impl Method {
    fn parse(name: &str) -> Option<Method> {
        match name.trim() {
            "sog" | "imle" => Some(Method::Sog),
            "gumbel" => Some(Method::Gumbel),
            "ste" | "straight-through" => Some(Method::StraightThrough),
            _ => None,
        }
    }

    /// The `--methods` list (comma-separated), or all three (only SoG with `--quick`).
    pub fn from_cli(cli: &Cli) -> std::result::Result<Vec<Method>, String> {
        match cli.get_str("--methods") {
            None if cli.quick => Ok(vec![Method::Sog]),
            None => Ok(vec![Method::Sog, Method::Gumbel, Method::StraightThrough]),
            Some(list) => list
                .split(',')
                .map(|m| Method::parse(m).ok_or_else(|| format!("unknown method {m:?}")))
                .collect(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Sog => "I-MLE SoG",
            Method::Gumbel => "I-MLE Gumbel",
            Method::StraightThrough => "straight-through",
        }
    }

    /// The layer's noise for subsets of size `k` (straight-through samples with SoG too).
    pub fn noise(self, k: usize) -> imle::Noise {
        match self {
            Method::Gumbel => imle::Noise::Gumbel,
            Method::Sog | Method::StraightThrough => imle::Noise::SumOfGamma {
                k: k as f32,
                terms: 10,
            },
        }
    }
}
