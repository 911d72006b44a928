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
    let strict = solver.with_negative_costs(NegativeCosts::Error);
    let mut z = vec![0.0; 4];
    let mut scratch = Default::default();
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        let err = strict
            .solve(&[1.0, bad, 1.0, 1.0], &[2, 2], &mut z, &mut scratch)
            .unwrap_err();
        assert!(err.to_string().contains("cost"), "{err}");
    }
    assert!(solver.check_instance(&[4]).is_err());
    // Called directly, the default and ClampToZero clamp a negative cost (a solve call
    // cannot tell θ from its perturbation; the layer checks θ through check_theta).
    for policy in [NegativeCosts::ClampPerturbed, NegativeCosts::ClampToZero] {
        let lenient = solver.with_negative_costs(policy);
        assert!(lenient.check_instance(&[2, 2]).is_ok());
        lenient
            .solve(&[1.0, -1.0, 1.0, 1.0], &[2, 2], &mut z, &mut scratch)
            .unwrap();
        for bad in [f32::NAN, f32::INFINITY] {
            assert!(
                lenient
                    .solve(&[1.0, bad, 1.0, 1.0], &[2, 2], &mut z, &mut scratch)
                    .is_err()
            );
        }
    }
    // The layer's θ: negative costs are errors except under ClampToZero.
    assert!(solver.check_theta(&[1.0, -1.0, 1.0, 1.0], &[2, 2]).is_err());
    assert!(strict.check_theta(&[1.0, -1.0, 1.0, 1.0], &[2, 2]).is_err());
    assert!(solver.check_theta(&[1.0, -0.0, 1.0, 1.0], &[2, 2]).is_ok());
    let clamp = solver.with_negative_costs(NegativeCosts::ClampToZero);
    assert!(clamp.check_theta(&[1.0, -1.0, 1.0, 1.0], &[2, 2]).is_ok());
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

// ---------------------------------------------------------------------------------------
// Signed zeros: every built-in compares values numerically, so −0.0 = +0.0 (issue #12 §1).

/// Values with many ties and zeros of both signs.
const TINY: [f32; 4] = [-1.0, -0.0, 0.0, 1.0];

fn tiny_values(rng: &mut StdRng, len: usize, set: &[f32]) -> Vec<f32> {
    (0..len)
        .map(|_| set[rng.random_range(0..set.len())])
        .collect()
}

/// `values` with the sign of some of its zeros flipped (each with probability 1/2), and with
/// the sign of all of them flipped.
fn zero_flips(rng: &mut StdRng, values: &[f32]) -> [Vec<f32>; 2] {
    let flip_some = values
        .iter()
        .map(|&v| {
            if v == 0.0 && rng.random_bool(0.5) {
                -v
            } else {
                v
            }
        })
        .collect();
    let flip_all = values
        .iter()
        .map(|&v| if v == 0.0 { -v } else { v })
        .collect();
    [flip_some, flip_all]
}

/// Checks that flipping the sign of zeros in θ never changes `solver`'s solution.
fn assert_zero_sign_blind<S: MapSolver>(
    rng: &mut StdRng,
    solver: &S,
    theta: &[f32],
    shape: &[usize],
) {
    let z = solve(solver, theta, shape);
    for flipped in zero_flips(rng, theta) {
        assert_eq!(
            solve(solver, &flipped, shape),
            z,
            "{}: θ {theta:?} vs {flipped:?}",
            solver.name()
        );
    }
}

#[test]
fn top_k_and_argmax_ignore_the_sign_of_zeros() {
    let mut rng = StdRng::seed_from_u64(12);
    for trial in 0..500 {
        let n = 1 + trial % 12;
        let theta = tiny_values(&mut rng, n, &TINY);
        assert_zero_sign_blind(&mut rng, &Argmax, &theta, &[n]);
        for k in 1..=n {
            assert_zero_sign_blind(&mut rng, &TopK::new(k).unwrap(), &theta, &[n]);
        }
    }
}

