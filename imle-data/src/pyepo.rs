//! PyEPO's synthetic data and its regret metric: [`PyEpoData`] (features, costs, and
//! optionally true solutions and objectives, in PyEPO's layout), the generators
//! [`shortest_path_data`] and [`knapsack_data`] (PyEPO's `shortestpath.genData` and
//! `knapsack.genData`), and [`regret`] / [`normalized_regret`] (PyEPO's `metric.regret`).
//!
//! The generators follow PyEPO's formulas and draw order, but with this crate's random
//! generator (`rand`'s `StdRng`, seeded with `seed_from_u64`): NumPy's `RandomState` bit
//! stream is not reproduced, so the same seed gives other numbers than PyEPO does (with the
//! same distribution). The stream is fixed for a given `rand` version; `StdRng` does not
//! promise the same numbers across `rand` releases.
//!
//! ```
//! use imle_data::{normalized_regret, shortest_path_data};
//! use imle_runtime::Sense;
//! // PyEPO's 5×5 benchmark: 40 arc costs per instance, in DigraphShortestPath::grid's order.
//! let data = shortest_path_data(100, 5, (5, 5), 4, 0.5, 135)?;
//! assert_eq!((data.x.dims(), data.c.dims()), (&[100, 5][..], &[100, 40][..]));
//! data.check_arc_costs(imle_runtime::DigraphShortestPath::grid(5, 5)?.arcs().len())?;
//! // Choosing the true solution has zero regret.
//! let w = data.c.ge(0.0)?.to_dtype(candle_core::DType::F32)?; // any 0/1 "solution"
//! assert_eq!(normalized_regret(&data.c, &w, &w, Sense::Minimize)?, 0.0);
//! # Ok::<(), candle_core::Error>(())
//! ```

use super::{data_error, read_table};
use candle_core::{DType, Device, Error, Result, Tensor};
use imle_runtime::Sense;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;
use std::path::{Path, PathBuf};

/// Features, costs and (optionally) true solutions and objectives of `N` instances, PyEPO's
/// layout (its `optDataset` holds the same four arrays).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use imle_data::PyEpoData;
/// let x = Tensor::new(&[[0.5f32, 1.0], [2.0, -1.0]], &Device::Cpu)?;
/// let c = Tensor::new(&[[1f32, 2.0, 3.0], [3.0, 1.0, 2.0]], &Device::Cpu)?;
/// let w = Tensor::new(&[[1f32, 0.0, 0.0], [0.0, 1.0, 0.0]], &Device::Cpu)?;
/// let z = Tensor::new(&[1f32, 1.0], &Device::Cpu)?;
/// let data = PyEpoData::new(x, c, Some(w), Some(z))?;
/// assert_eq!(data.len(), 2);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PyEpoData {
    /// The features, `[N, p]` f32.
    pub x: Tensor,
    /// The true costs, `[N, d]` f32 (finite).
    pub c: Tensor,
    /// The true optimal solutions, `[N, d]` f32, when the data set has them.
    pub w: Option<Tensor>,
    /// The true optimal objectives `c_i·w_i`, `[N]` f32, when the data set has them.
    pub z: Option<Tensor>,
}

/// Relative tolerance of the check `z_i = c_i·w_i` in [`PyEpoData::new`]: solvers stop at
/// relative gaps of about 1e-6 and the arrays are f32 (about 6e-8 relative per entry).
const OBJECTIVE_RTOL: f64 = 1e-4;

impl PyEpoData {
    /// Checks and assembles a data set: `x` is `[N, p]`, `c` is `[N, d]`, `w` (when given)
    /// `[N, d]` and `z` (when given) `[N]` or `[N, 1]` (PyEPO's `optDataset` keeps `z` as
    /// `[N, 1]`); `N` must agree. Any float or integer dtype is converted to f32. `x`, `c`,
    /// `w` and `z` must be finite. When both `w` and `z` are given, every `z_i` must equal
    /// `c_i·w_i` within `1e-4·max(1, Σ_j |c_ij·w_ij|)` (f32 data, solver tolerances); the
    /// error names the first instance that does not, and how many do not. `N = 0` is allowed.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_data::PyEpoData;
    /// let x = Tensor::zeros((2, 3), candle_core::DType::F64, &Device::Cpu)?;
    /// let c = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu)?;
    /// let w = Tensor::new(&[[1f32, 0.0], [1.0, 0.0]], &Device::Cpu)?;
    /// let z = Tensor::new(&[[1f32], [4.0]], &Device::Cpu)?; // instance 1: c·w = 3
    /// let err = PyEpoData::new(x, c, Some(w), Some(z)).unwrap_err().to_string();
    /// assert!(err.contains("instance 1"), "{err}");
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn new(x: Tensor, c: Tensor, w: Option<Tensor>, z: Option<Tensor>) -> Result<Self> {
        let x = x.to_dtype(DType::F32)?;
        let c = c.to_dtype(DType::F32)?;
        let [n, p] = *x.dims() else {
            return Err(Error::Msg(format!(
                "x (features) must be [N, p]; got shape {:?}",
                x.dims()
            )));
        };
        let [cn, d] = *c.dims() else {
            return Err(Error::Msg(format!(
                "c (costs) must be [N, d]; got shape {:?}",
                c.dims()
            )));
        };
        if cn != n {
            return Err(Error::Msg(format!(
                "{n} feature rows (x) but {cn} cost rows (c): they must match"
            )));
        }
        check_finite("x (features)", &x, p)?;
        let c_values = check_finite("c (costs)", &c, d)?;
        let w = match w {
            None => None,
            Some(w) => {
                let w = w.to_dtype(DType::F32)?;
                if w.dims() != [n, d] {
                    return Err(Error::Msg(format!(
                        "w (true solutions) has shape {:?}, c (costs) {:?}: they must match",
                        w.dims(),
                        c.dims()
                    )));
                }
                Some(w)
            }
        };
        let z = match z {
            None => None,
            Some(z) => {
                let z = z.to_dtype(DType::F32)?;
                let z = match *z.dims() {
                    [m] | [m, 1] if m == n => z.reshape(n)?,
                    _ => {
                        return Err(Error::Msg(format!(
                            "z (true objectives) must be [N] or [N, 1] with N = {n}; got shape \
                             {:?}",
                            z.dims()
                        )));
                    }
                };
                Some(z)
            }
        };
        let w_values = match &w {
            Some(w) => Some(check_finite("w (true solutions)", w, d)?),
            None => None,
        };
        let z_values = match &z {
            Some(z) => Some(check_finite("z (true objectives)", z, 1)?),
            None => None,
        };
        if let (Some(w), Some(z)) = (w_values, z_values) {
            let mut bad = Vec::new();
            for (i, &zi) in z.iter().enumerate() {
                let row = i * d..(i + 1) * d;
                let (dot, scale) = c_values[row.clone()].iter().zip(&w[row]).fold(
                    (0f64, 0f64),
                    |(s, a), (&c, &w)| {
                        let t = c as f64 * w as f64;
                        (s + t, a + t.abs())
                    },
                );
                let tol = OBJECTIVE_RTOL * scale.max(1.0);
                if (zi as f64 - dot).abs() > tol {
                    bad.push((i, zi, dot, tol));
                }
            }
            if let Some(&(i, zi, dot, tol)) = bad.first() {
                return Err(Error::Msg(format!(
                    "z (true objectives) disagrees with c·w at instance {i}: z = {zi}, c·w = \
                     {dot} (tolerance {tol:.3e}); {} of {n} instances disagree: are w and z \
                     from the same split and in the same order as c?",
                    bad.len()
                )));
            }
        }
        Ok(PyEpoData { x, c, w, z })
    }

