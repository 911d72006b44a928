//! Shortest path on a directed graph with one cost per arc (PyEPO's shortest-path benchmark).

use crate::error::{config_error, solver_error};
use crate::solver::MapSolver;
use crate::solvers::shortest_path::NegativeCosts;
use candle_core::Result;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// `z = argmin ⟨z, θ⟩` over the paths from `source` to `target` of a fixed directed graph:
/// θ holds one cost per **arc** (in the order the arcs were given), `z` is the 0/1 indicator
/// of the arcs on a cheapest path. Use it with [`Sense::Minimize`](crate::Sense::Minimize).
///
/// * **Shapes and dtypes.** An instance is `f32` θ with as many entries as the graph has arcs
///   (any shape whose size is the arc count, e.g. `[40]` for a 5×5 grid: `[B, 40]` for the
///   layer); `z` has the same shape and holds 0.0 and 1.0.
/// * **Algorithm.** Decided once at construction. If no cycle can lie on a `source → target`
///   walk ([`is_acyclic`](Self::is_acyclic)), a dynamic programme in topological order over
///   the arcs that can be on such a walk: exact for **any finite costs, negative ones
///   included** (PyEPO's generator makes a few at `deg = 1` with noise, perturbation makes
///   them all the time). Otherwise Dijkstra, which cannot take negative costs: they follow
///   [`NegativeCosts`], as in [`GridShortestPath`](crate::GridShortestPath) (by default,
///   negative costs in the layer's θ are errors and negative perturbed costs are clamped to
///   0). Both run without allocating once their [`DigraphScratch`] has grown.
/// * **Ties.** Each node is entered by its *lowest-index optimal incoming arc*: among the arcs
///   `(u, v)` with `dist(u) + θ[a] = dist(v)`, compared with `<` in `f32` so that −0.0 = +0.0,
///   the one with the lowest index `a`. The path is the chain of these arcs traced back from
///   the target, so among equally cheap paths the one chosen is found by walking *backwards*
///   from the target and always taking the lowest-index optimal arc. On
///   [`grid`](Self::grid), where the arc from above precedes the arc from the left, equal
///   costs give the path along the top row, then down the last column. Under Dijkstra the
///   same rule holds among the arcs whose tail is settled before the head (nodes settle by
///   distance, then by node index); that is every optimal arc unless some cost is zero
///   (or clamped to zero).
/// * **Errors.** Construction: an endpoint out of range, `source = target`, no path from
///   `source` to `target`. Solving: θ of the wrong length ("one cost per arc"), a NaN or
///   infinite cost (the layer never passes one, a direct call is answered with an error, not
///   a wrong path), a path cost that overflows `f32`, and a negative cost on a cyclic graph
///   under [`NegativeCosts::Error`].
///
/// ```
/// use imle_runtime::{DigraphShortestPath, MapSolver};
/// // 0 → 1 → 3 and 0 → 2 → 3, plus a shortcut 0 → 3.
/// let graph = DigraphShortestPath::new(4, vec![(0, 1), (1, 3), (0, 2), (2, 3), (0, 3)], 0, 3)?;
/// let mut z = [0.0; 5];
/// graph.solve(&[1.0, 1.0, 2.0, -4.0, 3.0], &[5], &mut z, &mut Default::default())?;
/// assert_eq!(z, [0.0, 0.0, 1.0, 1.0, 0.0]); // cost −2: negative costs are exact here
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// In a layer, on PyEPO's 5×5 grid with its `implicitMLE` defaults (θ `[B, 40]`, one row per
/// instance in PyEPO's arc order; the output is `[B·S, 40]`):
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use imle_runtime::{DigraphShortestPath, ImleConfig, ImleLayer, Noise, Sense};
/// let config = ImleConfig::new(Noise::SumOfGamma { k: 5.0, terms: 10 })
///     .with_sense(Sense::Minimize)
///     .with_samples(10)?
///     .with_lambda(10.0)?;
/// let layer = ImleLayer::new(DigraphShortestPath::grid(5, 5)?, config)?;
/// let theta = Var::new(&[[1f32; 40], [2f32; 40]], &Device::Cpu)?;
/// let z = layer.forward(theta.as_tensor())?;
/// assert_eq!(z.dims(), &[20, 40]);
/// assert_eq!(z.sum(1)?.to_vec1::<f32>()?, [8.0; 20]); // 4 arcs east, 4 south
/// let weights = Tensor::randn(0f32, 1.0, (20, 40), &Device::Cpu)?;
/// let grads = (z * weights)?.sum_all()?.backward()?;
/// assert_eq!(grads.get(&theta).unwrap().dims(), &[2, 40]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DigraphShortestPath {
    nodes: usize,
    arcs: Vec<(u32, u32)>,
    source: u32,
    target: u32,
    negative_costs: NegativeCosts,
    plan: Plan,
}

