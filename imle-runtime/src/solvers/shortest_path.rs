//! Shortest path on a grid of vertex costs (the Warcraft maps of the I-MLE paper).

use crate::error::{input_error, solver_error};
use crate::solver::MapSolver;
use candle_core::Result;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Which cells are adjacent on the grid.
///
/// ```
/// use imle_runtime::{GridShortestPath, MapSolver, Neighbourhood};
/// let costs = [1.0, 5.0, 5.0, 1.0];
/// let (mut four, mut eight) = ([0.0; 4], [0.0; 4]);
/// GridShortestPath::new(Neighbourhood::Four).solve(&costs, &[2, 2], &mut four, &mut Default::default())?;
/// GridShortestPath::new(Neighbourhood::Eight).solve(&costs, &[2, 2], &mut eight, &mut Default::default())?;
/// assert_eq!((four.iter().sum::<f32>(), eight), (3.0, [1.0, 0.0, 0.0, 1.0])); // diagonal step
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Neighbourhood {
    /// Up, down, left, right.
    Four,
    /// The four plus the diagonals (the paper's setting).
    Eight,
}

/// What [`GridShortestPath`] (and [`DigraphShortestPath`](crate::DigraphShortestPath) on a
/// graph with a cycle) does with negative costs, which Dijkstra cannot take.
///
/// In training a layer never hands the solver θ itself but a perturbed copy: `θ − τ·ε` for
/// the forward sample and `α·θ + λ·g − τ'·ε` for the I-MLE target (with
/// [`Sense::Minimize`](crate::Sense::Minimize)). Noise is unbounded, so with any noise small
/// positive costs dip below 0 on the very first step (costs in [0, 0.05] with Sum-of-Gamma
/// noise do). Blackbox-backprop (Vlastelica et al., ICLR 2020), whose Warcraft shortest-path
/// setup the I-MLE paper uses, clamps the perturbed weights at 0 before running Dijkstra;
/// the default, [`ClampPerturbed`](NegativeCosts::ClampPerturbed), does the same, and still
/// reports negative costs in θ itself, the network's own prediction, which no noise explains
/// and which usually means the network's output needs a positive activation.
///
/// | variant | negative θ (layer input) | negative perturbed input | plain `solve` call |
/// |---|---|---|---|
/// | `ClampPerturbed` (default) | error | clamped to 0 | clamped to 0 |
/// | `ClampToZero` | clamped to 0 | clamped to 0 | clamped to 0 |
/// | `Error` | error | error | error |
///
/// The perturbed optimizer and SPO+ treat their input the same way: θ is the prediction
/// (`ĉ` for SPO+), and the perturbed input is `θ + σ·ε`, or SPO+'s `2ĉ − c`. Clamped, the
/// solver is not exact on that input, which SPO+ must be told
/// ([`SpoPlus::with_exact_solver`](crate::spo::SpoPlus::with_exact_solver)).
///
/// NaN and infinite costs are errors under every variant. Every error message names the
/// option that changes it. See [`GridShortestPath::with_negative_costs`] for examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NegativeCosts {
    /// The default: a negative cost in θ, the layer's input before noise, is an error (the
    /// layer checks it through [`MapSolver::check_theta`], in training and in
    /// [`map`](crate::ImleLayer::map)); a negative solver input, which then comes from the
    /// noise or the target's shift, is treated as 0, as blackbox-backprop does. A direct
    /// [`MapSolver::solve`] call cannot tell the two apart and clamps.
    #[default]
    ClampPerturbed,
    /// Treat every negative cost as 0, θ's included: for networks whose costs may be negative
    /// by design (blackbox-backprop's behaviour everywhere).
    ClampToZero,
    /// Every negative cost is an error, perturbed or not. Strict: with noise (or a large λ)
    /// training can stop on its first step; meant for solving known non-negative costs.
    Error,
}

/// `z = argmin ⟨z, c⟩` over paths from the top-left to the bottom-right cell of an `H × W`
/// grid, where a path's cost is the sum of the costs of the cells it visits (both ends
/// included) and `z` is the 0/1 mask of those cells. Dijkstra with a binary heap; use it with
/// [`Sense::Minimize`](crate::Sense::Minimize). Instances must be 2-D (`[H, W]`). Costs are
/// compared numerically (**−0.0 = +0.0**); ties between equal-cost paths are broken
/// deterministically (among cells at equal distance, the lower cell index settles first).
/// Negative costs, which noise makes in training, are clamped to 0 by default, while negative
/// costs in the layer's θ are reported: see [`NegativeCosts`].
///
/// ```
/// use imle_runtime::{GridShortestPath, MapSolver, Neighbourhood};
/// let solver = GridShortestPath::new(Neighbourhood::Four);
/// let costs = [1.0, 9.0, 9.0,
///              1.0, 9.0, 9.0,
///              1.0, 1.0, 1.0];
/// let mut z = [0.0; 9];
/// solver.solve(&costs, &[3, 3], &mut z, &mut Default::default())?;
/// assert_eq!(z, [1.0, 0.0, 0.0,
///                1.0, 0.0, 0.0,
///                1.0, 1.0, 1.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridShortestPath {
    neighbourhood: Neighbourhood,
    negative_costs: NegativeCosts,
}

