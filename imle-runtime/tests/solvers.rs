//! Built-in solvers against brute force on small instances.

use imle_runtime::{
    Argmax, GridShortestPath, MapSolver, MaxSpanningTree, NegativeCosts, Neighbourhood, TopK,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn solve<S: MapSolver>(solver: &S, theta: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut z = vec![0.0; theta.len()];
    solver
        .solve(theta, shape, &mut z, &mut S::Scratch::default())
        .unwrap();
    z
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// All 0/1 vectors of length n with exactly k ones.
fn subsets(n: usize, k: usize) -> Vec<Vec<f32>> {
    (0u32..1 << n)
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..n).map(|i| ((mask >> i) & 1) as f32).collect())
        .collect()
}

#[test]
fn top_k_maximises_over_all_subsets() {
    let mut rng = StdRng::seed_from_u64(1);
    for trial in 0..200 {
        let n = 1 + trial % 9;
        let k = 1 + (trial / 9) % n;
        // Coarse values so that ties happen often.
        let theta: Vec<f32> = (0..n).map(|_| rng.random_range(0..4) as f32).collect();
        let z = solve(&TopK::new(k).unwrap(), &theta, &[n]);
        let best = subsets(n, k)
            .iter()
            .map(|s| dot(s, &theta))
            .fold(f32::MIN, f32::max);
        assert_eq!(z.iter().sum::<f32>(), k as f32);
        assert_eq!(dot(&z, &theta), best, "theta {theta:?} k {k}");
        // Ties to the lowest index: the chosen set is the lexicographically first optimum
        // when read as "prefer lower indices".
        let threshold = theta
            .iter()
            .zip(&z)
            .filter(|(_, zi)| **zi == 1.0)
            .map(|(t, _)| *t)
            .fold(f32::MAX, f32::min);
        let last_chosen_at_threshold = (0..n)
            .filter(|&i| z[i] == 1.0 && theta[i] == threshold)
            .max()
            .unwrap();
        assert!(
            (0..last_chosen_at_threshold).all(|i| theta[i] != threshold || z[i] == 1.0),
            "tie not broken by lowest index: theta {theta:?} z {z:?}"
        );
    }
}

#[test]
fn top_k_rejects_k_larger_than_the_instance() {
    let err = TopK::new(4).unwrap().check_instance(&[3]).unwrap_err();
    assert!(err.to_string().contains("k = 4"), "{err}");
}

#[test]
fn argmax_picks_the_first_maximum() {
    assert_eq!(
        solve(&Argmax, &[1.0, 3.0, 3.0, 2.0], &[4]),
        [0.0, 1.0, 0.0, 0.0]
    );
}

/// Minimum vertex-cost path by Bellman–Ford relaxation (slow but obviously right).
fn brute_shortest_cost(costs: &[f32], h: usize, w: usize, eight: bool) -> f32 {
    let mut dist = vec![f32::INFINITY; h * w];
    dist[0] = costs[0];
    for _ in 0..h * w {
        for cell in 0..h * w {
            let (r, c) = ((cell / w) as isize, (cell % w) as isize);
            for dr in -1isize..=1 {
                for dc in -1isize..=1 {
                    let diagonal = dr != 0 && dc != 0;
                    if (dr == 0 && dc == 0) || (diagonal && !eight) {
                        continue;
                    }
                    let (nr, nc) = (r + dr, c + dc);
                    if nr < 0 || nc < 0 || nr >= h as isize || nc >= w as isize {
                        continue;
                    }
                    let next = nr as usize * w + nc as usize;
                    dist[next] = dist[next].min(dist[cell] + costs[next]);
                }
            }
        }
    }
    dist[h * w - 1]
}