/// What construction decided, with the adjacency the solve loop reads. Only arcs that can be
/// on a `source → target` walk (both ends reachable from the source and reaching the target)
/// are kept: the others can never be on the path, so the loops skip them for free.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plan {
    /// `order` lists the useful nodes in topological order (the source first, the target
    /// last); `incoming[start[k]..start[k + 1]]` holds `(arc, tail)` for the arcs into
    /// `order[k]`, by increasing arc index, so a strict `<` keeps the lowest-index minimum.
    Dag {
        order: Vec<u32>,
        start: Vec<u32>,
        incoming: Vec<(u32, u32)>,
    },
    /// `outgoing[start[v]..start[v + 1]]` holds `(arc, head)` for the useful arcs out of node
    /// `v`, by increasing arc index.
    Cyclic {
        start: Vec<u32>,
        outgoing: Vec<(u32, u32)>,
    },
}

/// The working memory of [`DigraphShortestPath`], reused across calls (the layer keeps one
/// per worker): after the first call on a graph, solving allocates nothing.
///
/// ```
/// use imle_runtime::{DigraphScratch, DigraphShortestPath, MapSolver};
/// let grid = DigraphShortestPath::grid(2, 2)?;
/// let mut scratch = DigraphScratch::default();
/// let mut z = [0.0; 4];
/// grid.solve(&[1.0, 5.0, 1.0, 1.0], &[4], &mut z, &mut scratch)?;
/// assert_eq!(z, [1.0, 0.0, 1.0, 0.0]); // right, then down
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Default)]
pub struct DigraphScratch {
    dist: Vec<f32>,
    /// The arc each node is entered by on its cheapest path found so far.
    pred: Vec<u32>,
    /// Dijkstra only: the checked (clamped, +0.0 for −0.0) costs.
    costs: Vec<f32>,
    settled: Vec<bool>,
    /// Dijkstra's min-heap of `(distance bits << 32) | node`; as in `GridShortestPath`, the
    /// bits of non-negative floats other than −0.0 order like their values, and no distance
    /// is −0.0 (the checked costs are canonicalised).
    heap: BinaryHeap<Reverse<u64>>,
}

