"""PyEPO reference for the decision-focused shortest-path comparison (issue #11, sections 4-5).

What it measures: PyEPO itself (not this crate) on PyEPO's shortest-path benchmark: a 5x5
grid (40 edges), p = 5 features, polynomial degree deg, multiplicative noise half-width 0.5,
a linear model `torch.nn.Linear(5, 40)` trained with Adam (lr 1e-2, batch 32) through one of

    imle      pyepo.func.implicitMLE(optmodel, n_samples=10, sigma=1.0, lambd=10,
                                     two_sides=False, processes=1)
              (its default noise: sumGammaDistribution(kappa=5), 10 Gamma terms)
    aimle     pyepo.func.adaptiveImplicitMLE(optmodel, processes=1), otherwise its defaults
    blackbox  pyepo.func.blackboxOpt(optmodel, lambd=10, processes=1)
    spo       pyepo.func.SPOPlus(optmodel, processes=1), its own loss (batch mean)
    pfyl      pyepo.func.perturbedFenchelYoung(optmodel, n_samples=10, sigma=1.0,
              processes=1), its own loss (batch mean)

each followed by `nn.L1Loss()` between the layer's output (the mean perturbed solution for
imle/aimle, the solution for blackbox) and the true solution w, as PyEPO's documentation
trains I-MLE. The solver is `pyepo.model.grb.shortestPathModel(grid=(5, 5))` (Gurobi, its
default thread count). For every (method, deg, seed) it reports:

    regret         pyepo.metric.regret(model, optmodel, test_loader): normalized regret
                   sum_i (c_i . w*(c_hat_i) - z_i) / sum_i |z_i| on the test set, after the
                   last epoch
    s/epoch        mean wall time of one training epoch (time.perf_counter around the
                   epoch's batches: forward, solver calls, loss, backward, Adam step;
                   evaluation excluded)
    solves/epoch   calls to optmodel.solve() per epoch (counted by wrapping the method)

torch runs on one thread (torch.set_num_threads(1)) unless --threads says otherwise.

Data: x, c = pyepo.data.shortestpath.genData(n_train + n_test, 5, (5, 5), deg=deg,
noise_width=0.5, seed=seed); the first n_train rows are the training split, the next n_test
the test split (no shuffling). w (true solutions) and z (true objectives) are the ones
pyepo.data.dataset.optDataset computes with the same Gurobi model. `--export DIR` writes
exactly these arrays, per (deg, seed), as NumPy .npy files (float32, C order, little-endian):

    DIR/deg{deg}_seed{seed}/x_train.npy   features           (n_train, 5)
    DIR/deg{deg}_seed{seed}/c_train.npy   true edge costs    (n_train, 40)
    DIR/deg{deg}_seed{seed}/w_train.npy   true solutions     (n_train, 40), 0/1 per edge
    DIR/deg{deg}_seed{seed}/z_train.npy   true objectives    (n_train, 1), c . w
    DIR/deg{deg}_seed{seed}/{x,c,w,z}_test.npy   the same for the test split (n_test rows)

(x, c, w, z are the names PyEPO's own loaders yield: `for x, c, w, z in loader`; z keeps
optDataset's (n, 1) shape.) Edge order is PyEPO's shortestPathModel.arcs: nodes numbered
row-major (v = 5 * row + col, source 0, sink 24), arcs row by row, each row's 4 rightward
arcs (v, v + 1) then, except in the last row, its 5 downward arcs (v, v + 5):
(0,1) (1,2) (2,3) (3,4) (0,5) (1,6) (2,7) (3,8) (4,9) (5,6) ... (23,24).

Optional: nothing in CI runs it. Install the peers in a virtual environment under target/ (ignored by
git) and run it by hand:

    python3 -m venv target/pyepo-venv
    target/pyepo-venv/bin/pip install pyepo gurobipy torch
    target/pyepo-venv/bin/python benches/reference/pyepo_reference.py \
        --export target/pyepo-data --json target/pyepo.json
    target/pyepo-venv/bin/python benches/reference/pyepo_reference.py --quick   # smoke run

gurobipy's pip licence is size-limited; a 40-variable shortest path fits in it.
Measured on the 2-core development machine (AMD EPYC, 2 vCPUs, shared with other work),
2026-12-01, pyepo 2.2.7, gurobipy 13.0.3, torch 2.15.0: see BENCHMARKS.md, "PyEPO reference
(shortest path 5x5)", for the figures and the command. The full run (4 degrees x 3 seeds x
3 methods, 5 epochs) takes about 11 minutes there.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # optDataset's progress bars

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import pyepo  # noqa: E402

GRID = (5, 5)
NUM_FEATURES = 5
NOISE_WIDTH = 0.5


def parse_list(text, cast=int):
    return [cast(part) for part in text.split(",") if part.strip()]


def build_layer(method, optmodel):
    if method == "imle":
        return pyepo.func.implicitMLE(
            optmodel, n_samples=10, sigma=1.0, lambd=10, two_sides=False, processes=1
        )
    if method == "aimle":
        return pyepo.func.adaptiveImplicitMLE(optmodel, processes=1)
    if method == "blackbox":
        return pyepo.func.blackboxOpt(optmodel, lambd=10, processes=1)
    if method == "spo":
        return pyepo.func.SPOPlus(optmodel, processes=1)
    if method == "pfyl":
        return pyepo.func.perturbedFenchelYoung(optmodel, n_samples=10, sigma=1.0, processes=1)
    raise SystemExit(f"unknown method {method!r} (imle, aimle, blackbox, spo, pfyl)")


def batch_loss(method, layer, criterion, cp, c, w, z):
    """The training loss of one batch: the layer's own loss for SPO+ and the Fenchel-Young
    loss (their reduction "mean" over the batch), otherwise L1 between the layer's output and
    the true solution."""
    if method == "spo":
        return layer(cp, c, w, z)
    if method == "pfyl":
        return layer(cp, w)
    return criterion(layer(cp), w)


class SolveCounter:
    """Counts calls to `optmodel.solve` by shadowing the bound method on the instance."""

    def __init__(self, optmodel):
        self.calls = 0
        inner = optmodel.solve

        def counted(*args, **kwargs):
            self.calls += 1
            return inner(*args, **kwargs)

        optmodel.solve = counted


def make_data(deg, seed, n_train, n_test, optmodel):
    x, c = pyepo.data.shortestpath.genData(
        n_train + n_test, NUM_FEATURES, GRID, deg=deg, noise_width=NOISE_WIDTH, seed=seed
    )
    train = pyepo.data.dataset.optDataset(optmodel, x[:n_train], c[:n_train])
    test = pyepo.data.dataset.optDataset(optmodel, x[n_train:], c[n_train:])
    return train, test


def export_split(directory, split, dataset):
    arrays = {
        "x": dataset.feats,
        "c": dataset.costs,
        "w": dataset.sols,
        "z": dataset.objs,
    }
    for name, tensor in arrays.items():
        array = np.ascontiguousarray(np.asarray(tensor, dtype="<f4"))
        np.save(os.path.join(directory, f"{name}_{split}.npy"), array)


def train_one(method, optmodel, counter, train, test, seed, epochs, batch, lr):
    torch.manual_seed(seed)
    model = nn.Linear(NUM_FEATURES, train.costs.shape[1])
    layer = build_layer(method, optmodel)
    criterion = nn.L1Loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train, batch_size=batch, shuffle=True, generator=generator)
    test_loader = DataLoader(test, batch_size=batch, shuffle=False)
    epoch_seconds, epoch_solves = [], []
    for _ in range(epochs):
        model.train()
        solves_before = counter.calls
        start = time.perf_counter()
        for x, c, w, z in train_loader:
            loss = batch_loss(method, layer, criterion, model(x), c, w, z)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)
        epoch_solves.append(counter.calls - solves_before)
    regret = float(pyepo.metric.regret(model, optmodel, test_loader))
    return {
        "method": method,
        "regret": regret,
        "sec_per_epoch": statistics.fmean(epoch_seconds),
        "epoch_seconds": epoch_seconds,
        "solves_per_epoch": statistics.fmean(epoch_solves),
    }


def versions():
    import gurobipy

    return {
        "python": platform.python_version(),
        "pyepo": getattr(pyepo, "__version__", "unknown"),
        "gurobipy": gurobipy.__version__,
        "gurobi": ".".join(str(v) for v in gurobipy.gurobi.version()),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def summarise(rows):
    groups = {}
    for row in rows:
        groups.setdefault((row["method"], row["deg"]), []).append(row)
    summary = []
    for (method, deg), group in groups.items():
        regrets = [row["regret"] for row in group]
        secs = [row["sec_per_epoch"] for row in group]
        summary.append(
            {
                "method": method,
                "deg": deg,
                "seeds": [row["seed"] for row in group],
                "regret_mean": statistics.fmean(regrets),
                "regret_std": statistics.stdev(regrets) if len(regrets) > 1 else 0.0,
                "sec_per_epoch_mean": statistics.fmean(secs),
                "solves_per_epoch": statistics.fmean(row["solves_per_epoch"] for row in group),
            }
        )
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--degs", default="1,2,4,6")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--methods", default="imle,aimle,blackbox")
    parser.add_argument(
        "--method-seeds",
        default="",
        help="per-method seed override, e.g. 'aimle:0,blackbox:0' (others use --seeds)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--export", metavar="DIR", help="write the generated data as .npy")
    parser.add_argument("--json", metavar="FILE", help="write rows and summary as JSON")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: deg 1, seed 0, 1 epoch, 64/64 rows"
    )
    args = parser.parse_args()
    if args.quick:
        args.degs, args.seeds, args.epochs = "1", "0", 1
        args.n_train, args.n_test = 64, 64
    torch.set_num_threads(args.threads)
    degs, seeds = parse_list(args.degs), parse_list(args.seeds)
    methods = parse_list(args.methods, str)
    method_seeds = {}
    for part in parse_list(args.method_seeds, str):
        name, seed = part.split(":")
        method_seeds.setdefault(name, []).append(int(seed))

    optmodel = pyepo.model.grb.shortestPathModel(grid=GRID)
    counter = SolveCounter(optmodel)
    rows = []
    header = f"{'method':<9} {'deg':>3} {'seed':>4} {'regret':>8} {'s/epoch':>8} {'solves/epoch':>12}"
    print(header)
    print("-" * len(header))
    for deg in degs:
        for seed in sorted({s for m in methods for s in method_seeds.get(m, seeds)}):
            runs = [m for m in methods if seed in method_seeds.get(m, seeds)]
            train, test = make_data(deg, seed, args.n_train, args.n_test, optmodel)
            if args.export:
                directory = os.path.join(args.export, f"deg{deg}_seed{seed}")
                os.makedirs(directory, exist_ok=True)
                export_split(directory, "train", train)
                export_split(directory, "test", test)
            for method in runs:
                row = train_one(
                    method, optmodel, counter, train, test, seed,
                    args.epochs, args.batch, args.lr,
                )
                row.update(deg=deg, seed=seed)
                rows.append(row)
                print(
                    f"{method:<9} {deg:>3} {seed:>4} {row['regret']:>8.4f} "
                    f"{row['sec_per_epoch']:>8.2f} {row['solves_per_epoch']:>12.0f}",
                    flush=True,
                )
    summary = summarise(rows)
    print()
    print(f"{'method':<9} {'deg':>3} {'seeds':>6} {'regret mean ± std':>20} {'s/epoch':>8}")
    for entry in summary:
        regret = f"{entry['regret_mean']:.4f} ± {entry['regret_std']:.4f}"
        print(
            f"{entry['method']:<9} {entry['deg']:>3} {len(entry['seeds']):>6} "
            f"{regret:>20} {entry['sec_per_epoch_mean']:>8.2f}"
        )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        config = {
            key: getattr(args, key)
            for key in ("degs", "seeds", "method_seeds", "epochs", "n_train", "n_test",
                        "batch", "lr", "methods", "threads")
        }
        with open(args.json, "w") as handle:
            json.dump(
                {"config": config, "versions": versions(), "rows": rows, "summary": summary},
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
