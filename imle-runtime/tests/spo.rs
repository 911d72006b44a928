//! The SPO+ loss (`imle_runtime::spo`): hand-computed values and gradients in both senses,
//! non-negativity, zero at ĉ = c, the subgradient inequality, errors. The short training run
//! on PyEPO's data is in the root crate's `tests/estimators_on_pyepo_data.rs`.

use candle_core::{DType, Device, Result, Tensor, Var};
use imle_runtime::loss::Reduction;
use imle_runtime::spo::SpoPlus;
use imle_runtime::{Argmax, DigraphShortestPath, MapSolver, Sense, Solver, TopK};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn cpu() -> Device {
    Device::Cpu
}

/// The solver's solutions for every row of `theta` `[B, d]`.
fn solve<S: Solver>(solver: &S, theta: &Tensor) -> Result<Tensor> {
    let (batch, d) = theta.dims2()?;
    let values = theta.flatten_all()?.to_vec1::<f32>()?;
    let mut z = vec![0.0f32; batch * d];
    solver.solve_rows(
        &[d],
        &|row, input| input.copy_from_slice(&values[row * d..][..d]),
        &mut z,
    )?;
    Tensor::from_vec(z, (batch, d), &cpu())
}

/// The per-instance losses and the gradient of their sum.
fn loss_and_grad<S: Solver>(
    spo: &SpoPlus<S>,
    c_hat: &Tensor,
    c: &Tensor,
    w: &Tensor,
) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    let c_hat = Var::from_tensor(c_hat)?;
    let losses = spo.loss(c_hat.as_tensor(), c, w, Reduction::None)?;
    let grad = losses.sum_all()?.backward()?;
    let grad = grad.get(&c_hat).unwrap().to_vec2::<f32>()?;
    Ok((losses.to_vec1::<f32>()?, grad))
}