/// Dijkstra's working memory, reused across calls (the layer keeps one per worker).
///
/// ```
/// use imle_runtime::{DijkstraScratch, GridShortestPath, MapSolver, Neighbourhood};
/// let mut scratch = DijkstraScratch::default();
/// let mut z = [0.0; 4];
/// GridShortestPath::new(Neighbourhood::Four).solve(&[1.0; 4], &[2, 2], &mut z, &mut scratch)?;
/// assert_eq!(z.iter().sum::<f32>(), 3.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Default)]
pub struct DijkstraScratch {
    /// The checked (and, if asked, clamped) costs, so the inner loop is a plain load.
    costs: Vec<f32>,
    dist: Vec<f32>,
    pred: Vec<u32>,
    settled: Vec<bool>,
    /// Min-heap of `(distance bits << 32) | cell`: for non-negative floats other than −0.0 the
    /// bit pattern orders like the value (the checked costs are canonicalised, so no distance
    /// is −0.0), and one `u64` compare orders by distance, then by cell.
    heap: BinaryHeap<Reverse<u64>>,
}

impl GridShortestPath {
    /// A grid solver with the default [`NegativeCosts::ClampPerturbed`]: negative costs in
    /// the layer's θ are errors, those made by noise are clamped to 0.
    ///
    /// ```
    /// use imle_runtime::{GridShortestPath, NegativeCosts, Neighbourhood};
    /// let solver = GridShortestPath::new(Neighbourhood::Eight);
    /// assert_eq!(solver.negative_costs(), NegativeCosts::ClampPerturbed);
    /// ```
    pub fn new(neighbourhood: Neighbourhood) -> Self {
        GridShortestPath {
            neighbourhood,
            negative_costs: NegativeCosts::default(),
        }
    }

    /// Chooses what happens to negative costs (default: [`NegativeCosts::ClampPerturbed`]).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::{GridShortestPath, ImleConfig, ImleLayer, MapSolver, NegativeCosts, Neighbourhood, Noise, Sense};
    ///
    /// let costs = [1.0, -1.0, 1.0, 1.0];
    /// let default = GridShortestPath::new(Neighbourhood::Four);
    /// let strict = default.with_negative_costs(NegativeCosts::Error);
    /// let lenient = default.with_negative_costs(NegativeCosts::ClampToZero);
    /// let mut z = [0.0; 4];
    /// // Called directly, only `Error` rejects the cost; the others count it as 0.
    /// let err = strict.solve(&costs, &[2, 2], &mut z, &mut Default::default()).unwrap_err();
    /// assert!(err.to_string().contains("NegativeCosts::ClampPerturbed"), "{err}");
    /// default.solve(&costs, &[2, 2], &mut z, &mut Default::default())?;
    /// assert_eq!(z, [1.0, 1.0, 0.0, 1.0]);
    ///
    /// // In a layer, the default reports negative costs in θ itself (the network's output),
    /// // and `ClampToZero` clamps them too.
    /// let config = ImleConfig::new(Noise::Gumbel).with_sense(Sense::Minimize);
    /// let theta = Tensor::new(&[[1f32, -1.0], [1.0, 1.0]], &Device::Cpu)?.unsqueeze(0)?;
    /// let err = ImleLayer::new(default, config)?.map(&theta).unwrap_err().to_string();
    /// assert!(err.contains("NegativeCosts::ClampToZero"), "{err}");
    /// let z = ImleLayer::new(lenient, config)?.map(&theta)?;
    /// assert_eq!(z.flatten_all()?.to_vec1::<f32>()?, [1.0, 1.0, 0.0, 1.0]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_negative_costs(mut self, negative_costs: NegativeCosts) -> Self {
        self.negative_costs = negative_costs;
        self
    }

    /// What the solver does with negative costs.
    ///
    /// ```
    /// use imle_runtime::{GridShortestPath, NegativeCosts, Neighbourhood};
    /// let solver = GridShortestPath::new(Neighbourhood::Four).with_negative_costs(NegativeCosts::Error);
    /// assert_eq!(solver.negative_costs(), NegativeCosts::Error);
    /// ```
    pub fn negative_costs(&self) -> NegativeCosts {
        self.negative_costs
    }

    fn cost(&self, costs: &[f32], cell: usize) -> Result<f32> {
        let c = costs[cell];
        if c >= 0.0 && c.is_finite() {
            // −0.0 passes `>= 0.0` but its bits (sign set) would order it after every positive
            // distance in the heap: `+ 0.0` makes it +0.0. Sums of +0.0 and positive costs are
            // never −0.0, so every distance keeps a sign bit of 0.
            return Ok(c + 0.0);
        }
        if !c.is_finite() {
            return Err(solver_error(
                self.name(),
                format!("cost {c} at cell {cell}: costs must be finite"),
            ));
        }
        match self.negative_costs {
            NegativeCosts::ClampPerturbed | NegativeCosts::ClampToZero => Ok(0.0),
            NegativeCosts::Error => Err(solver_error(
                self.name(),
                format!(
                    "cost {c} at cell {cell}: costs must be non-negative under \
                     NegativeCosts::Error; noise and the I-MLE target push costs below 0 in \
                     training: use GridShortestPath::with_negative_costs(\
                     NegativeCosts::ClampPerturbed) (the default) to clamp those to 0, or \
                     NegativeCosts::ClampToZero to clamp every negative cost"
                ),
            )),
        }
    }
}

