//! Shortest path on a grid of vertex costs (the Warcraft maps of the I-MLE paper).

use crate::error::{config_error, solver_error};
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

/// What the solver does with a negative cost (see
/// [`GridShortestPath::with_negative_costs`] for an example).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegativeCosts {
    /// Return an error naming the cell (Dijkstra is wrong with negative costs).
    Error,
    /// Treat negative costs as 0. Useful behind a layer with noise, where `θ − τ·ε` can dip
    /// below zero although the network's costs are positive.
    ClampToZero,
}

/// `z = argmin ⟨z, c⟩` over paths from the top-left to the bottom-right cell of an `H × W`
/// grid, where a path's cost is the sum of the costs of the cells it visits (both ends
/// included) and `z` is the 0/1 mask of those cells. Dijkstra with a binary heap; use it with
/// [`Sense::Minimize`](crate::Sense::Minimize). Instances must be 2-D (`[H, W]`). Costs are
/// compared numerically (**−0.0 = +0.0**); ties between equal-cost paths are broken
/// deterministically (among cells at equal distance, the lower cell index settles first).
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
    /// A grid solver that rejects negative costs.
    ///
    /// ```
    /// use imle_runtime::{GridShortestPath, Neighbourhood};
    /// let solver = GridShortestPath::new(Neighbourhood::Eight);
    /// # let _ = solver;
    /// ```
    pub fn new(neighbourhood: Neighbourhood) -> Self {
        GridShortestPath {
            neighbourhood,
            negative_costs: NegativeCosts::Error,
        }
    }

    /// Chooses what happens to negative costs (default: an error).
    ///
    /// ```
    /// use imle_runtime::{GridShortestPath, MapSolver, NegativeCosts, Neighbourhood};
    /// let strict = GridShortestPath::new(Neighbourhood::Four);
    /// let lenient = strict.with_negative_costs(NegativeCosts::ClampToZero);
    /// let mut z = [0.0; 4];
    /// assert!(strict.solve(&[1.0, -1.0, 1.0, 1.0], &[2, 2], &mut z, &mut Default::default()).is_err());
    /// lenient.solve(&[1.0, -1.0, 1.0, 1.0], &[2, 2], &mut z, &mut Default::default())?;
    /// assert_eq!(z, [1.0, 1.0, 0.0, 1.0]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_negative_costs(mut self, negative_costs: NegativeCosts) -> Self {
        self.negative_costs = negative_costs;
        self
    }

    fn cost(&self, costs: &[f32], cell: usize) -> Result<f32> {
        let c = costs[cell];
        if c >= 0.0 && c.is_finite() {
            // −0.0 passes `>= 0.0` but its bits (sign set) would order it after every positive
            // distance in the heap: `+ 0.0` makes it +0.0. Sums of +0.0 and positive costs are
            // never −0.0, so every distance keeps a sign bit of 0.
            return Ok(c + 0.0);
        }
        if c.is_finite() && self.negative_costs == NegativeCosts::ClampToZero {
            return Ok(0.0);
        }
        Err(solver_error(
            self.name(),
            format!("cost {c} at cell {cell}: costs must be finite and non-negative"),
        ))
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

    fn check_instance(&self, shape: &[usize]) -> Result<()> {
        match shape {
            [h, w] if *h >= 1 && *w >= 1 && h * w <= u32::MAX as usize => Ok(()),
            _ => Err(config_error(format!(
                "grid shortest path needs 2-D instances [H, W] with H, W >= 1, got {shape:?}"
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