#[test]
fn hand_example_maximise_with_argmax() -> Result<()> {
    // ℓ = (2ĉ − c)·(w̃ − w*), w̃ = argmax (2ĉ − c)·w, gradient 2(w̃ − w*).
    let c = Tensor::new(
        &[[0f32, 1.0, 2.0], [3.0, 1.0, 0.0], [1.0, 2.0, 0.0]],
        &cpu(),
    )?;
    let w = Tensor::new(
        &[[0f32, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        &cpu(),
    )?;
    let c_hat = [
        // 2ĉ − c = [4, 1, −2], w̃ = e0: ℓ = 4 − (−2) = 6, gradient 2(e0 − e2).
        [2f32, 1.0, 0.0],
        // 2ĉ − c = [−1, 1, 0], w̃ = e1: ℓ = 1 − (−1) = 2, gradient 2(e1 − e0).
        [1.0, 1.0, 0.0],
        // 2ĉ − c = [0, 1, 0], w̃ = e1 = w*: ℓ = 0, gradient 0.
        [0.5, 1.5, 0.0],
    ];
    let spo = SpoPlus::new(Argmax, Sense::Maximize);
    let c_hat = Tensor::new(&c_hat, &cpu())?;
    let (losses, grad) = loss_and_grad(&spo, &c_hat, &c, &w)?;
    assert_eq!(losses, [6.0, 2.0, 0.0]);
    assert_eq!(grad, [[2.0, 0.0, -2.0], [-2.0, 2.0, 0.0], [0.0, 0.0, 0.0]]);
    // The reductions, and their gradients.
    let c_hat = Var::from_tensor(&c_hat)?;
    for (reduction, value, scale) in [
        (Reduction::Sum, 8.0, 1.0),
        (Reduction::Mean, 8.0 / 3.0, 1.0 / 3.0),
        (Reduction::InstanceMean, 8.0 / 3.0, 1.0 / 3.0),
    ] {
        let loss = spo.loss(c_hat.as_tensor(), &c, &w, reduction)?;
        assert_eq!(loss.dims(), &[] as &[usize]);
        assert_eq!(loss.to_scalar::<f32>()?, value as f32, "{reduction:?}");
        let g = loss.backward()?.get(&c_hat).unwrap().to_vec2::<f32>()?;
        assert_eq!(g[0], [2.0 * scale, 0.0, -2.0 * scale], "{reduction:?}");
    }
    Ok(())
}

#[test]
fn hand_example_minimise_with_shortest_paths() -> Result<()> {
    // The 2×2 grid: arcs a0 = (0,1), a1 = (0,2), a2 = (1,3), a3 = (2,3). Two paths:
    // top = {a0, a2} = [1,0,1,0], left = {a1, a3} = [0,1,0,1].
    // ℓ = −min_w (2ĉ − c)·w + 2ĉ·w* − c·w* = (2ĉ − c)·(w* − w̃), gradient 2(w* − w̃).
    let grid = DigraphShortestPath::grid(2, 2)?;
    let c = Tensor::new(
        &[
            [1f32, 2.0, 1.0, 2.0],
            [2.0, 1.0, 2.0, 1.0],
            [1.0, 1.0, 1.0, 1.0],
        ],
        &cpu(),
    )?;
    let w = solve(&grid, &c)?;
    // Top (2 < 4), left (2 < 4), top (a tie: the solver takes the top row).
    assert_eq!(
        w.to_vec2::<f32>()?,
        [
            [1.0, 0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0, 1.0],
            [1.0, 0.0, 1.0, 0.0]
        ]
    );
    let c_hat = [
        // 2ĉ − c = [5, 0, 5, 0]: top 10, left 0, w̃ = left.
        // ℓ = −0 + 2ĉ·w* − c·w* = 2·6 − 2 = 10; gradient 2(top − left).
        [3f32, 1.0, 3.0, 1.0],
        // 2ĉ − c = [0, 1, 0, 1]: top 0, left 2, w̃ = top.
        // ℓ = −0 + 2·2 − 2 = 2; gradient 2(left − top).
        [1.0, 1.0, 1.0, 1.0],
        // ĉ = c: w̃ = w* = top, ℓ = 0, gradient 0.
        [1.0, 1.0, 1.0, 1.0],
    ];
    let spo = SpoPlus::new(grid, Sense::Minimize);
    let c_hat = Tensor::new(&c_hat, &cpu())?;
    let (losses, grad) = loss_and_grad(&spo, &c_hat, &c, &w)?;
    assert_eq!(losses, [10.0, 2.0, 0.0]);
    assert_eq!(
        grad,
        [
            [2.0, -2.0, 2.0, -2.0],
            [-2.0, 2.0, -2.0, 2.0],
            [0.0, 0.0, 0.0, 0.0]
        ]
    );
    Ok(())
}

#[test]
fn the_maximising_loss_is_the_minimising_loss_of_the_negated_costs() -> Result<()> {
    // max_w c·w = −min_w (−c)·w: SPO+ of (ĉ, c) with a maximiser equals SPO+ of (−ĉ, −c) with
    // the same feasible set minimised. TopK(2) minimised is TopK(2) on the negated input.
    struct BottomK(TopK);
    impl MapSolver for BottomK {
        type Scratch = ();
        fn name(&self) -> &str {
            "bottom-k"
        }
        fn solve(&self, theta: &[f32], shape: &[usize], z: &mut [f32], _: &mut ()) -> Result<()> {
            let negated: Vec<f32> = theta.iter().map(|t| -t).collect();
            self.0.solve(&negated, shape, z, &mut Default::default())
        }
    }
    let mut rng = StdRng::seed_from_u64(3);
    let mut normal = |b: usize, d: usize| -> Result<Tensor> {
        let v: Vec<f32> = (0..b * d).map(|_| rng.sample(StandardNormal)).collect();
        Tensor::from_vec(v, (b, d), &cpu())
    };
    let (c, c_hat) = (normal(16, 6)?, normal(16, 6)?);
    let top = TopK::new(2)?;
    let w = solve(&top, &c)?;
    let max = SpoPlus::new(top, Sense::Maximize);
    let min = SpoPlus::new(BottomK(TopK::new(2)?), Sense::Minimize);
    let a = max
        .loss(&c_hat, &c, &w, Reduction::None)?
        .to_vec1::<f32>()?;
    let b = min
        .loss(&c_hat.neg()?, &c.neg()?, &w, Reduction::None)?
        .to_vec1::<f32>()?;
    assert_eq!(a, b);
    // The gradients differ by the sign of the chain rule through −ĉ.
    let v = Var::from_tensor(&c_hat)?;
    let ga = max
        .loss(v.as_tensor(), &c, &w, Reduction::Sum)?
        .backward()?;
    let gb = min
        .loss(&v.as_tensor().neg()?, &c.neg()?, &w, Reduction::Sum)?
        .backward()?;
    assert_eq!(
        ga.get(&v).unwrap().to_vec2::<f32>()?,
        gb.get(&v).unwrap().to_vec2::<f32>()?
    );
    Ok(())
}

/// A per-instance loss `ĉ ↦ ℓ` `[B]` with its name and `(B, d)`.
type Case = (
    &'static str,
    Box<dyn Fn(&Tensor) -> Result<Tensor>>,
    (usize, usize),
);

/// Random problems for the subgradient test, one per sense.
fn random_cases(rng: &mut StdRng) -> Result<Vec<Case>> {
    let b = 32;
    let d = 8;
    let v: Vec<f32> = (0..b * d).map(|_| rng.sample(StandardNormal)).collect();
    let c = Tensor::from_vec(v, (b, d), &cpu())?;
    let top = TopK::new(3)?;
    let w = solve(&top, &c)?;
    let spo = SpoPlus::new(top, Sense::Maximize);
    let maximise: Case = (
        "top-3, maximise",
        Box::new(move |h| spo.loss(h, &c, &w, Reduction::None)),
        (b, d),
    );
    // The 3×4 grid has 17 arcs.
    let grid = DigraphShortestPath::grid(3, 4)?;
    let d = 17;
    let v: Vec<f32> = (0..b * d).map(|_| rng.random_range(0.0..2.0)).collect();
    let c = Tensor::from_vec(v, (b, d), &cpu())?;
    let w = solve(&grid, &c)?;
    let spo = SpoPlus::new(grid, Sense::Minimize);
    let minimise: Case = (
        "3×4 grid shortest path, minimise",
        Box::new(move |h| spo.loss(h, &c, &w, Reduction::None)),
        (b, d),
    );
    Ok(vec![maximise, minimise])
}

/// The per-instance losses at ĉ = c (checked to be 0) and at 5 random ĉ ~ N(0, 1).
fn losses_at_random_predictions<S: Solver>(
    spo: &SpoPlus<S>,
    c: &Tensor,
    rng: &mut StdRng,
) -> Result<Vec<f32>> {
    let w = solve(spo.solver(), c)?;
    let at_truth = spo.loss(c, c, &w, Reduction::None)?.to_vec1::<f32>()?;
    assert!(at_truth.iter().all(|&l| l == 0.0), "at ĉ = c: {at_truth:?}");
    let mut all = Vec::new();
    for _ in 0..5 {
        let h: Vec<f32> = (0..c.elem_count())
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let h = Tensor::from_vec(h, c.dims(), &cpu())?;
        all.extend(spo.loss(&h, c, &w, Reduction::None)?.to_vec1::<f32>()?);
    }
    Ok(all)
}

#[test]
fn the_loss_is_non_negative_and_zero_at_the_true_costs_in_both_senses() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(11);
    let normal = |b: usize, d: usize, rng: &mut StdRng| -> Result<Tensor> {
        let v: Vec<f32> = (0..b * d).map(|_| rng.sample(StandardNormal)).collect();
        Tensor::from_vec(v, (b, d), &cpu())
    };
    let c = normal(64, 10, &mut rng)?;
    let maximise =
        losses_at_random_predictions(&SpoPlus::new(TopK::new(4)?, Sense::Maximize), &c, &mut rng)?;
    // A 4×4 grid has 24 arcs; costs may be negative (the grid is acyclic).
    let c = normal(64, 24, &mut rng)?;
    let minimise = losses_at_random_predictions(
        &SpoPlus::new(DigraphShortestPath::grid(4, 4)?, Sense::Minimize),
        &c,
        &mut rng,
    )?;
    for (sense, losses) in [("maximise", maximise), ("minimise", minimise)] {
        assert!(losses.iter().all(|&l| l >= 0.0), "{sense}: {losses:?}");
        assert!(losses.iter().any(|&l| l > 0.0), "{sense}: all zero");
    }
    Ok(())
}

#[test]
fn the_gradient_is_a_subgradient() -> Result<()> {
    // SPO+ is convex in ĉ: ℓ(ĉ + δ) ≥ ℓ(ĉ) + ⟨∂ℓ(ĉ), δ⟩ for every δ.
    let mut rng = StdRng::seed_from_u64(5);
    for (name, loss, (b, d)) in random_cases(&mut rng)? {
        let mut checked = 0;
        for _ in 0..10 {
            let h: Vec<f32> = (0..b * d).map(|_| rng.sample(StandardNormal)).collect();
            let var = Var::from_tensor(&Tensor::from_vec(h.clone(), (b, d), &cpu())?)?;
            let base = loss(var.as_tensor())?;
            let grad = base.sum_all()?.backward()?;
            let grad = grad.get(&var).unwrap().flatten_all()?.to_vec1::<f32>()?;
            let base = base.to_vec1::<f32>()?;
            for scale in [1e-3f32, 1e-2, 0.1, 1.0] {
                let moved: Vec<f32> = h
                    .iter()
                    .map(|&x| x + scale * rng.sample::<f32, _>(StandardNormal))
                    .collect();
                let after =
                    loss(&Tensor::from_vec(moved.clone(), (b, d), &cpu())?)?.to_vec1::<f32>()?;
                for i in 0..b {
                    let inner: f64 = (0..d)
                        .map(|j| {
                            let k = i * d + j;
                            grad[k] as f64 * (moved[k] as f64 - h[k] as f64)
                        })
                        .sum();
                    let bound = base[i] as f64 + inner - 1e-5;
                    assert!(
                        after[i] as f64 >= bound,
                        "{name}, instance {i}, scale {scale}: ℓ(ĉ + δ) = {} < ℓ(ĉ) + ⟨g, δ⟩ = {}",
                        after[i],
                        bound + 1e-5
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 10 * 4 * b);
    }
    Ok(())
}

#[test]
fn other_float_dtypes_are_computed_in_f32_and_returned_in_their_own() -> Result<()> {
    let c = Tensor::new(&[[0f64, 1.0, 2.0]], &cpu())?;
    let w = Tensor::new(&[[0f32, 0.0, 1.0]], &cpu())?;
    let c_hat = Var::new(&[[2f64, 1.0, 0.0]], &cpu())?;
    let spo = SpoPlus::new(Argmax, Sense::Maximize);
    let loss = spo.loss(c_hat.as_tensor(), &c, &w, Reduction::Sum)?;
    assert_eq!(loss.dtype(), DType::F64);
    assert_eq!(loss.to_scalar::<f64>()?, 6.0);
    let grad = loss.backward()?.get(&c_hat).unwrap().to_vec2::<f64>()?;
    assert_eq!(grad, [[2.0, 0.0, -2.0]]);
    Ok(())
}

#[test]
fn bad_inputs_are_errors_that_name_the_problem() -> Result<()> {
    let spo = SpoPlus::new(Argmax, Sense::Maximize);
    let ok = Tensor::new(&[[0f32, 1.0, 2.0]], &cpu())?;
    let w = Tensor::new(&[[0f32, 0.0, 1.0]], &cpu())?;
    let err = |r: Result<Tensor>| r.unwrap_err().to_string();

    // Rank.
    let flat = Tensor::new(&[0f32, 1.0, 2.0], &cpu())?;
    let e = err(spo.loss(&flat, &ok, &w, Reduction::Sum));
    assert!(
        e.contains("c_hat must have rank >= 2") && e.contains("[3]"),
        "{e}"
    );
    let e = err(spo.loss(&ok, &flat, &w, Reduction::Sum));
    assert!(e.contains("c must have rank >= 2"), "{e}");
    // Shapes: both are named.
    let wide = Tensor::zeros((1, 4), DType::F32, &cpu())?;
    let e = err(spo.loss(&ok, &wide, &w, Reduction::Sum));
    assert!(
        e.contains("[1, 3]") && e.contains("c has shape [1, 4]"),
        "{e}"
    );
    let e = err(spo.loss(&ok, &ok, &wide, Reduction::Sum));
    assert!(
        e.contains("[1, 3]") && e.contains("w_star has shape [1, 4]"),
        "{e}"
    );
    // Empty, dtype.
    let empty = Tensor::zeros((0, 3), DType::F32, &cpu())?;
    let e = err(spo.loss(&empty, &empty, &empty, Reduction::Mean));
    assert!(e.contains("empty"), "{e}");
    let ints = Tensor::new(&[[0u32, 1, 2]], &cpu())?;
    let e = err(spo.loss(&ok, &ints, &w, Reduction::Sum));
    assert!(e.contains("float"), "{e}");
    // Non-finite values.
    let nan = Tensor::new(&[[0f32, f32::NAN, 2.0]], &cpu())?;
    for (name, r) in [
        ("c_hat", spo.loss(&nan, &ok, &w, Reduction::Sum)),
        ("c", spo.loss(&ok, &nan, &w, Reduction::Sum)),
        ("w_star", spo.loss(&ok, &ok, &nan, Reduction::Sum)),
    ] {
        let e = err(r);
        assert!(e.contains(&format!("SPO+: {name} has a non-finite")), "{e}");
    }
    let huge = Tensor::new(&[[0f32, 3e38, 0.0]], &cpu())?;
    let e = err(spo.loss(&huge, &ok, &w, Reduction::Sum));
    assert!(e.contains("2ĉ − c overflowed"), "{e}");
    // The solver's instance check and its errors, named after the solver.
    let top = SpoPlus::new(TopK::new(5)?, Sense::Maximize);
    assert!(top.loss(&ok, &ok, &w, Reduction::Sum).is_err());
    struct Failing;
    impl MapSolver for Failing {
        type Scratch = ();
        fn name(&self) -> &str {
            "failing"
        }
        fn solve(&self, _: &[f32], _: &[usize], _: &mut [f32], _: &mut ()) -> Result<()> {
            candle_core::bail!("no solution today")
        }
    }
    let e = err(SpoPlus::new(Failing, Sense::Minimize).loss(&ok, &ok, &w, Reduction::Sum));
    assert!(
        e.contains("failing") && e.contains("no solution today"),
        "{e}"
    );
    Ok(())
}

/// Costs of shape `[B, instance…]` give the losses and subgradients of the flattened `[B, d]`
/// problem, with the solver seeing each instance in its shape.
#[test]
fn instances_of_any_shape_match_their_flattened_form() -> Result<()> {
    let spo = SpoPlus::new(Argmax, Sense::Maximize);
    let c_hat = Tensor::new(
        &[
            [0.3f32, -0.1, 0.8, 0.2, 0.0, 0.5],
            [1.0, 0.2, -0.4, 0.9, 0.1, 0.3],
        ],
        &cpu(),
    )?;
    let c = Tensor::new(
        &[
            [0.1f32, 0.9, 0.2, 0.0, 0.4, 0.3],
            [0.5, 0.1, 0.2, 0.8, 0.0, 0.7],
        ],
        &cpu(),
    )?;
    let w = Tensor::new(
        &[
            [0f32, 1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        ],
        &cpu(),
    )?;
    let run = |shape: &[usize]| -> Result<(Vec<f32>, Vec<f32>)> {
        let theta = Var::from_tensor(&c_hat.reshape(shape)?)?;
        let losses = spo.loss(
            theta.as_tensor(),
            &c.reshape(shape)?,
            &w.reshape(shape)?,
            Reduction::None,
        )?;
        let grads = losses.sum_all()?.backward()?;
        let grad = grads.get(&theta).unwrap().flatten_all()?.to_vec1()?;
        Ok((losses.to_vec1()?, grad))
    };
    let flat = run(&[2, 6])?;
    assert_eq!(flat, run(&[2, 3, 2])?);
    // A real SPO+ value: not all zero.
    assert!(flat.0.iter().any(|&l| l > 0.0), "{flat:?}");
    Ok(())
}

/// A loss below 0 beyond rounding is impossible for SPO+ with an exact solver and a feasible
/// w*: an error that says why (w* infeasible, c and w* swapped, an inexact solver) and names
/// the option for inexact solvers. With that option the loss is returned as computed, and
/// its gradient is the same subgradient 2σ·(w̃ − w*) as ever.
#[test]
fn a_negative_loss_is_an_error_unless_the_solver_is_inexact() -> Result<()> {
    // Maximise over one-hot w. 2ĉ − c = [0, 1, −2], w̃ = [0, 1, 0].
    let c = Tensor::new(&[[0f32, 1.0, 2.0], [0.0, 1.0, 2.0]], &cpu())?;
    let c_hat = Tensor::new(&[[0f32, 1.0, 0.0], [0.0, 1.0, 0.0]], &cpu())?;
    // Row 0: the optimal solution (ℓ = 1 − (−2) = 3). Row 1: not one-hot (ℓ = 1 − 3 = −2).
    let w = Tensor::new(&[[0f32, 0.0, 1.0], [0.0, 3.0, 0.0]], &cpu())?;
    let spo = SpoPlus::new(Argmax, Sense::Maximize);
    let e = spo
        .loss(&c_hat, &c, &w, Reduction::None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("loss of instance 1 is -2")
            && e.contains("w_star is not a feasible solution")
            && e.contains("with_exact_solver(false)"),
        "{e}"
    );
    let inexact = spo.with_exact_solver(false);
    let (losses, grad) = loss_and_grad(&inexact, &c_hat, &c, &w)?;
    assert_eq!(losses, [3.0, -2.0]);
    assert_eq!(grad, [[0.0, 2.0, -2.0], [0.0, -4.0, 0.0]]);
    Ok(())
}

/// ĉ plays a layer's θ in the solver's input check: a grid shortest path rejects a negative
/// predicted cost and names the option that clamps it; 2ĉ − c below 0 (its perturbation) is
/// clamped, as noisy costs are, which makes the solver inexact on it.
#[test]
fn the_solver_checks_the_predicted_costs() -> Result<()> {
    use imle_runtime::{GridShortestPath, NegativeCosts, Neighbourhood};
    let grid = GridShortestPath::new(Neighbourhood::Four);
    let c = Tensor::new(&[[[1f32, 1.0], [5.0, 1.0]]], &cpu())?;
    let w = Tensor::new(&[[[1f32, 1.0], [0.0, 1.0]]], &cpu())?;
    let negative = Tensor::new(&[[[0.5f32, 0.0], [-2.5, 0.5]]], &cpu())?;
    let e = SpoPlus::new(grid, Sense::Minimize)
        .loss(&negative, &c, &w, Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("SPO+: the predicted costs c_hat")
            && e.contains("-2.5")
            && e.contains("ClampToZero"),
        "{e}"
    );
    // Non-negative ĉ whose 2ĉ − c = [0, −1, −5, 0] is clamped to 0: the solver ties the two
    // paths and takes the top one, w̃ = [1, 1, 0, 1] = w*, so ℓ = 0, although the exact SPO+
    // (the left path costs −5 against the top's −1) is 4. The value stays ≥ 0 here, so no
    // error.
    let c_hat = Tensor::new(&[[[0.5f32, 0.0], [0.0, 0.5]]], &cpu())?;
    let clamped = SpoPlus::new(grid, Sense::Minimize).loss(&c_hat, &c, &w, Reduction::Sum)?;
    assert_eq!(clamped.to_scalar::<f32>()?, 0.0);
    // Negative predictions are accepted when the solver is told to clamp them: 2ĉ − c =
    // [0, −1, −10, 0] clamps to all zeros, the tie goes to the top path = w*, and ℓ = 0 (the
    // exact SPO+, through the −10 cell, would be 9).
    let clamp_all = grid.with_negative_costs(NegativeCosts::ClampToZero);
    let loss = SpoPlus::new(clamp_all, Sense::Minimize)
        .with_exact_solver(false)
        .loss(&negative, &c, &w, Reduction::Sum)?;
    assert_eq!(loss.to_scalar::<f32>()?, 0.0);
    Ok(())
}

/// The rounding tolerance from below: 2ĉ − c ties in f32 (both 2.0) but not exactly (2 − 2^-30
/// against 2), so the solver's tie rule picks item 0 while the feasible w* is item 1, and the
/// exact value is −2^-30. That is rounding, returned as 0, not an error.
#[test]
fn a_negative_loss_within_rounding_is_zero() -> Result<()> {
    let tiny = (-30f32).exp2();
    let c = Tensor::new(&[[tiny, 0.0]], &cpu())?;
    let c_hat = Tensor::new(&[[1f32, 1.0]], &cpu())?;
    let w = Tensor::new(&[[0f32, 1.0]], &cpu())?;
    let spo = SpoPlus::new(Argmax, Sense::Maximize);
    let (losses, grad) = loss_and_grad(&spo, &c_hat, &c, &w)?;
    assert_eq!(losses, [0.0]);
    // w̃ = [1, 0]: the subgradient 2(w̃ − w*) still says which way ĉ should move.
    assert_eq!(grad, [[2.0, -2.0]]);
    Ok(())
}
