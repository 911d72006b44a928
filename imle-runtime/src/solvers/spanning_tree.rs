//! Maximum spanning tree (Kruskal) over the edge weights of a fixed graph.

use crate::error::config_error;
use crate::solver::{MapSolver, cmp_desc};
use candle_core::Result;

/// `z = argmax ⟨z, θ⟩` over spanning trees (forests, if the graph is disconnected) of a fixed
/// undirected graph; θ holds one weight per edge, `z` marks the chosen edges. Kruskal's
/// algorithm with union–find. Weights are compared numerically (**−0.0 = +0.0**) and ties go
/// to the lower edge index (the order of [`cmp_desc`](crate::cmp_desc)).
///
/// ```
/// use imle_runtime::{MapSolver, MaxSpanningTree};
/// // A triangle 0-1-2: the tree drops the lightest edge.
/// let tree = MaxSpanningTree::new(3, vec![(0, 1), (1, 2), (0, 2)])?;
/// let mut z = [0.0; 3];
/// tree.solve(&[3.0, 1.0, 2.0], &[3], &mut z, &mut Default::default())?;
/// assert_eq!(z, [1.0, 0.0, 1.0]);
///
/// // Zeros of either sign tie: the lower edge index wins.
/// let mut z = [0.0; 3];
/// tree.solve(&[1.0, -0.0, 0.0], &[3], &mut z, &mut Default::default())?;
/// assert_eq!(z, [1.0, 1.0, 0.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxSpanningTree {
    vertices: usize,
    edges: Vec<(u32, u32)>,
}

/// Kruskal's working memory, reused across calls (the layer keeps one per worker).
///
/// ```
/// use imle_runtime::{KruskalScratch, MapSolver, MaxSpanningTree};
/// let path = MaxSpanningTree::new(3, vec![(0, 1), (1, 2)])?;
/// let mut z = [0.0; 2];
/// path.solve(&[1.0, 1.0], &[2], &mut z, &mut KruskalScratch::default())?;
/// assert_eq!(z, [1.0, 1.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Default)]
pub struct KruskalScratch {
    order: Vec<u32>,
    parent: Vec<u32>,
}

impl MaxSpanningTree {
    /// A graph with `vertices` vertices and the given undirected edges (endpoints must exist).
    ///
    /// ```
    /// use imle_runtime::MaxSpanningTree;
    /// assert!(MaxSpanningTree::new(2, vec![(0, 5)]).is_err());
    /// ```
    pub fn new(vertices: usize, edges: Vec<(u32, u32)>) -> Result<Self> {
        if vertices > u32::MAX as usize {
            return Err(config_error("spanning tree: too many vertices"));
        }
        if let Some((i, &(a, b))) = edges
            .iter()
            .enumerate()
            .find(|(_, (a, b))| *a as usize >= vertices || *b as usize >= vertices)
        {
            return Err(config_error(format!(
                "spanning tree: edge {i} = ({a}, {b}) names a vertex >= {vertices}"
            )));
        }
        Ok(MaxSpanningTree { vertices, edges })
    }

    /// The graph's edges, in the order θ weights them.
    ///
    /// ```
    /// let tree = imle_runtime::MaxSpanningTree::new(2, vec![(0, 1)])?;
    /// assert_eq!(tree.edges(), &[(0, 1)]);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn edges(&self) -> &[(u32, u32)] {
        &self.edges
    }
}

/// Root of `x`, halving the path on the way (amortised near-constant time).
fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let grandparent = parent[parent[x as usize] as usize];
        parent[x as usize] = grandparent;
        x = grandparent;
    }
    x
}

impl MapSolver for MaxSpanningTree {
    type Scratch = KruskalScratch;

    fn name(&self) -> &str {
        "maximum spanning tree"
    }

    fn check_instance(&self, shape: &[usize]) -> Result<()> {
        let n: usize = shape.iter().product();
        if n != self.edges.len() {
            return Err(config_error(format!(
                "spanning tree over {} edges got instances of {n} weights (shape {shape:?})",
                self.edges.len()
            )));
        }
        Ok(())
    }

    fn solve(
        &self,
        theta: &[f32],
        shape: &[usize],
        z: &mut [f32],
        scratch: &mut KruskalScratch,
    ) -> Result<()> {
        self.check_instance(shape)?;
        let KruskalScratch { order, parent } = scratch;
        order.clear();
        order.extend(0..self.edges.len() as u32);
        // Heaviest first (−0 = +0), ties to the lower edge index: a strict total order, so
        // the unstable sort is deterministic.
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            cmp_desc((a, theta[a]), (b, theta[b]))
        });
        parent.clear();
        parent.extend(0..self.vertices as u32);
        let mut joined = 0;
        for &edge in order.iter() {
            let (a, b) = self.edges[edge as usize];
            let (root_a, root_b) = (find(parent, a), find(parent, b));
            if root_a != root_b {
                parent[root_a as usize] = root_b;
                z[edge as usize] = 1.0;
                joined += 1;
                if joined + 1 == self.vertices {
                    break;
                }
            }
        }
        Ok(())
    }
}