const OFFSETS_FOUR: [(isize, isize); 4] = [(-1, 0), (0, -1), (0, 1), (1, 0)];
const OFFSETS_EIGHT: [(isize, isize); 8] = [
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, -1),
    (0, 1),
    (1, -1),
    (1, 0),
    (1, 1),
];

impl MapSolver for GridShortestPath {
    type Scratch = DijkstraScratch;

    fn name(&self) -> &str {
        "grid shortest path"
    }

    /// Under [`NegativeCosts::ClampPerturbed`] and [`NegativeCosts::Error`], negative costs
    /// in the layer's θ are errors (naming the option that clamps them).
    fn check_theta(&self, costs: &[f32], _shape: &[usize]) -> Result<()> {
        if self.negative_costs == NegativeCosts::ClampToZero {
            return Ok(());
        }
        // θ is finite here (the layer checked it), so `< 0.0` finds every negative cost; −0.0
        // is a zero, not a negative cost.
        match costs.iter().position(|&c| c < 0.0) {
            None => Ok(()),
            Some(cell) => Err(candle_core::Error::Msg(format!(
                "cost {} at cell {cell}: the costs a network predicts must be non-negative \
                 (give its output a non-negative activation, e.g. softplus), or use \
                 GridShortestPath::with_negative_costs(NegativeCosts::ClampToZero) to clamp \
                 negative costs to 0",
                costs[cell]
            ))),
        }
    }

    fn check_instance(&self, shape: &[usize]) -> Result<()> {
        match shape {
            [h, w] if *h >= 1 && *w >= 1 && h * w <= u32::MAX as usize => Ok(()),
            [_, _] => Err(input_error(format!(
                "grid shortest path needs 2-D instances [H, W] with H, W >= 1 and at most \
                 2^32 − 1 cells, got {shape:?}"
            ))),
            _ => Err(input_error(format!(
                "grid shortest path needs 2-D instances [H, W], got {shape:?}: give θ as \
                 [B, H, W] (a flat [B, H·W] tensor: θ.reshape((B, H, W)))"
            ))),
        }
    }

    fn solve(
        &self,
        costs: &[f32],
        shape: &[usize],
        z: &mut [f32],
        scratch: &mut DijkstraScratch,
    ) -> Result<()> {
        self.check_instance(shape)?;
        let (h, w) = (shape[0], shape[1]);
        let cells = h * w;
        let offsets: &[(isize, isize)] = match self.neighbourhood {
            Neighbourhood::Four => &OFFSETS_FOUR,
            Neighbourhood::Eight => &OFFSETS_EIGHT,
        };
        let DijkstraScratch {
            costs: checked,
            dist,
            pred,
            settled,
            heap,
        } = scratch;
        checked.clear();
        for cell in 0..cells {
            checked.push(self.cost(costs, cell)?);
        }
        dist.clear();
        dist.resize(cells, f32::INFINITY);
        pred.clear();
        pred.resize(cells, u32::MAX);
        settled.clear();
        settled.resize(cells, false);
        heap.clear();

        let key = |d: f32, cell: usize| Reverse(((d.to_bits() as u64) << 32) | cell as u64);
        let target = cells - 1;
        dist[0] = checked[0];
        heap.push(key(dist[0], 0));
        while let Some(Reverse(top)) = heap.pop() {
            let cell = (top & 0xffff_ffff) as usize;
            if settled[cell] {
                continue;
            }
            settled[cell] = true;
            if cell == target {
                break;
            }
            let (row, col) = ((cell / w) as isize, (cell % w) as isize);
            for &(dr, dc) in offsets {
                let (r, c) = (row + dr, col + dc);
                if r < 0 || c < 0 || r >= h as isize || c >= w as isize {
                    continue;
                }
                let next = r as usize * w + c as usize;
                if settled[next] {
                    continue;
                }
                let candidate = dist[cell] + checked[next];
                if candidate < dist[next] {
                    dist[next] = candidate;
                    pred[next] = cell as u32;
                    heap.push(key(candidate, next));
                }
            }
        }
        let mut cell = target;
        z[cell] = 1.0;
        while cell != 0 {
            cell = pred[cell] as usize;
            z[cell] = 1.0;
        }
        Ok(())
    }
}