    /// The number of instances `N`.
    ///
    /// ```
    /// let data = imle_data::shortest_path_data(3, 2, (2, 2), 1, 0.0, 0)?;
    /// assert_eq!(data.len(), 3);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.c.dims()[0]
    }

    /// Whether there are no instances.
    ///
    /// ```
    /// let data = imle_data::shortest_path_data(3, 2, (2, 2), 1, 0.0, 0)?;
    /// assert!(!data.is_empty());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `{dir}/x_{split}.npy`, `c_{split}.npy` and, when present, `w_{split}.npy` and
    /// `z_{split}.npy`, each as `.npy` or, when that file is absent, as `.csv` of the same
    /// name (the first that exists; `.npy` files f32 or f64 or any dtype [`read_npy`] reads,
    /// CSV tables as [`read_csv`] reads them, a pandas header or index column included), and
    /// checks them with [`PyEpoData::new`]. PyEPO has no file format of its own: these are the
    /// names to give `np.save` / `DataFrame.to_csv`. A missing `x` or `c` is an error naming
    /// both files looked for. For `z` as CSV, give its column a name
    /// (`DataFrame(z).to_csv(path, index=False, header=["z"])`) or use `np.save`: a one-column
    /// table under pandas' default header `0` is ambiguous and refused (see
    /// [`CsvOptions::header`](super::CsvOptions::header)).
    ///
    /// [`read_npy`]: super::read_npy
    /// [`read_csv`]: super::read_csv
    ///
    /// ```
    /// use imle_data::{PyEpoData, shortest_path_data};
    /// let dir = std::env::temp_dir().join(format!("imle-pyepo-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let data = shortest_path_data(4, 3, (3, 3), 2, 0.0, 7)?;
    /// data.x.to_dtype(candle_core::DType::F64)?.write_npy(dir.join("x_train.npy"))?;
    /// // c as pandas writes it: DataFrame(c).to_csv("c_train.csv", index=False).
    /// let rows: Vec<Vec<f32>> = data.c.to_vec2()?;
    /// let mut csv = (0..12).map(|j| j.to_string()).collect::<Vec<_>>().join(",") + "\n";
    /// for r in &rows {
    ///     csv += &(r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",") + "\n");
    /// }
    /// std::fs::write(dir.join("c_train.csv"), csv)?;
    /// let read = PyEpoData::read(&dir, "train")?;
    /// assert_eq!(read.c.to_vec2::<f32>()?, rows);
    /// assert!(read.w.is_none() && read.z.is_none());
    /// let err = PyEpoData::read(&dir, "test").unwrap_err().to_string();
    /// assert!(err.contains("x_test.npy") && err.contains("x_test.csv"), "{err}");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(dir: impl AsRef<Path>, split: &str) -> Result<Self> {
        let dir = dir.as_ref();
        let find = |name: &str| -> Option<PathBuf> {
            ["npy", "csv"]
                .iter()
                .map(|ext| dir.join(format!("{name}_{split}.{ext}")))
                .find(|p| p.is_file())
        };
        let required = |name: &str, what: &str| -> Result<(Tensor, PathBuf)> {
            let path = find(name).ok_or_else(|| {
                data_error(
                    dir,
                    format!(
                        "no such file: {name}_{split}.npy (nor {name}_{split}.csv), the {what}"
                    ),
                )
            })?;
            Ok((read_table(&path)?, path))
        };
        let (x, x_path) = required("x", "features")?;
        let (c, c_path) = required("c", "costs")?;
        let mut files = vec![x_path, c_path];
        let mut optional = |name: &str| -> Result<Option<Tensor>> {
            match find(name) {
                None => Ok(None),
                Some(path) => {
                    let t = read_table(&path)?;
                    files.push(path);
                    Ok(Some(t))
                }
            }
        };
        let w = optional("w")?;
        let z = optional("z")?;
        let names: Vec<String> = files
            .iter()
            .map(|p| {
                p.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            })
            .collect();
        Self::new(x, c, w, z).map_err(|e| data_error(dir, format!("{}: {e}", names.join(", "))))
    }

    /// Errors unless the costs have one entry per arc (`d == arcs`), as PyEPO's shortest-path
    /// data does (`DigraphShortestPath::grid(rows, cols)` has PyEPO's arcs, in its order). The
    /// message says "arc costs" and, where `d` is the vertex count `k²` of the square grid
    /// with `arcs` arcs (or of any square grid), that the costs look like vertex costs (for
    /// `GridShortestPath`); where `d` is the arc count `2k(k − 1)` of a square grid, it says
    /// which.
    ///
    /// ```
    /// use candle_core::{DType, Device, Tensor};
    /// use imle_data::PyEpoData;
    /// let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
    /// let costs = |d: usize| Tensor::ones((2, d), DType::F32, &Device::Cpu);
    /// let vertex = PyEpoData::new(x.clone(), costs(25)?, None, None)?;
    /// let err = vertex.check_arc_costs(40).unwrap_err().to_string();
    /// assert!(err.contains("arc costs") && err.contains("vertex costs of a 5×5 grid"), "{err}");
    /// PyEpoData::new(x, costs(40)?, None, None)?.check_arc_costs(40)?;
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn check_arc_costs(&self, arcs: usize) -> Result<()> {
        let d = self.c.dims()[1];
        if d == arcs {
            return Ok(());
        }
        let mut message = format!(
            "{d} costs per instance, but the graph has {arcs} arcs: expected arc costs, one per \
             arc (PyEPO's shortest-path data; DigraphShortestPath::grid(rows, cols) has its arcs \
             in its order)"
        );
        if let Some(k) = exact_sqrt(d).filter(|&k| k >= 2) {
            message += &format!(
                "; {d} = {k}×{k}: these look like the vertex costs of a {k}×{k} grid \
                 (GridShortestPath's input, as in the Warcraft data; see ShortestPathData), \
                 whose network has {} arcs",
                square_grid_arcs(k)
            );
        } else if let Some(k) = (2..=d).find(|&k| square_grid_arcs(k) >= d)
            && square_grid_arcs(k) == d
        {
            message += &format!("; {d} is the arc count of a {k}×{k} grid: is the grid right?");
        }
        Err(Error::Msg(message))
    }
}