impl DigraphShortestPath {
    /// A graph of `nodes` nodes (numbered from 0) and the given arcs `(tail, head)`; θ's
    /// entry `a` is the cost of `arcs[a]`. Parallel arcs and cycles are allowed.
    ///
    /// Errors (`imle config: …`): more than `u32::MAX` nodes or arcs, an arc or endpoint
    /// naming a node `>= nodes`, `source = target`, and no path from `source` to `target`.
    ///
    /// ```
    /// use imle_runtime::DigraphShortestPath;
    /// let chain = DigraphShortestPath::new(3, vec![(0, 1), (1, 2)], 0, 2)?;
    /// assert!(chain.is_acyclic());
    /// let err = DigraphShortestPath::new(3, vec![(0, 1), (1, 2)], 2, 0).unwrap_err();
    /// assert!(err.to_string().contains("no path from node 2 to node 0"), "{err}");
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn new(nodes: usize, arcs: Vec<(u32, u32)>, source: u32, target: u32) -> Result<Self> {
        if nodes > u32::MAX as usize || arcs.len() > u32::MAX as usize {
            return Err(config_error(format!(
                "digraph shortest path: at most {} nodes and arcs, got {nodes} nodes and {} arcs",
                u32::MAX,
                arcs.len()
            )));
        }
        for (name, node) in [("source", source), ("target", target)] {
            if node as usize >= nodes {
                return Err(config_error(format!(
                    "digraph shortest path: {name} node {node} is out of range for a graph of \
                     {nodes} nodes"
                )));
            }
        }
        if source == target {
            return Err(config_error(format!(
                "digraph shortest path: source = target = node {source}; a path needs two \
                 distinct endpoints"
            )));
        }
        if let Some((i, &(a, b))) = arcs
            .iter()
            .enumerate()
            .find(|(_, (a, b))| *a as usize >= nodes || *b as usize >= nodes)
        {
            return Err(config_error(format!(
                "digraph shortest path: arc {i} = ({a}, {b}) names a node >= {nodes}"
            )));
        }
        let plan = plan(nodes, &arcs, source, target)?;
        Ok(DigraphShortestPath {
            nodes,
            arcs,
            source,
            target,
            negative_costs: NegativeCosts::default(),
            plan,
        })
    }