#[test]
fn top_1_is_argmax() {
    let mut rng = StdRng::seed_from_u64(13);
    for trial in 0..2000 {
        let n = 1 + trial % 16;
        // Mostly the tiny set (ties, signed zeros), sometimes uniform values.
        let theta = if trial % 4 == 3 {
            (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
        } else {
            tiny_values(&mut rng, n, &TINY)
        };
        assert_eq!(
            solve(&TopK::new(1).unwrap(), &theta, &[n]),
            solve(&Argmax, &theta, &[n]),
            "θ {theta:?}"
        );
    }
}

/// Issue #12 §1: TopK(1) picked index 1 on θ = [−0.0, +0.0], Argmax index 0.
#[test]
fn top_1_and_argmax_agree_on_signed_zeros() {
    let theta = [-0.0f32, 0.0];
    assert_eq!(solve(&Argmax, &theta, &[2]), [1.0, 0.0]);
    assert_eq!(solve(&TopK::new(1).unwrap(), &theta, &[2]), [1.0, 0.0]);
    assert_eq!(
        solve(&TopK::new(1).unwrap(), &[0.0, -0.0], &[2]),
        [1.0, 0.0]
    );
}

/// Issue #12 §1: on a 2×2 grid with costs [−0, −0, 5, 1] the path went through the 5
/// (cost 6): −0.0's bits sorted it after every positive distance in the heap.
#[test]
fn grid_shortest_path_with_negative_zero_costs() {
    let solver = GridShortestPath::new(Neighbourhood::Four);
    let z = solve(&solver, &[-0.0, -0.0, 5.0, 1.0], &[2, 2]);
    assert_eq!(z, [1.0, 1.0, 0.0, 1.0]);
    // The same with +0.0, and under the other policies and neighbourhood.
    assert_eq!(solve(&solver, &[0.0, 0.0, 5.0, 1.0], &[2, 2]), z);
    let clamping = solver.with_negative_costs(NegativeCosts::ClampToZero);
    assert_eq!(solve(&clamping, &[-0.0, -0.0, 5.0, 1.0], &[2, 2]), z);
    let eight = GridShortestPath::new(Neighbourhood::Eight);
    assert_eq!(
        solve(
            &eight,
            &[-0.0, 5.0, 5.0, -0.0, 9.0, 5.0, 5.0, -0.0, 1.0],
            &[3, 3]
        ),
        [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    );
}

#[test]
fn grid_shortest_path_ignores_the_sign_of_zeros() {
    let mut rng = StdRng::seed_from_u64(14);
    for trial in 0..400 {
        let (h, w) = (1 + trial % 5, 1 + (trial / 5) % 5);
        let eight = trial % 2 == 0;
        let neighbourhood = if eight {
            Neighbourhood::Eight
        } else {
            Neighbourhood::Four
        };
        let costs = tiny_values(&mut rng, h * w, &[-0.0, 0.0, 1.0, 2.0]);
        let solver = GridShortestPath::new(neighbourhood);
        assert_zero_sign_blind(&mut rng, &solver, &costs, &[h, w]);
        let z = solve(&solver, &costs, &[h, w]);
        let optimum = brute_shortest_cost(&costs, h, w, eight);
        assert_eq!(dot(&z, &costs), optimum, "costs {costs:?}");
        assert!(is_connected_path(&z, h, w, eight));
    }
}

#[test]
fn spanning_tree_ignores_the_sign_of_zeros() {
    let mut rng = StdRng::seed_from_u64(15);
    let edges = vec![(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (1, 3)];
    let tree = MaxSpanningTree::new(4, edges.clone()).unwrap();
    for _ in 0..300 {
        let weights = tiny_values(&mut rng, edges.len(), &TINY);
        assert_zero_sign_blind(&mut rng, &tree, &weights, &[edges.len()]);
    }
    // A square 0-1-2-3: the three zeros tie and the lowest edge indices win, whatever their
    // signs (total_cmp put −0 below +0 and kept edge 3).
    let square = MaxSpanningTree::new(4, vec![(0, 1), (1, 2), (2, 3), (3, 0)]).unwrap();
    assert_eq!(
        solve(&square, &[-0.0, -0.0, 0.0, 0.0], &[4]),
        [1.0, 1.0, 1.0, 0.0]
    );
}