/// The number of arcs of PyEPO's `k × k` grid network, `2k(k − 1)`.
fn square_grid_arcs(k: usize) -> usize {
    2 * k * (k - 1)
}

/// `k` with `k² = d`, if any.
fn exact_sqrt(d: usize) -> Option<usize> {
    let k = (d as f64).sqrt().round() as usize;
    (k * k == d).then_some(k)
}

/// The values of `t` (rows of `width`), or an error naming the first that is not finite.
fn check_finite(what: &str, t: &Tensor, width: usize) -> Result<Vec<f32>> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::Msg(format!(
            "{what}: entry {} of instance {} is {}",
            bad % width.max(1),
            bad / width.max(1),
            values[bad]
        )));
    }
    Ok(values)
}

/// The random draws behind [`shortest_path_data`] and [`knapsack_data`], in the order they
/// are made from one `StdRng::seed_from_u64(seed)` (PyEPO's order):
///
/// 1. knapsack only: the item weights, `dim × m` integers uniform in `300..800` (row-major,
///    `rng.random_range(300..800)`), divided by 100;
/// 2. `B`, `d × p` (row-major), each entry `rng.random_bool(0.5)` as 0 or 1;
/// 3. `x`, `n × p` (row-major), each `StandardNormal` (f64);
/// 4. the noise `ε`, `n × d` (row-major), each `1 − w + 2w·u` with `u = rng.random::<f64>()`
///    in `[0, 1)`: drawn even when `w = 0` (then `ε = 1`), so that `B` and `x` do not depend
///    on the noise width.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Draws {
    /// Knapsack weights `[dim, m]` (empty for shortest path).
    pub(crate) weights: Vec<f64>,
    /// `B`, `[d, p]`, 0 or 1.
    pub(crate) b: Vec<f64>,
    /// `x`, `[n, p]`.
    pub(crate) x: Vec<f64>,
    /// `ε`, `[n, d]`.
    pub(crate) eps: Vec<f64>,
}

/// Makes the draws documented on [`Draws`]; `weights` is `Some((dim, m))` for knapsack.
pub(crate) fn draws(
    seed: u64,
    weights: Option<(usize, usize)>,
    n: usize,
    p: usize,
    d: usize,
    noise_half_width: f64,
) -> Draws {
    let mut rng = StdRng::seed_from_u64(seed);
    let weights = match weights {
        Some((dim, m)) => (0..dim * m)
            .map(|_| rng.random_range(300u32..800) as f64 / 100.0)
            .collect(),
        None => Vec::new(),
    };
    let b = (0..d * p)
        .map(|_| if rng.random_bool(0.5) { 1.0 } else { 0.0 })
        .collect();
    let x = (0..n * p).map(|_| rng.sample(StandardNormal)).collect();
    let eps = (0..n * d)
        .map(|_| 1.0 - noise_half_width + 2.0 * noise_half_width * rng.random::<f64>())
        .collect();
    Draws { weights, b, x, eps }
}

/// `((x_i·B_jᵀ/√p + 3)^deg + 1)·scale/3.5^deg · ε_ij`, `[n, d]` in f64 (PyEPO's cost map).
fn cost_map(draws: &Draws, n: usize, p: usize, d: usize, deg: u32, scale: f64) -> Vec<f64> {
    let root_p = (p as f64).sqrt();
    let denominator = 3.5f64.powi(deg as i32);
    let mut c = Vec::with_capacity(n * d);
    for i in 0..n {
        let xi = &draws.x[i * p..(i + 1) * p];
        for j in 0..d {
            let bj = &draws.b[j * p..(j + 1) * p];
            let s: f64 = xi.iter().zip(bj).map(|(x, b)| x * b).sum::<f64>() / root_p;
            c.push(((s + 3.0).powi(deg as i32) + 1.0) * scale / denominator * draws.eps[i * d + j]);
        }
    }
    c
}

/// Checks the arguments the two generators share.
fn check_generator(what: &str, n: usize, p: usize, deg: u32, noise_half_width: f32) -> Result<()> {
    let problem = if n == 0 {
        "n = 0 instances".to_string()
    } else if p == 0 {
        "p = 0 features".to_string()
    } else if deg == 0 || deg > i32::MAX as u32 {
        format!("deg = {deg}: the degree must be a positive integer (PyEPO: `deg` positive)")
    } else if !noise_half_width.is_finite() || noise_half_width < 0.0 {
        format!("noise_half_width = {noise_half_width}: it must be finite and >= 0")
    } else {
        return Ok(());
    };
    Err(Error::Msg(format!("{what}: {problem}")))
}

/// `[rows, cols]` f32 from f64 values.
fn f32_tensor(values: &[f64], rows: usize, cols: usize) -> Result<Tensor> {
    let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_vec(v, (rows, cols), &Device::Cpu)
}