    /// The `rows × cols` grid network of PyEPO's shortest-path benchmark, with the arcs in
    /// PyEPO's order so that cost vectors made by PyEPO (`pyepo.data.shortestpath.genData`)
    /// line up entry by entry.
    ///
    /// Node `v = r·cols + c` (row-major). Arcs point east and south only. For each row `r` in
    /// turn: first the `cols − 1` arcs `(v, v + 1)` along the row, then, except on the last
    /// row, the `cols` arcs `(v, v + cols)` down to the next row. Source node 0 (north-west),
    /// target `rows·cols − 1` (south-east); `(rows − 1)·cols + (cols − 1)·rows` arcs (40 for
    /// 5×5, 264 for 12×12), and every path uses `rows + cols − 2` of them. The order is that
    /// of `_get_grid_arcs` in PyEPO's `pkg/pyepo/model/utils.py` (PyEPO 2.x), which its
    /// shortest-path models use for θ. The graph is acyclic, so negative costs are exact.
    ///
    /// Errors: `rows` or `cols` of 0, and 1×1 (source = target); 1×n and n×1 are single
    /// paths.
    ///
    /// ```
    /// use imle_runtime::DigraphShortestPath;
    /// let grid = DigraphShortestPath::grid(5, 5)?;
    /// assert_eq!(grid.arcs().len(), 40);
    /// assert_eq!(&grid.arcs()[..5], &[(0, 1), (1, 2), (2, 3), (3, 4), (0, 5)]);
    /// assert_eq!(grid.arcs()[39], (23, 24));
    /// assert_eq!((grid.source(), grid.target()), (0, 24));
    /// assert!(DigraphShortestPath::grid(1, 1).is_err());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn grid(rows: usize, cols: usize) -> Result<Self> {
        let nodes = rows.checked_mul(cols).filter(|&n| n <= u32::MAX as usize);
        let nodes = match nodes {
            Some(n) if n >= 2 => n,
            _ => {
                return Err(config_error(format!(
                    "digraph shortest path: a {rows}×{cols} grid has no path (it needs at \
                     least 2 nodes, at most {} nodes)",
                    u32::MAX
                )));
            }
        };
        let mut arcs = Vec::with_capacity((rows - 1) * cols + (cols - 1) * rows);
        for r in 0..rows {
            let row = (r * cols) as u32;
            arcs.extend((0..cols as u32 - 1).map(|c| (row + c, row + c + 1)));
            if r + 1 < rows {
                arcs.extend((0..cols as u32).map(|c| (row + c, row + c + cols as u32)));
            }
        }
        Self::new(nodes, arcs, 0, nodes as u32 - 1)
    }

    /// Chooses what happens to negative costs when the graph has a cycle on the way from
    /// source to target and Dijkstra runs (default: [`NegativeCosts::ClampPerturbed`]).
    /// Acyclic graphs take negative costs exactly and ignore this setting.
    ///
    /// ```
    /// use imle_runtime::{DigraphShortestPath, MapSolver, NegativeCosts};
    /// // 0 ⇄ 1 → 2: a cycle, so Dijkstra runs.
    /// let cyclic = DigraphShortestPath::new(3, vec![(0, 1), (1, 0), (1, 2)], 0, 2)?;
    /// assert!(!cyclic.is_acyclic());
    /// let strict = cyclic.clone().with_negative_costs(NegativeCosts::Error);
    /// let mut z = [0.0; 3];
    /// let err = strict.solve(&[1.0, -1.0, 1.0], &[3], &mut z, &mut Default::default()).unwrap_err();
    /// assert!(err.to_string().contains("NegativeCosts::ClampPerturbed"), "{err}");
    /// // The default clamps a negative cost met in `solve` (noise makes them) to 0 ...
    /// cyclic.solve(&[1.0, -1.0, 1.0], &[3], &mut z, &mut Default::default())?;
    /// assert_eq!(z, [1.0, 0.0, 1.0]);
    /// // ... and reports one in the layer's θ, naming the option that clamps it.
    /// let err = cyclic.check_theta(&[1.0, -1.0, 1.0], &[3]).unwrap_err().to_string();
    /// assert!(err.contains("NegativeCosts::ClampToZero"), "{err}");
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn with_negative_costs(mut self, negative_costs: NegativeCosts) -> Self {
        self.negative_costs = negative_costs;
        self
    }

    /// What the solver does with negative costs on a cyclic graph.
    ///
    /// ```
    /// use imle_runtime::{DigraphShortestPath, NegativeCosts};
    /// assert_eq!(DigraphShortestPath::grid(2, 3)?.negative_costs(), NegativeCosts::ClampPerturbed);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn negative_costs(&self) -> NegativeCosts {
        self.negative_costs
    }

    /// The arcs `(tail, head)`, in the order θ costs them.
    ///
    /// ```
    /// let grid = imle_runtime::DigraphShortestPath::grid(2, 2)?;
    /// assert_eq!(grid.arcs(), &[(0, 1), (0, 2), (1, 3), (2, 3)]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn arcs(&self) -> &[(u32, u32)] {
        &self.arcs
    }

    /// The number of nodes.
    ///
    /// ```
    /// assert_eq!(imle_runtime::DigraphShortestPath::grid(3, 4)?.nodes(), 12);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The node every path starts at.
    ///
    /// ```
    /// assert_eq!(imle_runtime::DigraphShortestPath::grid(3, 4)?.source(), 0);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn source(&self) -> u32 {
        self.source
    }

    /// The node every path ends at.
    ///
    /// ```
    /// assert_eq!(imle_runtime::DigraphShortestPath::grid(3, 4)?.target(), 11);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn target(&self) -> u32 {
        self.target
    }

    /// Whether no cycle lies on any `source → target` walk, so that the exact dynamic
    /// programme runs (negative costs included); `false` means Dijkstra and
    /// [`NegativeCosts`]. Cycles among nodes that no such walk visits (unreachable from the
    /// source, or not reaching the target) cannot change the path and do not count.
    ///
    /// ```
    /// use imle_runtime::DigraphShortestPath;
    /// // 0 → 1 → 2, and a cycle 3 ⇄ 4 off the way: acyclic where it matters.
    /// let off = DigraphShortestPath::new(5, vec![(0, 1), (1, 2), (3, 4), (4, 3)], 0, 2)?;
    /// assert!(off.is_acyclic());
    /// // A cycle 1 ⇄ 3 that a walk 0 → 1 → 3 → 1 → 2 can use.
    /// let on = DigraphShortestPath::new(4, vec![(0, 1), (1, 2), (1, 3), (3, 1)], 0, 2)?;
    /// assert!(!on.is_acyclic());
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn is_acyclic(&self) -> bool {
        matches!(self.plan, Plan::Dag { .. })
    }

    fn wrong_length(&self, got: usize, shape: &[usize]) -> candle_core::Error {
        config_error(format!(
            "digraph shortest path over {} arcs got an instance of {got} costs (shape \
             {shape:?}): θ needs one cost per arc",
            self.arcs.len()
        ))
    }

    fn non_finite(&self, theta: &[f32]) -> Result<()> {
        match theta.iter().position(|c| !c.is_finite()) {
            None => Ok(()),
            Some(arc) => Err(solver_error(
                self.name(),
                format!("cost {} at arc {arc}: costs must be finite", theta[arc]),
            )),
        }
    }

    fn overflow(&self) -> candle_core::Error {
        solver_error(
            self.name(),
            "a path's cost overflows f32: scale the costs down",
        )
    }

    fn solve_dag(
        &self,
        theta: &[f32],
        z: &mut [f32],
        scratch: &mut DigraphScratch,
        order: &[u32],
        start: &[u32],
        incoming: &[(u32, u32)],
    ) -> Result<()> {
        let DigraphScratch { dist, pred, .. } = scratch;
        // No reset: in topological order every useful node is written before it is read.
        if dist.len() < self.nodes {
            dist.resize(self.nodes, 0.0);
            pred.resize(self.nodes, 0);
        }
        dist[self.source as usize] = 0.0;
        for (k, &node) in order.iter().enumerate().skip(1) {
            let mut best = f32::INFINITY;
            let mut best_arc = u32::MAX;
            for &(arc, tail) in &incoming[start[k] as usize..start[k + 1] as usize] {
                let candidate = dist[tail as usize] + theta[arc as usize];
                // Strict `<`: the first (lowest-index) arc of equal cost stays, and −0.0 and
                // +0.0 compare equal, so the sign of a zero never picks the arc.
                if candidate < best {
                    best = candidate;
                    best_arc = arc;
                }
            }
            // Finite costs only overflow to ±∞; a node left at ∞ or −∞ would have no
            // meaningful predecessor (or a wrong one), so stop rather than guess.
            if !best.is_finite() {
                return Err(self.overflow());
            }
            dist[node as usize] = best;
            pred[node as usize] = best_arc;
        }
        self.trace(pred, z);
        Ok(())
    }

    fn solve_cyclic(
        &self,
        theta: &[f32],
        z: &mut [f32],
        scratch: &mut DigraphScratch,
        start: &[u32],
        outgoing: &[(u32, u32)],
    ) -> Result<()> {
        let DigraphScratch {
            dist,
            pred,
            costs,
            settled,
            heap,
        } = scratch;
        costs.clear();
        for (arc, &c) in theta.iter().enumerate() {
            costs.push(self.checked_cost(c, arc)?);
        }
        dist.clear();
        dist.resize(self.nodes, f32::INFINITY);
        pred.clear();
        pred.resize(self.nodes, u32::MAX);
        settled.clear();
        settled.resize(self.nodes, false);
        heap.clear();

        let key = |d: f32, node: u32| Reverse(((d.to_bits() as u64) << 32) | node as u64);
        let (source, target) = (self.source as usize, self.target as usize);
        dist[source] = 0.0;
        heap.push(key(0.0, self.source));
        while let Some(Reverse(top)) = heap.pop() {
            let node = (top & 0xffff_ffff) as usize;
            if settled[node] {
                continue;
            }
            settled[node] = true;
            if node == target {
                break;
            }
            for &(arc, head) in &outgoing[start[node] as usize..start[node + 1] as usize] {
                let head_index = head as usize;
                if settled[head_index] {
                    continue;
                }
                let candidate = dist[node] + costs[arc as usize];
                if candidate < dist[head_index] {
                    dist[head_index] = candidate;
                    pred[head_index] = arc;
                    heap.push(key(candidate, head));
                } else if candidate == dist[head_index] && arc < pred[head_index] {
                    // An equally cheap arc from an already settled node: the tie rule keeps
                    // the lower arc index (no push: the distance did not change).
                    pred[head_index] = arc;
                }
            }
        }
        if !settled[target] || !dist[target].is_finite() {
            return Err(self.overflow());
        }
        self.trace(pred, z);
        Ok(())
    }

    /// Marks the arcs on the predecessor chain from the target back to the source.
    fn trace(&self, pred: &[u32], z: &mut [f32]) {
        let mut node = self.target;
        while node != self.source {
            let arc = pred[node as usize] as usize;
            z[arc] = 1.0;
            node = self.arcs[arc].0;
        }
    }

    /// A cost as Dijkstra takes it: finite, non-negative, +0.0 for either zero.
    fn checked_cost(&self, c: f32, arc: usize) -> Result<f32> {
        if c >= 0.0 && c.is_finite() {
            // −0.0 passes `>= 0.0` but its bits would sort it after every positive distance
            // in the heap; `+ 0.0` makes it +0.0.
            return Ok(c + 0.0);
        }
        if !c.is_finite() {
            return Err(solver_error(
                self.name(),
                format!("cost {c} at arc {arc}: costs must be finite"),
            ));
        }
        match self.negative_costs {
            NegativeCosts::ClampPerturbed | NegativeCosts::ClampToZero => Ok(0.0),
            NegativeCosts::Error => Err(solver_error(
                self.name(),
                format!(
                    "cost {c} at arc {arc}: on a graph with a cycle (Dijkstra) costs must be \
                     non-negative under NegativeCosts::Error; noise and the I-MLE target push \
                     costs below 0 in training: use DigraphShortestPath::with_negative_costs(\
                     NegativeCosts::ClampPerturbed) (the default) to clamp those to 0, or \
                     NegativeCosts::ClampToZero to clamp every negative cost"
                ),
            )),
        }
    }
}