/// The mask is a connected path from the first to the last cell (every chosen cell but the
/// ends has a chosen neighbour before and after it: checked as connectivity).
fn is_connected_path(z: &[f32], h: usize, w: usize, eight: bool) -> bool {
    let mut seen = vec![false; h * w];
    let mut stack = vec![0usize];
    if z[0] != 1.0 {
        return false;
    }
    seen[0] = true;
    while let Some(cell) = stack.pop() {
        let (r, c) = ((cell / w) as isize, (cell % w) as isize);
        for dr in -1isize..=1 {
            for dc in -1isize..=1 {
                if (dr == 0 && dc == 0) || (dr != 0 && dc != 0 && !eight) {
                    continue;
                }
                let (nr, nc) = (r + dr, c + dc);
                if nr < 0 || nc < 0 || nr >= h as isize || nc >= w as isize {
                    continue;
                }
                let next = nr as usize * w + nc as usize;
                if z[next] == 1.0 && !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
    }
    seen[h * w - 1]
}

#[test]
fn grid_shortest_path_is_optimal_and_connected() {
    let mut rng = StdRng::seed_from_u64(2);
    for trial in 0..100 {
        let (h, w) = (1 + trial % 6, 1 + (trial / 6) % 7);
        let eight = trial % 2 == 0;
        let neighbourhood = if eight {
            Neighbourhood::Eight
        } else {
            Neighbourhood::Four
        };
        let costs: Vec<f32> = (0..h * w).map(|_| rng.random_range(0.0..10.0f32)).collect();
        let z = solve(&GridShortestPath::new(neighbourhood), &costs, &[h, w]);
        let optimum = brute_shortest_cost(&costs, h, w, eight);
        assert!((dot(&z, &costs) - optimum).abs() <= 1e-4 * optimum.max(1.0));
        assert!(is_connected_path(&z, h, w, eight));
    }
}

#[test]
fn grid_shortest_path_rejects_bad_costs_and_shapes() {
    let solver = GridShortestPath::new(Neighbourhood::Eight);
    let mut z = vec![0.0; 4];
    let mut scratch = Default::default();
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        let err = solver
            .solve(&[1.0, bad, 1.0, 1.0], &[2, 2], &mut z, &mut scratch)
            .unwrap_err();
        assert!(err.to_string().contains("cost"), "{err}");
    }
    assert!(solver.check_instance(&[4]).is_err());
    let lenient = solver.with_negative_costs(NegativeCosts::ClampToZero);
    assert!(lenient.check_instance(&[2, 2]).is_ok());
    assert!(
        lenient
            .solve(&[1.0, f32::NAN, 1.0, 1.0], &[2, 2], &mut z, &mut scratch)
            .is_err()
    );
}

#[test]
fn spanning_tree_is_a_maximum_spanning_tree() {
    let mut rng = StdRng::seed_from_u64(3);
    let vertices = 5;
    // K5 minus a few edges keeps it connected and small enough to enumerate (2^8 subsets).
    let edges = vec![
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 0),
        (0, 2),
        (1, 3),
        (2, 4),
    ];
    let tree = MaxSpanningTree::new(vertices, edges.clone()).unwrap();
    for _ in 0..50 {
        let weights: Vec<f32> = (0..edges.len())
            .map(|_| rng.random_range(0..5) as f32)
            .collect();
        let z = solve(&tree, &weights, &[edges.len()]);
        let is_spanning_tree = |mask: &[f32]| {
            if mask.iter().sum::<f32>() != (vertices - 1) as f32 {
                return false;
            }
            let mut component: Vec<usize> = (0..vertices).collect();
            for (e, &(a, b)) in edges.iter().enumerate() {
                if mask[e] == 1.0 {
                    let (ca, cb) = (component[a as usize], component[b as usize]);
                    if ca == cb {
                        return false;
                    }
                    component.iter_mut().for_each(|c| {
                        if *c == cb {
                            *c = ca
                        }
                    });
                }
            }
            true
        };
        let best = (0u32..1 << edges.len())
            .map(|m| {
                (0..edges.len())
                    .map(|i| ((m >> i) & 1) as f32)
                    .collect::<Vec<_>>()
            })
            .filter(|mask| is_spanning_tree(mask))
            .map(|mask| dot(&mask, &weights))
            .fold(f32::MIN, f32::max);
        assert!(is_spanning_tree(&z));
        assert_eq!(dot(&z, &weights), best);
    }
}

#[test]
fn spanning_tree_checks_its_instances() {
    let tree = MaxSpanningTree::new(3, vec![(0, 1), (1, 2)]).unwrap();
    assert!(tree.check_instance(&[3]).is_err());
    assert!(tree.check_instance(&[2]).is_ok());
}