/// PyEPO's `shortestpath.genData(n, p, grid, deg, noise_width, seed)`: synthetic features and
/// arc costs of the `rows × cols` grid network.
///
/// `B ~ Bernoulli(0.5)` of shape `[d, p]` is drawn first, then `x ~ N(0, I_p)` `[n, p]`, then
/// the noise; `c_ij = ((x_i·B_jᵀ/√p + 3)^deg + 1) / 3.5^deg · ε_ij` with
/// `ε_ij ~ U[1 − w, 1 + w]` (`w = noise_half_width`), computed in f64 and returned as f32.
/// `d = (rows − 1)·cols + (cols − 1)·rows` arcs, in `DigraphShortestPath::grid(rows, cols)`'s
/// order (PyEPO's). Without noise, `E[c_ij] = (E[(s + 3)^deg] + 1)/3.5^deg` with
/// `s ~ N(0, ‖B_j‖²/p)`: `4/3.5` at `deg = 1`. With noise and `deg = 1` a few costs can be
/// negative, as in PyEPO. `w` and `z` are `None` (solve for them, e.g. with
/// `DigraphShortestPath`).
///
/// Seeded with `rand`'s `StdRng` (`seed_from_u64(seed)`), not NumPy's `RandomState`: the
/// numbers differ from PyEPO's for the same seed; the draw order is PyEPO's. `B` and `x`
/// depend only on `(seed, n, p, grid)`, not on `deg` or the noise width.
///
/// Errors: `n`, `p` or `deg` of 0, a grid without arcs (a 0 or 1×1), a negative or
/// non-finite `noise_half_width` (PyEPO allows any width; widths above 1 make some costs
/// negative).
///
/// ```
/// let data = imle_data::shortest_path_data(1000, 5, (5, 5), 1, 0.0, 135)?;
/// assert_eq!(data.c.dims(), &[1000, 40]);
/// let mean = data.c.mean_all()?.to_scalar::<f32>()?;
/// assert!((mean - 4.0 / 3.5).abs() < 0.02, "{mean}");
/// assert!(imle_data::shortest_path_data(10, 5, (1, 1), 1, 0.0, 0).is_err());
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn shortest_path_data(
    n: usize,
    p: usize,
    grid: (usize, usize),
    deg: u32,
    noise_half_width: f32,
    seed: u64,
) -> Result<PyEpoData> {
    check_generator("shortest_path_data", n, p, deg, noise_half_width)?;
    let (rows, cols) = grid;
    if rows == 0 || cols == 0 || rows * cols < 2 {
        return Err(Error::Msg(format!(
            "shortest_path_data: a {rows}×{cols} grid has no arcs (it needs at least 2 nodes)"
        )));
    }
    let d = (rows - 1) * cols + (cols - 1) * rows;
    let draws = draws(seed, None, n, p, d, noise_half_width as f64);
    let c = cost_map(&draws, n, p, d, deg, 1.0);
    PyEpoData::new(
        f32_tensor(&draws.x, n, p)?,
        f32_tensor(&c, n, d)?,
        None,
        None,
    )
}

/// PyEPO's `knapsack.genData(n, p, items, dim, deg, noise_width, seed)`: item weights and
/// synthetic features and item values of a `dim`-dimensional knapsack with `m = items`
/// items. Returns `(weights [dim, m], data)`.
///
/// Drawn in PyEPO's order: the weights, `choice(range(300, 800)) / 100` (so in
/// `{3.00, 3.01, …, 7.99}`, the same for every instance); `B ~ Bernoulli(0.5)` `[m, p]`;
/// `x ~ N(0, 1)` `[n, p]`; the noise. The values are
/// `c_ij = ⌈((x_i·B_jᵀ/√p + 3)^deg + 1)·5/3.5^deg · ε_ij⌉` with `ε_ij ~ U[1 − w, 1 + w]`
/// (computed in f64, the ceiling taken in f64, returned as f32 integers). The capacities are
/// not generated (PyEPO's knapsack model takes them separately; its examples use
/// `0.5·Σ_j weights_kj` per dimension). It is a maximisation problem: use
/// [`Sense::Maximize`] in [`regret`].
///
/// Seeded with `rand`'s `StdRng`, not NumPy's `RandomState`: see [`shortest_path_data`].
///
/// Errors: `n`, `p`, `items`, `dim` or `deg` of 0, a negative or non-finite
/// `noise_half_width`.
///
/// ```
/// let (weights, data) = imle_data::knapsack_data(100, 5, 32, 2, 2, 0.0, 135)?;
/// assert_eq!((weights.dims(), data.c.dims()), (&[2, 32][..], &[100, 32][..]));
/// let c = data.c.flatten_all()?.to_vec1::<f32>()?;
/// assert!(c.iter().all(|&v| v >= 1.0 && v.fract() == 0.0));
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn knapsack_data(
    n: usize,
    p: usize,
    items: usize,
    dim: usize,
    deg: u32,
    noise_half_width: f32,
    seed: u64,
) -> Result<(Tensor, PyEpoData)> {
    check_generator("knapsack_data", n, p, deg, noise_half_width)?;
    if items == 0 || dim == 0 {
        return Err(Error::Msg(format!(
            "knapsack_data: items = {items}, dim = {dim}: both must be positive"
        )));
    }
    let draws = draws(
        seed,
        Some((dim, items)),
        n,
        p,
        items,
        noise_half_width as f64,
    );
    let c: Vec<f64> = cost_map(&draws, n, p, items, deg, 5.0)
        .into_iter()
        .map(f64::ceil)
        .collect();
    let data = PyEpoData::new(
        f32_tensor(&draws.x, n, p)?,
        f32_tensor(&c, n, items)?,
        None,
        None,
    )?;
    Ok((f32_tensor(&draws.weights, dim, items)?, data))
}

/// `c_i·chosen_i` and `c_i·optimal_i` per instance, in f64, after checking the shapes.
fn objectives(c: &Tensor, chosen: &Tensor, optimal: &Tensor) -> Result<(Tensor, Tensor)> {
    let ([_, _], true, true) = (
        c.dims(),
        chosen.dims() == c.dims(),
        optimal.dims() == c.dims(),
    ) else {
        return Err(Error::Msg(format!(
            "regret: c {:?}, chosen {:?} and optimal {:?} must all be [N, d]",
            c.dims(),
            chosen.dims(),
            optimal.dims()
        )));
    };
    let c = c.to_dtype(DType::F64)?;
    let dot = |w: &Tensor| (&c * w.to_dtype(DType::F64)?)?.sum(1);
    Ok((dot(chosen)?, dot(optimal)?))
}