/// Finds the useful part of the graph (nodes reachable from `source` that reach `target`),
/// tries to sort it topologically, and builds the adjacency the chosen algorithm reads.
fn plan(nodes: usize, arcs: &[(u32, u32)], source: u32, target: u32) -> Result<Plan> {
    // CSR of all arcs in both directions, by arc index within each node.
    let csr = |forward: bool| {
        let mut start = vec![0u32; nodes + 1];
        for &(a, b) in arcs {
            start[if forward { a } else { b } as usize + 1] += 1;
        }
        for v in 0..nodes {
            start[v + 1] += start[v];
        }
        let mut fill = start.clone();
        let mut list = vec![(0u32, 0u32); arcs.len()];
        for (i, &(a, b)) in arcs.iter().enumerate() {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            list[fill[from as usize] as usize] = (i as u32, to);
            fill[from as usize] += 1;
        }
        (start, list)
    };
    let (out_start, out_list) = csr(true);
    let (in_start, in_list) = csr(false);
    let reach = |from: u32, start: &[u32], list: &[(u32, u32)]| {
        let mut seen = vec![false; nodes];
        let mut stack = vec![from];
        seen[from as usize] = true;
        while let Some(v) = stack.pop() {
            for &(_, w) in &list[start[v as usize] as usize..start[v as usize + 1] as usize] {
                if !seen[w as usize] {
                    seen[w as usize] = true;
                    stack.push(w);
                }
            }
        }
        seen
    };
    let from_source = reach(source, &out_start, &out_list);
    if !from_source[target as usize] {
        return Err(config_error(format!(
            "digraph shortest path: no path from node {source} to node {target}"
        )));
    }
    let to_target = reach(target, &in_start, &in_list);
    let useful: Vec<bool> = (0..nodes).map(|v| from_source[v] && to_target[v]).collect();
    let useful_arc = |&(a, b): &(u32, u32)| useful[a as usize] && useful[b as usize];

    // Kahn's algorithm on the useful subgraph.
    let mut indegree = vec![0u32; nodes];
    for arc in arcs.iter().filter(|arc| useful_arc(arc)) {
        indegree[arc.1 as usize] += 1;
    }
    let mut queue: VecDeque<u32> = (0..nodes as u32)
        .filter(|&v| useful[v as usize] && indegree[v as usize] == 0)
        .collect();
    let mut order = Vec::new();
    while let Some(v) = queue.pop_front() {
        order.push(v);
        for &(i, w) in &out_list[out_start[v as usize] as usize..out_start[v as usize + 1] as usize]
        {
            if useful_arc(&arcs[i as usize]) {
                indegree[w as usize] -= 1;
                if indegree[w as usize] == 0 {
                    queue.push_back(w);
                }
            }
        }
    }
    let useful_nodes = useful.iter().filter(|&&u| u).count();
    if order.len() == useful_nodes {
        // Every useful node but the source has a useful arc in, and every one but the target
        // a useful arc out, so the source comes first and the target last.
        debug_assert_eq!((order[0], order[order.len() - 1]), (source, target));
        let mut start = vec![0u32];
        let mut incoming = Vec::new();
        for &v in &order {
            let range = in_start[v as usize] as usize..in_start[v as usize + 1] as usize;
            incoming.extend(
                in_list[range]
                    .iter()
                    .filter(|&&(i, _)| useful_arc(&arcs[i as usize])),
            );
            start.push(incoming.len() as u32);
        }
        Ok(Plan::Dag {
            order,
            start,
            incoming,
        })
    } else {
        let mut start = vec![0u32];
        let mut outgoing = Vec::new();
        for v in 0..nodes {
            let range = out_start[v] as usize..out_start[v + 1] as usize;
            outgoing.extend(
                out_list[range]
                    .iter()
                    .filter(|&&(i, _)| useful_arc(&arcs[i as usize])),
            );
            start.push(outgoing.len() as u32);
        }
        Ok(Plan::Cyclic { start, outgoing })
    }
}

