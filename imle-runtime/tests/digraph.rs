//! `DigraphShortestPath` against brute-force enumeration of simple paths, on PyEPO's grid
//! networks, random DAGs and graphs with cycles (issue #11 §1).
//!
//! Costs are small integers (or ±0.0) throughout: every partial sum of a path is then an
//! integer far below 2^24, exact in `f32` whatever the order of the additions, so the solver's
//! path cost must equal the brute-force minimum exactly (`assert_eq!`, no tolerance).

use candle_core::{Device, Tensor, Var};
use imle_runtime::{
    DigraphShortestPath, ImleConfig, ImleLayer, MapSolver, NegativeCosts, Noise, Sense,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn solve(solver: &DigraphShortestPath, theta: &[f32]) -> Vec<f32> {
    let mut z = vec![0.0; theta.len()];
    solver
        .solve(theta, &[theta.len()], &mut z, &mut Default::default())
        .unwrap();
    z
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Every simple path from `source` to `target`, as lists of arc indices (depth-first).
fn simple_paths(nodes: usize, arcs: &[(u32, u32)], source: u32, target: u32) -> Vec<Vec<usize>> {
    fn walk(
        node: u32,
        target: u32,
        arcs: &[(u32, u32)],
        visited: &mut Vec<bool>,
        path: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if node == target {
            out.push(path.clone());
            return;
        }
        for (i, &(a, b)) in arcs.iter().enumerate() {
            if a == node && !visited[b as usize] {
                visited[b as usize] = true;
                path.push(i);
                walk(b, target, arcs, visited, path, out);
                path.pop();
                visited[b as usize] = false;
            }
        }
    }
    let mut visited = vec![false; nodes];
    visited[source as usize] = true;
    let mut out = Vec::new();
    walk(
        source,
        target,
        arcs,
        &mut visited,
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// The cheapest simple path's cost, summed from the source as the solver does.
fn brute_minimum(paths: &[Vec<usize>], costs: &[f32]) -> f32 {
    paths
        .iter()
        .map(|p| p.iter().map(|&a| costs[a]).sum::<f32>())
        .fold(f32::INFINITY, f32::min)
}

/// `z` is 0/1 and marks exactly the arcs of one simple path from source to target.
fn assert_is_path(solver: &DigraphShortestPath, z: &[f32], context: &str) {
    let arcs = solver.arcs();
    assert!(
        z.iter().all(|&v| v == 0.0 || v == 1.0),
        "{context}: z {z:?}"
    );
    let chosen: Vec<usize> = (0..z.len()).filter(|&a| z[a] == 1.0).collect();
    let mut node = solver.source();
    let mut visited = vec![false; solver.nodes()];
    visited[node as usize] = true;
    let mut used = 0;
    while node != solver.target() {
        let out: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|&a| arcs[a].0 == node)
            .collect();
        assert_eq!(
            out.len(),
            1,
            "{context}: node {node} leaves by {out:?}, z {z:?}"
        );
        node = arcs[out[0]].1;
        assert!(
            !visited[node as usize],
            "{context}: revisits {node}, z {z:?}"
        );
        visited[node as usize] = true;
        used += 1;
    }
    assert_eq!(used, chosen.len(), "{context}: stray arcs in z {z:?}");
}

/// The documented tie rule, computed independently: exact distances by Bellman–Ford (integer
/// costs, no negative cycle), then from the target back, the lowest-index arc `(u, v)` with
/// `dist(u) + θ = dist(v)`. For graphs without cycles, or with positive costs.
fn tie_rule_path(solver: &DigraphShortestPath, costs: &[f32]) -> Vec<f32> {
    let arcs = solver.arcs();
    let mut dist = vec![f32::INFINITY; solver.nodes()];
    dist[solver.source() as usize] = 0.0;
    for _ in 0..solver.nodes() {
        for (a, &(u, v)) in arcs.iter().enumerate() {
            dist[v as usize] = dist[v as usize].min(dist[u as usize] + costs[a]);
        }
    }
    // Nodes that cannot reach the target never enter the path; exclude them so that a dead
    // end cannot offer an "optimal" arc.
    let mut reaches = vec![false; solver.nodes()];
    reaches[solver.target() as usize] = true;
    for _ in 0..solver.nodes() {
        for &(u, v) in arcs {
            if reaches[v as usize] {
                reaches[u as usize] = true;
            }
        }
    }
    let mut z = vec![0.0; arcs.len()];
    let mut node = solver.target();
    while node != solver.source() {
        let arc = (0..arcs.len())
            .find(|&a| {
                let (u, v) = arcs[a];
                v == node
                    && reaches[u as usize]
                    && dist[u as usize] + costs[a] == dist[node as usize]
            })
            .unwrap();
        z[arc] = 1.0;
        node = arcs[arc].0;
    }
    z
}

fn int_costs(rng: &mut StdRng, len: usize, low: i32, high: i32) -> Vec<f32> {
    (0..len)
        .map(|_| rng.random_range(low..=high) as f32)
        .collect()
}

const GRIDS: [(usize, usize); 12] = [
    (1, 2),
    (2, 1),
    (1, 4),
    (4, 1),
    (2, 2),
    (2, 3),
    (3, 2),
    (3, 3),
    (3, 4),
    (4, 3),
    (4, 4),
    (2, 5),
];

#[test]
fn grid_matches_brute_force_with_negative_costs() {
    let mut rng = StdRng::seed_from_u64(21);
    for (rows, cols) in GRIDS {
        let grid = DigraphShortestPath::grid(rows, cols).unwrap();
        assert!(grid.is_acyclic());
        let paths = simple_paths(grid.nodes(), grid.arcs(), grid.source(), grid.target());
        for trial in 0..200 {
            // Narrow ranges make ties common, wide ones make single optima.
            let costs = if trial % 2 == 0 {
                int_costs(&mut rng, grid.arcs().len(), -2, 2)
            } else {
                int_costs(&mut rng, grid.arcs().len(), -50, 50)
            };
            let z = solve(&grid, &costs);
            let context = format!("{rows}×{cols} costs {costs:?}");
            assert_is_path(&grid, &z, &context);
            assert_eq!(dot(&z, &costs), brute_minimum(&paths, &costs), "{context}");
            assert_eq!(z, tie_rule_path(&grid, &costs), "{context}");
            // Every path on the grid has rows + cols − 2 arcs.
            assert_eq!(z.iter().sum::<f32>(), (rows + cols - 2) as f32);
        }
    }
}

/// A random DAG on `nodes` nodes: arcs only go forward in a random permutation of the nodes
/// (so node numbers do not give the topological order away), parallel arcs possible.
fn random_dag(rng: &mut StdRng, nodes: usize) -> Vec<(u32, u32)> {
    let mut rank: Vec<u32> = (0..nodes as u32).collect();
    for i in (1..nodes).rev() {
        rank.swap(i, rng.random_range(0..=i));
    }
    let density = rng.random_range(0.2..0.9);
    let mut arcs = Vec::new();
    for i in 0..nodes {
        for j in i + 1..nodes {
            let copies = if rng.random_bool(0.1) { 2 } else { 1 };
            for _ in 0..copies {
                if rng.random_bool(density) {
                    arcs.push((rank[i], rank[j]));
                }
            }
        }
    }
    // Shuffle the arc order too: the tie rule must follow arc indices, not node numbers.
    for i in (1..arcs.len()).rev() {
        arcs.swap(i, rng.random_range(0..=i));
    }
    arcs
}

#[test]
fn random_dags_match_brute_force_with_negative_costs() {
    let mut rng = StdRng::seed_from_u64(22);
    let (mut solved, mut no_path) = (0, 0);
    // A random source and target have no path about half the time (the arcs' direction).
    for trial in 0..800 {
        let nodes = 2 + trial % 6;
        let arcs = random_dag(&mut rng, nodes);
        let source = rng.random_range(0..nodes as u32);
        let target = (source + rng.random_range(1..nodes as u32)) % nodes as u32;
        let paths = simple_paths(nodes, &arcs, source, target);
        let solver = match DigraphShortestPath::new(nodes, arcs.clone(), source, target) {
            Ok(solver) => solver,
            Err(err) => {
                assert!(paths.is_empty(), "{arcs:?} {source}→{target}: {err}");
                assert!(err.to_string().contains("no path"), "{err}");
                no_path += 1;
                continue;
            }
        };
        assert!(!paths.is_empty());
        assert!(solver.is_acyclic());
        for round in 0..30 {
            let costs = if round % 2 == 0 {
                int_costs(&mut rng, arcs.len(), -2, 2)
            } else {
                int_costs(&mut rng, arcs.len(), -20, 20)
            };
            let z = solve(&solver, &costs);
            let context = format!("{arcs:?} {source}→{target} costs {costs:?}");
            assert_is_path(&solver, &z, &context);
            assert_eq!(dot(&z, &costs), brute_minimum(&paths, &costs), "{context}");
            assert_eq!(z, tie_rule_path(&solver, &costs), "{context}");
        }
        solved += 1;
    }
    assert!(
        solved > 200 && no_path > 10,
        "{solved} solved, {no_path} without a path"
    );
}

/// A random digraph with arcs in both directions (cycles, two-cycles and self-loops likely).
fn random_digraph(rng: &mut StdRng, nodes: usize) -> Vec<(u32, u32)> {
    let density = rng.random_range(0.2..0.6);
    let mut arcs = Vec::new();
    for a in 0..nodes as u32 {
        for b in 0..nodes as u32 {
            if rng.random_bool(if a == b { 0.1 } else { density }) {
                arcs.push((a, b));
            }
        }
    }
    for i in (1..arcs.len()).rev() {
        arcs.swap(i, rng.random_range(0..=i));
    }
    arcs
}

#[test]
fn cyclic_graphs_match_brute_force_with_non_negative_costs() {
    let mut rng = StdRng::seed_from_u64(23);
    let mut cyclic = 0;
    for trial in 0..400 {
        let nodes = 2 + trial % 5;
        let arcs = random_digraph(&mut rng, nodes);
        let (source, target) = (0, nodes as u32 - 1);
        let paths = simple_paths(nodes, &arcs, source, target);
        let Ok(solver) = DigraphShortestPath::new(nodes, arcs.clone(), source, target) else {
            assert!(paths.is_empty());
            continue;
        };
        cyclic += usize::from(!solver.is_acyclic());
        for round in 0..30 {
            // Zeros (of both signs) make zero-cost cycles and ties.
            let mut costs = int_costs(&mut rng, arcs.len(), 0, if round % 2 == 0 { 2 } else { 30 });
            for c in costs.iter_mut() {
                if *c == 0.0 && rng.random_bool(0.5) {
                    *c = -0.0;
                }
            }
            let z = solve(&solver, &costs);
            let context = format!("{arcs:?} costs {costs:?}");
            assert_is_path(&solver, &z, &context);
            assert_eq!(dot(&z, &costs), brute_minimum(&paths, &costs), "{context}");
        }
        // With positive costs every optimal arc's tail settles before its head, so Dijkstra
        // follows the DAG's tie rule exactly (the reference allows cycles: Bellman–Ford).
        for _ in 0..20 {
            let costs = int_costs(&mut rng, arcs.len(), 1, 3);
            let z = solve(&solver, &costs);
            assert_eq!(
                z,
                tie_rule_path(&solver, &costs),
                "{arcs:?} costs {costs:?}"
            );
        }
    }
    assert!(cyclic > 100, "only {cyclic} cyclic graphs");
}

/// Two hand-made graphs with cycles: one on the cheapest path, one beside it.
#[test]
fn cycles_on_and_off_the_path() {
    // 0 → 1 → 2 → 4 with 2 ⇄ 3 hanging off node 2 (3 reaches the target through 2): the
    // cycle is on the way from source to target, so Dijkstra runs, and the path avoids it.
    let beside =
        DigraphShortestPath::new(5, vec![(0, 1), (1, 2), (2, 3), (3, 2), (2, 4)], 0, 4).unwrap();
    assert!(!beside.is_acyclic());
    assert_eq!(
        solve(&beside, &[1.0, 1.0, 0.0, 0.0, 1.0]),
        [1.0, 1.0, 0.0, 0.0, 1.0]
    );
    // The cycle 1 → 2 → 3 → 1, with the cheapest path 0 → 1 → 2 → 3 → 4 through part of it
    // (closing the cycle would revisit node 1).
    let through = DigraphShortestPath::new(
        5,
        vec![(0, 1), (1, 2), (2, 3), (3, 1), (3, 4), (1, 4)],
        0,
        4,
    )
    .unwrap();
    assert!(!through.is_acyclic());
    assert_eq!(
        solve(&through, &[1.0, 1.0, 1.0, 0.0, 1.0, 9.0]),
        [1.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    );
    assert_eq!(
        solve(&through, &[1.0, 1.0, 1.0, 0.0, 1.0, 2.0]),
        [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    );
    // A cycle no source → target walk can use (3 ⇄ 4 is unreachable): the exact DP runs,
    // negative costs included.
    let off =
        DigraphShortestPath::new(5, vec![(0, 1), (1, 2), (3, 4), (4, 3), (0, 2)], 0, 2).unwrap();
    assert!(off.is_acyclic());
    assert_eq!(
        solve(&off, &[-3.0, -3.0, 0.0, 0.0, -5.0]),
        [1.0, 1.0, 0.0, 0.0, 0.0]
    );
}

#[test]
fn cyclic_graphs_follow_the_negative_cost_policy() {
    let mut rng = StdRng::seed_from_u64(24);
    let arcs = vec![(0, 1), (1, 0), (1, 2), (0, 2), (2, 1), (2, 3), (1, 3)];
    let solver = DigraphShortestPath::new(4, arcs.clone(), 0, 3).unwrap();
    assert!(!solver.is_acyclic());
    assert_eq!(solver.negative_costs(), NegativeCosts::ClampPerturbed);
    let paths = simple_paths(4, &arcs, 0, 3);
    let clamp = solver
        .clone()
        .with_negative_costs(NegativeCosts::ClampToZero);
    let strict = solver.clone().with_negative_costs(NegativeCosts::Error);
    for _ in 0..200 {
        let costs = int_costs(&mut rng, arcs.len(), -3, 5);
        let clamped: Vec<f32> = costs.iter().map(|&c| c.max(0.0)).collect();
        // A direct solve call clamps under both lenient policies: the same path as on the
        // clamped costs, which is optimal for them.
        let z = solve(&solver, &costs);
        assert_is_path(&solver, &z, &format!("{costs:?}"));
        assert_eq!(dot(&z, &clamped), brute_minimum(&paths, &clamped));
        assert_eq!(z, solve(&solver, &clamped));
        assert_eq!(z, solve(&clamp, &costs));
        let negative = costs.iter().any(|&c| c < 0.0);
        let mut out = vec![0.0; arcs.len()];
        let result = strict.solve(&costs, &[arcs.len()], &mut out, &mut Default::default());
        assert_eq!(result.is_err(), negative, "{costs:?}");
        if let Err(err) = result {
            let err = err.to_string();
            assert!(
                err.contains("non-negative") && err.contains("NegativeCosts::ClampPerturbed"),
                "{err}"
            );
        }
        // The layer's θ: negative costs are reported under the default and Error.
        assert_eq!(solver.check_theta(&costs, &[arcs.len()]).is_err(), negative);
        assert_eq!(strict.check_theta(&costs, &[arcs.len()]).is_err(), negative);
        assert!(clamp.check_theta(&costs, &[arcs.len()]).is_ok());
    }
    let err = solver
        .check_theta(&[1.0, 1.0, -2.0, 1.0, 1.0, 1.0, 1.0], &[7])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cost -2 at arc 2") && err.contains("NegativeCosts::ClampToZero"),
        "{err}"
    );
    // −0.0 is a zero, not a negative cost.
    assert!(
        strict
            .check_theta(&[1.0, -0.0, 1.0, 1.0, 1.0, 1.0, 1.0], &[7])
            .is_ok()
    );
    // On an acyclic graph the policy is moot: negative θ is exact, never reported.
    let grid = DigraphShortestPath::grid(2, 2)
        .unwrap()
        .with_negative_costs(NegativeCosts::Error);
    assert!(grid.check_theta(&[-1.0, 1.0, 1.0, 1.0], &[4]).is_ok());
    assert_eq!(solve(&grid, &[-1.0, 1.0, 1.0, 1.0]), [1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn grid_arcs_follow_pyepo_order() {
    let grid = DigraphShortestPath::grid(5, 5).unwrap();
    let arcs = grid.arcs();
    assert_eq!((grid.nodes(), arcs.len()), (25, 40));
    assert_eq!((grid.source(), grid.target()), (0, 24));
    assert_eq!(arcs[0], (0, 1));
    assert_eq!(arcs[3], (3, 4));
    assert_eq!(arcs[4], (0, 5)); // the first arc down, after row 0's four arcs east
    assert_eq!(arcs[8], (4, 9));
    assert_eq!(arcs[9], (5, 6)); // row 1 starts
    assert_eq!(arcs[35], (19, 24)); // the last arc down
    assert_eq!(arcs[36], (20, 21)); // the last row: arcs east only
    assert_eq!(arcs[39], (23, 24));
    // The whole order against the formula, on square and non-square grids.
    for (rows, cols) in [(5, 5), (2, 3), (3, 2), (1, 4), (4, 1), (12, 12)] {
        let mut expected = Vec::new();
        for r in 0..rows as u32 {
            for c in 0..cols as u32 - 1 {
                let v = r * cols as u32 + c;
                expected.push((v, v + 1));
            }
            if r + 1 < rows as u32 {
                for c in 0..cols as u32 {
                    let v = r * cols as u32 + c;
                    expected.push((v, v + cols as u32));
                }
            }
        }
        let grid = DigraphShortestPath::grid(rows, cols).unwrap();
        assert_eq!(grid.arcs(), expected.as_slice(), "{rows}×{cols}");
        assert_eq!(grid.arcs().len(), (rows - 1) * cols + (cols - 1) * rows);
        assert_eq!(grid.target() as usize, rows * cols - 1);
    }
    assert_eq!(DigraphShortestPath::grid(12, 12).unwrap().arcs().len(), 264);
}

/// Values with ties and zeros of both signs (integers, so sums are exact).
const SIGNED: [f32; 5] = [-1.0, -0.0, 0.0, 1.0, 2.0];

fn zero_flips(rng: &mut StdRng, values: &[f32]) -> [Vec<f32>; 2] {
    let some = values
        .iter()
        .map(|&v| {
            if v == 0.0 && rng.random_bool(0.5) {
                -v
            } else {
                v
            }
        })
        .collect();
    let all = values
        .iter()
        .map(|&v| if v == 0.0 { -v } else { v })
        .collect();
    [some, all]
}

#[test]
fn the_sign_of_a_zero_never_changes_the_path() {
    let mut rng = StdRng::seed_from_u64(25);
    let mut solvers: Vec<DigraphShortestPath> = GRIDS
        .iter()
        .map(|&(r, c)| DigraphShortestPath::grid(r, c).unwrap())
        .collect();
    while solvers.len() < 60 {
        let nodes = 2 + solvers.len() % 6;
        let arcs = if solvers.len().is_multiple_of(2) {
            random_dag(&mut rng, nodes)
        } else {
            random_digraph(&mut rng, nodes)
        };
        if let Ok(solver) = DigraphShortestPath::new(nodes, arcs, 0, nodes as u32 - 1) {
            solvers.push(solver);
        }
    }
    assert!(solvers.iter().any(|s| !s.is_acyclic()));
    for solver in &solvers {
        for _ in 0..40 {
            let costs: Vec<f32> = (0..solver.arcs().len())
                .map(|_| SIGNED[rng.random_range(0..SIGNED.len())])
                .collect();
            let z = solve(solver, &costs);
            for flipped in zero_flips(&mut rng, &costs) {
                assert_eq!(
                    solve(solver, &flipped),
                    z,
                    "{:?}: {costs:?} vs {flipped:?}",
                    solver.arcs()
                );
            }
        }
    }
    // All zeros, signs mixed: on the grid, the documented tie path.
    let grid = DigraphShortestPath::grid(2, 2).unwrap();
    assert_eq!(solve(&grid, &[-0.0, 0.0, -0.0, 0.0]), [1.0, 0.0, 1.0, 0.0]);
    assert_eq!(solve(&grid, &[0.0, -0.0, 0.0, -0.0]), [1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn ties_follow_the_documented_rule() {
    // 2×2, all equal: arcs (0,1) (0,2) (1,3) (2,3); node 3 is entered by its lower-index
    // arc (1,3), node 1 by (0,1): east, then south.
    let grid = DigraphShortestPath::grid(2, 2).unwrap();
    assert_eq!(solve(&grid, &[1.0; 4]), [1.0, 0.0, 1.0, 0.0]);
    // Any grid with equal costs: along the top row, then down the last column.
    for (rows, cols) in [(3, 3), (5, 5), (2, 4), (4, 2)] {
        let grid = DigraphShortestPath::grid(rows, cols).unwrap();
        let z = solve(&grid, &vec![0.5; grid.arcs().len()]);
        let on_path: Vec<(u32, u32)> = (0..z.len())
            .filter(|&a| z[a] == 1.0)
            .map(|a| grid.arcs()[a])
            .collect();
        let cols32 = cols as u32;
        let mut expected: Vec<(u32, u32)> = (0..cols32 - 1).map(|c| (c, c + 1)).collect();
        expected.extend(
            (0..rows as u32 - 1).map(|r| (r * cols32 + cols32 - 1, (r + 1) * cols32 + cols32 - 1)),
        );
        assert_eq!(on_path, expected, "{rows}×{cols}");
    }
    // Parallel arcs of equal cost: the lower index.
    let parallel = DigraphShortestPath::new(2, vec![(0, 1), (0, 1), (0, 1)], 0, 1).unwrap();
    assert_eq!(solve(&parallel, &[2.0, 1.0, 1.0]), [0.0, 1.0, 0.0]);
    // The same through Dijkstra (a cycle 0 ⇄ 1 makes the graph cyclic).
    let cyclic =
        DigraphShortestPath::new(3, vec![(1, 0), (0, 1), (1, 2), (0, 2), (0, 1)], 0, 2).unwrap();
    assert!(!cyclic.is_acyclic());
    assert_eq!(
        solve(&cyclic, &[1.0, 1.0, 1.0, 2.0, 1.0]),
        [0.0, 1.0, 1.0, 0.0, 0.0]
    );
    // 0 → 2 directly (arc 3) and 0 → 1 → 2 (arcs 4, 2) both cost 1: node 2 is entered by its
    // lower-index optimal arc, 2, and node 1 by arc 4 (arc 1 costs more).
    assert_eq!(
        solve(&cyclic, &[1.0, 1.0, 1.0, 1.0, 0.0]),
        [0.0, 0.0, 1.0, 0.0, 1.0]
    );
    assert_eq!(
        solve(&cyclic, &[1.0, 1.0, 1.0, 0.5, 0.0]),
        [0.0, 0.0, 0.0, 1.0, 0.0]
    );
}

#[test]
fn errors_name_the_problem() {
    let err = |r: candle_core::Result<DigraphShortestPath>| r.unwrap_err().to_string();
    let e = err(DigraphShortestPath::new(3, vec![(0, 1), (1, 2)], 3, 2));
    assert!(
        e.contains("source node 3 is out of range") && e.contains("3 nodes"),
        "{e}"
    );
    let e = err(DigraphShortestPath::new(3, vec![(0, 1), (1, 2)], 0, 7));
    assert!(e.contains("target node 7 is out of range"), "{e}");
    let e = err(DigraphShortestPath::new(3, vec![(0, 1), (1, 5)], 0, 2));
    assert!(e.contains("arc 1 = (1, 5)") && e.contains(">= 3"), "{e}");
    let e = err(DigraphShortestPath::new(3, vec![(0, 1), (1, 2)], 1, 1));
    assert!(e.contains("source = target"), "{e}");
    let e = err(DigraphShortestPath::new(3, vec![(0, 1), (2, 1)], 0, 2));
    assert!(e.contains("no path from node 0 to node 2"), "{e}");
    let e = err(DigraphShortestPath::new(2, vec![], 0, 1));
    assert!(e.contains("no path"), "{e}");
    let e = err(DigraphShortestPath::grid(1, 1));
    assert!(e.contains("1×1 grid"), "{e}");
    assert!(DigraphShortestPath::grid(0, 3).is_err());
    assert!(DigraphShortestPath::grid(3, 0).is_err());
    assert!(DigraphShortestPath::grid(1, 2).is_ok() && DigraphShortestPath::grid(2, 1).is_ok());

    // θ of the wrong length, in check_instance and in solve, for both algorithms.
    let grid = DigraphShortestPath::grid(5, 5).unwrap();
    let cyclic = DigraphShortestPath::new(2, vec![(0, 1), (1, 0)], 0, 1).unwrap();
    for (solver, arcs) in [(&grid, 40), (&cyclic, 2)] {
        let e = solver.check_instance(&[arcs + 1]).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{arcs} arcs"))
                && e.contains(&format!("{} costs", arcs + 1))
                && e.contains("one cost per arc"),
            "{e}"
        );
        assert!(solver.check_instance(&[arcs]).is_ok());
        let theta = vec![1.0; arcs - 1];
        let mut z = vec![0.0; arcs - 1];
        let e = solver
            .solve(&theta, &[arcs - 1], &mut z, &mut Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{arcs} arcs"))
                && e.contains(&format!("{} costs", arcs - 1))
                && e.contains("one cost per arc"),
            "{e}"
        );
        // A shape that claims the right size over θ that is not.
        let e = solver
            .solve(&theta, &[arcs], &mut z, &mut Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("one cost per arc"), "{e}");
    }

    // Non-finite costs, called directly: an error, never a path. Under every policy.
    for policy in [
        NegativeCosts::ClampPerturbed,
        NegativeCosts::ClampToZero,
        NegativeCosts::Error,
    ] {
        for (solver, arcs) in [(&grid, 40), (&cyclic, 2)] {
            let solver = solver.clone().with_negative_costs(policy);
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut theta = vec![1.0; arcs];
                theta[1] = bad;
                let mut z = vec![0.0; arcs];
                let e = solver
                    .solve(&theta, &[arcs], &mut z, &mut Default::default())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("at arc 1") && e.contains("finite"), "{e}");
            }
        }
    }
    // Finite costs whose path sum overflows f32.
    let chain = DigraphShortestPath::new(3, vec![(0, 1), (1, 2)], 0, 2).unwrap();
    let mut z = [0.0; 2];
    let e = chain
        .solve(&[3e38, 3e38], &[2], &mut z, &mut Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("overflows"), "{e}");
    let e = chain
        .solve(&[-3e38, -3e38], &[2], &mut z, &mut Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("overflows"), "{e}");
    let e = cyclic
        .clone()
        .solve(&[f32::MAX, 0.0], &[2], &mut z, &mut Default::default())
        .map(|()| "no error".to_string())
        .unwrap();
    assert_eq!(e, "no error"); // f32::MAX itself is a finite path cost
}

#[test]
fn pyepo_grid_trains_through_an_imle_layer() -> candle_core::Result<()> {
    let cpu = &Device::Cpu;
    let grid = DigraphShortestPath::grid(5, 5)?;
    // PyEPO's implicitMLE defaults: Sum-of-Gamma with κ = 5, S = 10, λ = 10.
    let config = ImleConfig::new(Noise::SumOfGamma { k: 5.0, terms: 10 })
        .with_sense(Sense::Minimize)
        .with_samples(10)?
        .with_lambda(10.0)?;
    let layer = ImleLayer::new(grid, config)?;
    let batch = 8;
    // Costs as PyEPO's generator makes them at deg 1 with noise: around 1, some below 0.
    let theta = (Tensor::randn(0f32, 0.5, (batch, 40), cpu)? + 1.0)?;
    let theta = Var::from_tensor(&theta)?;
    let z = layer.forward(theta.as_tensor())?;
    assert_eq!(z.dims(), &[batch * 10, 40]);
    for row in z.to_vec2::<f32>()? {
        assert_eq!(row.iter().sum::<f32>(), 8.0); // 4 east + 4 south on every path
    }
    // Every path has 8 arcs, so a loss that weighs all arcs alike has a zero I-MLE gradient
    // (the target's shift moves every path's cost equally): weigh them differently.
    let weights = Tensor::randn(0f32, 1.0, (batch * 10, 40), cpu)?;
    let loss = (z * weights)?.sum_all()?;
    let grads = loss.backward()?;
    let gradient = grads.get(&theta).expect("θ has a gradient");
    assert_eq!(gradient.dims(), &[batch, 40]);
    assert!(gradient.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
    // Evaluation: MAP(θ), one path per instance.
    let map = layer.map(theta.as_tensor())?;
    assert_eq!(map.dims(), &[batch, 40]);
    Ok(())
}