/// Per-instance regret: `c_i·chosen_i − c_i·optimal_i` for [`Sense::Minimize`],
/// `c_i·optimal_i − c_i·chosen_i` for [`Sense::Maximize`], `[N]` f32 (summed in f64). It is
/// `≥ 0` when `optimal_i` is optimal for `c_i` (PyEPO's `calRegret`, per instance). `c`,
/// `chosen` (the solutions for the predicted costs) and `optimal` (the true solutions
/// `w*`) are `[N, d]`, any float dtype, on one device; the result is on that device.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use imle_data::regret;
/// use imle_runtime::Sense;
/// let c = Tensor::new(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &Device::Cpu)?;
/// let best = Tensor::new(&[[1f32, 0.0, 0.0], [1.0, 0.0, 0.0]], &Device::Cpu)?; // argmin
/// let chosen = Tensor::new(&[[0f32, 1.0, 0.0], [1.0, 0.0, 0.0]], &Device::Cpu)?;
/// assert_eq!(regret(&c, &chosen, &best, Sense::Minimize)?.to_vec1::<f32>()?, [1.0, 0.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn regret(c: &Tensor, chosen: &Tensor, optimal: &Tensor, sense: Sense) -> Result<Tensor> {
    let (obj, best) = objectives(c, chosen, optimal)?;
    let r = match sense {
        Sense::Minimize => (obj - best)?,
        Sense::Maximize => (best - obj)?,
    };
    r.to_dtype(DType::F32)
}