impl MapSolver for DigraphShortestPath {
    type Scratch = DigraphScratch;

    fn name(&self) -> &str {
        "digraph shortest path"
    }

    /// On a cyclic graph under [`NegativeCosts::ClampPerturbed`] and [`NegativeCosts::Error`],
    /// negative costs in the layer's θ are errors (naming the option that clamps them). On an
    /// acyclic graph every finite cost is fine.
    fn check_theta(&self, theta: &[f32], _shape: &[usize]) -> Result<()> {
        if self.is_acyclic() || self.negative_costs == NegativeCosts::ClampToZero {
            return Ok(());
        }
        // θ is finite here (the layer checked it); −0.0 is a zero, not a negative cost.
        match theta.iter().position(|&c| c < 0.0) {
            None => Ok(()),
            Some(arc) => Err(candle_core::Error::Msg(format!(
                "cost {} at arc {arc}: on a graph with a cycle (solved by Dijkstra) the costs a \
                 network predicts must be non-negative (give its output a non-negative \
                 activation, e.g. softplus), or use DigraphShortestPath::with_negative_costs(\
                 NegativeCosts::ClampToZero) to clamp negative costs to 0",
                theta[arc]
            ))),
        }
    }

    fn check_instance(&self, shape: &[usize]) -> Result<()> {
        let n: usize = shape.iter().product();
        if n != self.arcs.len() {
            return Err(self.wrong_length(n, shape));
        }
        Ok(())
    }

    fn solve(
        &self,
        theta: &[f32],
        shape: &[usize],
        z: &mut [f32],
        scratch: &mut DigraphScratch,
    ) -> Result<()> {
        self.check_instance(shape)?;
        if theta.len() != self.arcs.len() {
            return Err(self.wrong_length(theta.len(), shape));
        }
        if z.len() != self.arcs.len() {
            return Err(solver_error(
                self.name(),
                format!(
                    "a solution buffer of {} entries for {} arcs",
                    z.len(),
                    self.arcs.len()
                ),
            ));
        }
        match &self.plan {
            Plan::Dag {
                order,
                start,
                incoming,
            } => {
                // The DP compares with `<`, which a NaN would silently lose: check first.
                self.non_finite(theta)?;
                self.solve_dag(theta, z, scratch, order, start, incoming)
            }
            Plan::Cyclic { start, outgoing } => {
                self.solve_cyclic(theta, z, scratch, start, outgoing)
            }
        }
    }
}