/// PyEPO's normalized regret (`pyepo.metric.regret`): `Σ_i regret_i / Σ_i |c_i·optimal_i|`
/// with [`regret`]'s per-instance regret, summed in f64. Errors when `Σ_i |c_i·optimal_i| = 0`
/// (PyEPO adds a small epsilon to the denominator instead), and on [`regret`]'s shape errors.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use imle_data::normalized_regret;
/// use imle_runtime::Sense;
/// let c = Tensor::new(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &Device::Cpu)?;
/// let best = Tensor::new(&[[1f32, 0.0, 0.0], [1.0, 0.0, 0.0]], &Device::Cpu)?;
/// let chosen = Tensor::new(&[[0f32, 1.0, 0.0], [1.0, 0.0, 0.0]], &Device::Cpu)?;
/// // (1 + 0) / (|1| + |4|)
/// assert_eq!(normalized_regret(&c, &chosen, &best, Sense::Minimize)?, 0.2);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn normalized_regret(
    c: &Tensor,
    chosen: &Tensor,
    optimal: &Tensor,
    sense: Sense,
) -> Result<f32> {
    let (obj, best) = objectives(c, chosen, optimal)?;
    let total = (&obj - &best)?.sum_all()?.to_scalar::<f64>()? * -(sense.sign() as f64);
    let scale = best.abs()?.sum_all()?.to_scalar::<f64>()?;
    if scale == 0.0 {
        return Err(Error::Msg(
            "normalized regret: Σ_i |c_i·optimal_i| = 0 (every optimal objective is 0), so \
             the ratio is undefined; use the per-instance regret"
                .into(),
        ));
    }
    Ok((total / scale) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    /// Sample mean, variance (divided by n) and fourth central moment of `v`.
    fn moments(v: &[f64]) -> (f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        (mean, var, m4)
    }

    /// Column `j` of a row-major `[n, d]` f32 tensor, as f64.
    fn column(t: &Tensor, j: usize) -> Vec<f64> {
        let d = t.dims()[1];
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.iter().skip(j).step_by(d).map(|&x| x as f64).collect()
    }

    /// Checks, per arc `j`, the sample mean and variance of `c_·j` against `E[c_j]` and
    /// `Var[c_j]` (given `B`), each within 5 standard errors:
    ///
    /// * the mean's standard error is `√(Var[c_j]/n)` (exact for i.i.d. rows);
    /// * the sample variance `s² = Σ(c − c̄)²/n` has variance `(μ₄ − σ⁴)/n + O(1/n²)`, with
    ///   `μ₄` the fourth central moment; `μ₄` is estimated from the sample (the standard
    ///   large-sample error, valid for the non-Gaussian noisy case too), and the bias of
    ///   `s²`, `−σ²/n`, is far below it.
    ///
    /// `1e-6` absolute slack covers f32 rounding of the stored costs (a constant column,
    /// `‖B_j‖ = 0`, has zero variance). With 2·d checks at 5 SE the chance of a false alarm
    /// is about `2d · 6e-7`; the seed is fixed anyway.
    fn check_moments(c: &Tensor, expect: impl Fn(usize) -> (f64, f64)) {
        let (n, d) = c.dims2().unwrap();
        for j in 0..d {
            let (mean, var, m4) = moments(&column(c, j));
            let (e_mean, e_var) = expect(j);
            let se_mean = (e_var / n as f64).sqrt();
            let se_var = ((m4 - var * var).max(0.0) / n as f64).sqrt();
            assert!(
                (mean - e_mean).abs() <= 5.0 * se_mean + 1e-6,
                "arc {j}: mean {mean}, expected {e_mean} ± {se_mean}"
            );
            assert!(
                (var - e_var).abs() <= 5.0 * se_var + 1e-6,
                "arc {j}: variance {var}, expected {e_var} ± {se_var}"
            );
        }
    }

    /// `‖B_j‖²/p` (the variance of `s_j = x·B_jᵀ/√p`) for each arc, from the draws.
    fn s_variances(seed: u64, n: usize, p: usize, d: usize) -> Vec<f64> {
        let b = draws(seed, None, n, p, d, 0.0).b;
        (0..d)
            .map(|j| b[j * p..(j + 1) * p].iter().sum::<f64>() / p as f64)
            .collect()
    }

    #[test]
    fn shortest_path_moments_deg1_without_noise() -> Result<()> {
        // c_j = (s_j + 4)/3.5 with s_j ~ N(0, ‖B_j‖²/p): E = 4/3.5, Var = (‖B_j‖²/p)/3.5².
        let (n, p, seed) = (20_000, 5, 11);
        let data = shortest_path_data(n, p, (5, 5), 1, 0.0, seed)?;
        let sv = s_variances(seed, n, p, 40);
        // Both values of ‖B_j‖ occur, including (with p = 5) a spread of them.
        assert!(sv.iter().any(|&v| v >= 0.6) && sv.iter().any(|&v| v <= 0.4));
        check_moments(&data.c, |j| (4.0 / 3.5, sv[j] / 3.5f64.powi(2)));
        Ok(())
    }

    #[test]
    fn shortest_path_moments_deg1_with_noise() -> Result<()> {
        // c = c₀·ε with ε ~ U[1 − w, 1 + w] independent of c₀: E[ε] = 1, Var[ε] = (2w)²/12 =
        // w²/3. E[c] = E[c₀] = μ; Var[c] = E[c₀²]E[ε²] − μ² = (σ² + μ²)(1 + w²/3) − μ²
        // = σ²(1 + w²/3) + μ²w²/3.
        let (n, p, seed, w) = (20_000, 5, 12, 0.5f64);
        let data = shortest_path_data(n, p, (5, 5), 1, w as f32, seed)?;
        let sv = s_variances(seed, n, p, 40);
        let mu = 4.0 / 3.5;
        check_moments(&data.c, |j| {
            let sigma2 = sv[j] / 3.5f64.powi(2);
            (mu, sigma2 * (1.0 + w * w / 3.0) + mu * mu * w * w / 3.0)
        });
        // The noise only rescales: x and B are those of the noiseless data set.
        let plain = shortest_path_data(n, p, (5, 5), 1, 0.0, seed)?;
        assert_eq!(data.x.to_vec2::<f32>()?, plain.x.to_vec2::<f32>()?);
        Ok(())
    }

    #[test]
    fn shortest_path_moments_deg2() -> Result<()> {
        // (s + 3)² = s² + 6s + 9 with s ~ N(0, v): E = v + 9, Var = Var[s²] + 36 Var[s]
        // (Cov[s², s] = E[s³] = 0) = 2v² + 36v. So E[c] = (v + 10)/3.5², Var[c] = (2v² + 36v)/3.5⁴.
        let (n, p, seed) = (20_000, 4, 13);
        let data = shortest_path_data(n, p, (3, 4), 2, 0.0, seed)?;
        assert_eq!(data.c.dims(), &[n, 17]);
        let sv = s_variances(seed, n, p, 17);
        check_moments(&data.c, |j| {
            let v = sv[j];
            (
                (v + 10.0) / 3.5f64.powi(2),
                (2.0 * v * v + 36.0 * v) / 3.5f64.powi(4),
            )
        });
        Ok(())
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // indices mirror the formula's subscripts
    fn shortest_path_equals_the_formula_on_its_draws() -> Result<()> {
        // Recomputes c from the documented draws by PyEPO's formula, in f64, independently of
        // cost_map, for a noisy deg-3 data set.
        let (n, p, grid, deg, w, seed) = (50, 3, (2, 3), 3, 0.3, 99);
        let data = shortest_path_data(n, p, grid, deg, w as f32, seed)?;
        let d = 7;
        let dr = draws(seed, None, n, p, d, w);
        let c = data.c.to_vec2::<f32>()?;
        let x = data.x.to_vec2::<f32>()?;
        for i in 0..n {
            for k in 0..p {
                assert_eq!(x[i][k], dr.x[i * p + k] as f32);
            }
            for j in 0..d {
                let mut s = 0.0;
                for k in 0..p {
                    s += dr.x[i * p + k] * dr.b[j * p + k];
                }
                let s = s / (p as f64).sqrt();
                let e = ((s + 3.0).powi(3) + 1.0) / 3.5f64.powi(3) * dr.eps[i * d + j];
                assert!(
                    (c[i][j] as f64 - e).abs() <= 1e-6 * e.abs().max(1.0),
                    "{i} {j}: {} vs {e}",
                    c[i][j]
                );
                assert!((dr.eps[i * d + j] - 1.0).abs() <= w);
            }
        }
        Ok(())
    }

    #[test]
    fn shapes_seeds_and_errors() -> Result<()> {
        let a = shortest_path_data(10, 5, (5, 5), 4, 0.5, 135)?;
        assert_eq!((a.x.dims(), a.c.dims()), (&[10, 5][..], &[10, 40][..]));
        assert_eq!(
            a.c.dims()[1],
            imle_runtime::DigraphShortestPath::grid(5, 5)?.arcs().len()
        );
        assert_eq!(
            shortest_path_data(2, 1, (12, 12), 1, 0.0, 0)?.c.dims(),
            &[2, 264]
        );
        assert_eq!(
            shortest_path_data(2, 1, (1, 4), 1, 0.0, 0)?.c.dims(),
            &[2, 3]
        );
        let again = shortest_path_data(10, 5, (5, 5), 4, 0.5, 135)?;
        assert_eq!(a.c.to_vec2::<f32>()?, again.c.to_vec2::<f32>()?);
        assert_eq!(a.x.to_vec2::<f32>()?, again.x.to_vec2::<f32>()?);
        let other = shortest_path_data(10, 5, (5, 5), 4, 0.5, 136)?;
        assert_ne!(a.c.to_vec2::<f32>()?, other.c.to_vec2::<f32>()?);
        assert_ne!(a.x.to_vec2::<f32>()?, other.x.to_vec2::<f32>()?);
        let (wa, ka) = knapsack_data(10, 5, 8, 2, 1, 0.5, 1)?;
        let (wb, kb) = knapsack_data(10, 5, 8, 2, 1, 0.5, 1)?;
        let (wc, _) = knapsack_data(10, 5, 8, 2, 1, 0.5, 2)?;
        assert_eq!(wa.to_vec2::<f32>()?, wb.to_vec2::<f32>()?);
        assert_eq!(ka.c.to_vec2::<f32>()?, kb.c.to_vec2::<f32>()?);
        assert_ne!(wa.to_vec2::<f32>()?, wc.to_vec2::<f32>()?);

        let sp = |n, p, grid, deg, w: f32| {
            shortest_path_data(n, p, grid, deg, w, 0)
                .unwrap_err()
                .to_string()
        };
        assert!(sp(0, 5, (5, 5), 1, 0.0).contains("n = 0"));
        assert!(sp(5, 0, (5, 5), 1, 0.0).contains("p = 0"));
        assert!(sp(5, 5, (5, 5), 0, 0.0).contains("deg = 0"));
        assert!(sp(5, 5, (0, 5), 1, 0.0).contains("0×5 grid has no arcs"));
        assert!(sp(5, 5, (1, 1), 1, 0.0).contains("1×1 grid has no arcs"));
        assert!(sp(5, 5, (5, 5), 1, -0.1).contains("noise_half_width = -0.1"));
        assert!(sp(5, 5, (5, 5), 1, f32::NAN).contains("noise_half_width = NaN"));
        // PyEPO allows any width; so do we (some costs are then negative).
        assert!(shortest_path_data(5, 5, (5, 5), 1, 1.5, 0).is_ok());
        let ks = |items, dim| {
            knapsack_data(5, 5, items, dim, 1, 0.0, 0)
                .unwrap_err()
                .to_string()
        };
        assert!(ks(0, 1).contains("items = 0"));
        assert!(ks(3, 0).contains("dim = 0"));
        assert!(
            knapsack_data(5, 5, 3, 1, 0, 0.0, 0)
                .unwrap_err()
                .to_string()
                .contains("knapsack_data: deg = 0")
        );
        Ok(())
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // indices mirror the formula's subscripts
    fn knapsack_weights_values_and_formula() -> Result<()> {
        // Weights: uniform on {3.00, …, 7.99}: mean 5.495, variance ((500² − 1)/12)/100².
        let (n, p, m, dim, seed) = (200, 6, 500, 2, 5);
        let (weights, data) = knapsack_data(n, p, m, dim, 1, 0.0, seed)?;
        assert_eq!(weights.dims(), &[dim, m]);
        let wv: Vec<f64> = weights
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .map(|&w| w as f64)
            .collect();
        for &w in &wv {
            let k = (w * 100.0).round();
            assert!(
                (300.0..=799.0).contains(&k) && (w * 100.0 - k).abs() < 1e-3,
                "{w}"
            );
        }
        let (mean, _, _) = moments(&wv);
        let se = ((250_000.0 - 1.0) / 12.0 / 1e4 / wv.len() as f64).sqrt();
        assert!((mean - 5.495).abs() <= 5.0 * se, "{mean} ± {se}");
        assert!(wv.iter().any(|&w| w < 3.1) && wv.iter().any(|&w| w > 7.9));

        // Values: ⌈((s + 3)^deg + 1)·5/3.5^deg · ε⌉ recomputed from the documented draws.
        let dr = draws(seed, Some((dim, m)), n, p, m, 0.0);
        assert_eq!(dr.weights.len(), dim * m);
        let c = data.c.to_vec2::<f32>()?;
        for i in 0..n {
            for j in 0..m {
                let s: f64 = (0..p)
                    .map(|k| dr.x[i * p + k] * dr.b[j * p + k])
                    .sum::<f64>()
                    / (p as f64).sqrt();
                let raw = (s + 3.0 + 1.0) * 5.0 / 3.5;
                assert_eq!(c[i][j] as f64, raw.ceil(), "{i} {j}: {raw}");
                assert!(c[i][j] as f64 - 1.0 < raw && raw <= c[i][j] as f64);
            }
        }
        // Even degrees make every value at least ⌈5/3.5²⌉ = 1 without noise.
        let (_, even) = knapsack_data(500, 3, 20, 1, 2, 0.0, 8)?;
        let ev = even.c.flatten_all()?.to_vec1::<f32>()?;
        assert!(ev.iter().all(|&v| v >= 1.0 && v.fract() == 0.0));
        // With noise, still integers.
        let (_, noisy) = knapsack_data(100, 3, 20, 1, 4, 0.5, 8)?;
        let nv = noisy.c.flatten_all()?.to_vec1::<f32>()?;
        assert!(nv.iter().all(|&v| v.fract() == 0.0));
        Ok(())
    }

    fn t2(rows: &[&[f32]]) -> Tensor {
        let d = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(flat, (rows.len(), d), &Device::Cpu).unwrap()
    }

    #[test]
    fn regret_by_hand_both_senses() -> Result<()> {
        let c = t2(&[&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]]);
        // Minimize: w* picks the cheapest entry (z* = 1, 4); the chosen solutions cost 2, 4.
        let best = t2(&[&[1.0, 0.0, 0.0], &[1.0, 0.0, 0.0]]);
        let chosen = t2(&[&[0.0, 1.0, 0.0], &[1.0, 0.0, 0.0]]);
        let r = regret(&c, &chosen, &best, Sense::Minimize)?;
        assert_eq!(r.to_vec1::<f32>()?, [1.0, 0.0]);
        // PyEPO: Σ(c·ŵ − z*) / Σ|z*| = (1 + 0) / (1 + 4).
        assert_eq!(normalized_regret(&c, &chosen, &best, Sense::Minimize)?, 0.2);
        // Maximize: w* picks the dearest (z* = 3, 6); the chosen earn 2, 6.
        let best = t2(&[&[0.0, 0.0, 1.0], &[0.0, 0.0, 1.0]]);
        let chosen = t2(&[&[0.0, 1.0, 0.0], &[0.0, 0.0, 1.0]]);
        let r = regret(&c, &chosen, &best, Sense::Maximize)?;
        assert_eq!(r.to_vec1::<f32>()?, [1.0, 0.0]);
        // (z* − c·ŵ) summed over (|3| + |6|).
        let nr = normalized_regret(&c, &chosen, &best, Sense::Maximize)?;
        assert!((nr - 1.0 / 9.0).abs() < 1e-7, "{nr}");
        // The other sense flips the sign.
        let flipped = regret(&c, &chosen, &best, Sense::Minimize)?;
        assert_eq!(flipped.to_vec1::<f32>()?, [-1.0, 0.0]);
        // Negative objectives count by absolute value: z* = −1, 3; regret 3, 0 → 3/4.
        let c = t2(&[&[-1.0, 2.0], &[3.0, 4.0]]);
        let best = t2(&[&[1.0, 0.0], &[1.0, 0.0]]);
        let chosen = t2(&[&[0.0, 1.0], &[1.0, 0.0]]);
        assert_eq!(
            regret(&c, &chosen, &best, Sense::Minimize)?.to_vec1::<f32>()?,
            [3.0, 0.0]
        );
        assert_eq!(
            normalized_regret(&c, &chosen, &best, Sense::Minimize)?,
            0.75
        );
        Ok(())
    }

    #[test]
    fn regret_errors() {
        let c = t2(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let short = t2(&[&[1.0, 0.0]]);
        let e = regret(&c, &short, &c, Sense::Minimize)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[2, 2]") && e.contains("[1, 2]"), "{e}");
        let flat = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        assert!(regret(&flat, &flat, &flat, Sense::Minimize).is_err());
        let zero = t2(&[&[0.0, 0.0], &[0.0, 0.0]]);
        let e = normalized_regret(&c, &c, &zero, Sense::Minimize)
            .unwrap_err()
            .to_string();
        assert!(e.contains("= 0"), "{e}");
    }

    fn write_csv(path: &Path, header: bool, rows: &[Vec<f32>]) {
        let mut text = String::new();
        if header {
            let d = rows[0].len();
            text += &(0..d).map(|j| j.to_string()).collect::<Vec<_>>().join(",");
            text.push('\n');
        }
        for r in rows {
            text += &r
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",");
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn read_npy_f64_and_pandas_csv_with_w_and_z() -> Result<()> {
        let dir = TempDir::new();
        let c = t2(&[&[1.0, 2.0, 3.0], &[3.0, 1.0, 2.0]]);
        let w = t2(&[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0]]);
        let x = t2(&[&[0.25, -1.0], &[2.0, 0.5]]);
        x.to_dtype(DType::F64)?.write_npy(dir.file("x_train.npy"))?;
        c.to_dtype(DType::F64)?.write_npy(dir.file("c_train.npy"))?;
        w.write_npy(dir.file("w_train.npy"))?;
        // z as [N, 1] f64, as PyEPO's optDataset keeps it.
        Tensor::new(&[[1f64], [1.0]], &Device::Cpu)?.write_npy(dir.file("z_train.npy"))?;
        let data = PyEpoData::read(&dir.0, "train")?;
        assert_eq!(data.x.dtype(), DType::F32);
        assert_eq!(data.x.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        assert_eq!(data.c.to_vec2::<f32>()?, c.to_vec2::<f32>()?);
        assert_eq!(data.w.unwrap().to_vec2::<f32>()?, w.to_vec2::<f32>()?);
        assert_eq!(data.z.unwrap().to_vec1::<f32>()?, [1.0, 1.0]);

        // The same as CSV: a pandas header (index=False) and one with pandas' index column.
        write_csv(&dir.file("x_val.csv"), true, &x.to_vec2::<f32>()?);
        let mut c_text = String::from(",0,1,2\n");
        for (i, r) in c.to_vec2::<f32>()?.iter().enumerate() {
            c_text += &format!("{i},{},{},{}\n", r[0], r[1], r[2]);
        }
        std::fs::write(dir.file("c_val.csv"), c_text).unwrap();
        write_csv(&dir.file("w_val.csv"), true, &w.to_vec2::<f32>()?);
        let data = PyEpoData::read(&dir.0, "val")?;
        assert_eq!(data.c.to_vec2::<f32>()?, c.to_vec2::<f32>()?);
        assert_eq!(data.x.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        assert!(data.w.is_some() && data.z.is_none());
        // .npy comes first where both exist.
        Tensor::new(&[[9f32, 9.0, 9.0], [9.0, 9.0, 9.0]], &Device::Cpu)?
            .write_npy(dir.file("c_val.npy"))?;
        assert_eq!(
            PyEpoData::read(&dir.0, "val")?.c.to_vec2::<f32>()?[0],
            [9.0; 3]
        );
        Ok(())
    }

    #[test]
    fn read_errors_name_files_and_problems() -> Result<()> {
        let dir = TempDir::new();
        let c = t2(&[&[1.0, 2.0], &[3.0, 4.0]]);
        c.write_npy(dir.file("c_train.npy"))?;
        let e = PyEpoData::read(&dir.0, "train").unwrap_err().to_string();
        assert!(
            e.contains("no such file: x_train.npy (nor x_train.csv), the features"),
            "{e}"
        );
        Tensor::zeros((3, 4), DType::F32, &Device::Cpu)?.write_npy(dir.file("x_train.npy"))?;
        let e = PyEpoData::read(&dir.0, "train").unwrap_err().to_string();
        assert!(
            e.contains("x_train.npy, c_train.npy") && e.contains("3 feature rows (x) but 2"),
            "{e}"
        );
        Tensor::zeros((2, 4), DType::F32, &Device::Cpu)?.write_npy(dir.file("x_train.npy"))?;
        // w and z that disagree: instance 1 has c·w = 3, z says 4.
        t2(&[&[1.0, 0.0], &[1.0, 0.0]]).write_npy(dir.file("w_train.npy"))?;
        Tensor::new(&[1f32, 4.0], &Device::Cpu)?.write_npy(dir.file("z_train.npy"))?;
        let e = PyEpoData::read(&dir.0, "train").unwrap_err().to_string();
        assert!(
            e.contains("z_train.npy")
                && e.contains("instance 1: z = 4, c·w = 3")
                && e.contains("1 of 2 instances disagree"),
            "{e}"
        );
        // Within the tolerance: a solver's 1e-6 relative error passes.
        Tensor::new(&[1.000001f32, 3.000003], &Device::Cpu)?.write_npy(dir.file("z_train.npy"))?;
        assert!(PyEpoData::read(&dir.0, "train").is_ok());
        // Wrong shapes of w and z.
        t2(&[&[1.0], &[1.0]]).write_npy(dir.file("w_train.npy"))?;
        let e = PyEpoData::read(&dir.0, "train").unwrap_err().to_string();
        assert!(e.contains("w (true solutions) has shape [2, 1]"), "{e}");
        std::fs::remove_file(dir.file("w_train.npy")).unwrap();
        Tensor::new(&[1f32, 3.0, 5.0], &Device::Cpu)?.write_npy(dir.file("z_train.npy"))?;
        let e = PyEpoData::read(&dir.0, "train").unwrap_err().to_string();
        assert!(
            e.contains("z (true objectives) must be [N] or [N, 1]"),
            "{e}"
        );
        // Non-finite costs name the instance.
        let x = Tensor::zeros((2, 1), DType::F32, &Device::Cpu)?;
        let e = PyEpoData::new(x.clone(), t2(&[&[1.0, 2.0], &[f32::NAN, 0.0]]), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 0 of instance 1 is NaN"), "{e}");
        let e = PyEpoData::new(x, Tensor::ones(2, DType::F32, &Device::Cpu)?, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("c (costs) must be [N, d]"), "{e}");
        Ok(())
    }

    #[test]
    fn arc_cost_check_names_vertex_costs() -> Result<()> {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let with = |d: usize| {
            PyEpoData::new(
                x.clone(),
                Tensor::ones((2, d), DType::F32, &Device::Cpu).unwrap(),
                None,
                None,
            )
            .unwrap()
        };
        with(40).check_arc_costs(40)?;
        // 5×5 vertex costs given to the 40-arc network.
        let e = with(25).check_arc_costs(40).unwrap_err().to_string();
        assert!(
            e.contains("25 costs per instance, but the graph has 40 arcs")
                && e.contains("arc costs")
                && e.contains("vertex costs of a 5×5 grid"),
            "{e}"
        );
        // 12×12 arc costs given to the 5×5 network: named as a 12×12 grid's arcs.
        let e = with(264).check_arc_costs(40).unwrap_err().to_string();
        assert!(e.contains("arc count of a 12×12 grid"), "{e}");
        let e = with(7).check_arc_costs(40).unwrap_err().to_string();
        assert!(e.contains("arc costs") && !e.contains("grid:"), "{e}");
        // The vertex-cost reader says the converse.
        let e = super::super::ShortestPathData::new(x.clone(), with(40).c, None, Some((5, 5)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PyEpoData") && e.contains("DigraphShortestPath::grid(5, 5)"));
        Ok(())
    }
}
