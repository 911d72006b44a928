"""PyTorch reference for `cargo bench --bench layers`: the same work, written the way
torch-imle does it (a torch.autograd.Function around a black-box solver, noise drawn with
torch.distributions per Sum-of-Gamma term, Python heapq Dijkstra for grids).

Optional: needs `pip install torch`. Run by the Rust benchmark when it finds a python3 that
can import torch (or the one named by IMLE_TORCH_PYTHON), or by hand:

    python3 benches/reference/torch_imle.py            # a table
    python3 benches/reference/torch_imle.py --json     # one JSON object, one key per row
    python3 benches/reference/torch_imle.py --cuda     # the GPU rows of `--bench cuda`
    python3 benches/reference/torch_imle.py --cuda --cpu   # their dry run: CPU, 1/16 size

Every row reports the median and min over repeats after warm-up, in the same units as the
Rust rows with the same key.
"""

import heapq
import json
import math
import statistics
import sys
import time

import torch


def timed(work, warmup=2, repeats=9, sync=lambda: None):
    """Median and min wall time of `work`; `sync` waits for queued GPU work."""
    for _ in range(warmup):
        work()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def sum_of_gamma(shape, k, terms=10, device="cpu"):
    """eps = (1/k) (sum_i Gamma(shape 1/k, scale k/i) - ln s); torch's Gamma takes a rate."""
    total = torch.zeros(shape, device=device)
    concentration = torch.tensor(1.0 / k, device=device)
    for i in range(1, terms + 1):
        rate = torch.tensor(i / k, device=device)
        total += torch.distributions.Gamma(concentration, rate).sample(shape)
    return (total - math.log(terms)) / k


def gumbel(shape, device="cpu"):
    uniform = torch.rand(shape, device=device).clamp_(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(uniform))


def top_k_mask(scores, k):
    mask = torch.zeros_like(scores)
    return mask.scatter_(-1, scores.topk(k, dim=-1).indices, 1.0)


def imle_function(solver, noise, samples, lam, minimize=False):
    """perturb-and-MAP forward, perturb target backward, the same noise in both solver calls.
    A minimising solver is the maximising form on -theta (noise sign included)."""
    sign = -1.0 if minimize else 1.0

    class Imle(torch.autograd.Function):
        @staticmethod
        def forward(ctx, theta):
            batch, rest = theta.shape[0], theta.shape[1:]
            eps = noise((batch, samples) + tuple(rest))
            z = solver(theta.unsqueeze(1) + sign * eps)
            ctx.save_for_backward(theta, eps, z)
            return z.reshape((batch * samples,) + tuple(rest))

        @staticmethod
        def backward(ctx, dy):
            theta, eps, z = ctx.saved_tensors
            dy = dy.reshape(z.shape)
            z_target = solver(theta.unsqueeze(1) - sign * lam * dy + sign * eps)
            return sign * (z - z_target).mean(dim=1)

    return Imle.apply


def dijkstra_mask(costs):
    """Vertex-cost shortest path from the top-left to the bottom-right cell, 8-neighbourhood."""
    h, w = costs.shape
    c = costs.tolist()
    dist = [[math.inf] * w for _ in range(h)]
    prev = {}
    dist[0][0] = c[0][0]
    heap = [(c[0][0], 0, 0)]
    while heap:
        d, r, col = heapq.heappop(heap)
        if d > dist[r][col]:
            continue
        if (r, col) == (h - 1, w - 1):
            break
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                nr, nc = r + dr, col + dc
                if (dr or dc) and 0 <= nr < h and 0 <= nc < w:
                    nd = d + c[nr][nc]
                    if nd < dist[nr][nc]:
                        dist[nr][nc] = nd
                        prev[(nr, nc)] = (r, col)
                        heapq.heappush(heap, (nd, nr, nc))
    mask = torch.zeros(h, w)
    cell = (h - 1, w - 1)
    mask[cell] = 1.0
    while cell != (0, 0):
        cell = prev[cell]
        mask[cell] = 1.0
    return mask


def grid_solver(costs):
    flat = costs.reshape((-1,) + tuple(costs.shape[-2:])).clamp(min=0.0)
    masks = torch.stack([dijkstra_mask(grid) for grid in flat])
    return masks.reshape(costs.shape)


def cuda_rows(add, dry_run=False):
    """The rows of `cargo bench --bench cuda`: 10^8 noise elements, and the top-k layer
    forward, and forward + backward, at B = 4096, n = 1000, k = 10, S = 10, lambda = 10, on
    the GPU. A dry run does the same on the CPU at 1/16 of the sizes, as the Rust bench's
    `--cpu --quick`, to check this function before a GPU run."""
    device = "cpu" if dry_run else "cuda"
    sync = (lambda: None) if dry_run else torch.cuda.synchronize
    scale = 16 if dry_run else 1
    shape = (10**5 // scale, 1000)
    for name, draw in [
        ("sum_of_gamma", lambda: sum_of_gamma(shape, 10.0, device=device)),
        ("gumbel", lambda: gumbel(shape, device=device)),
    ]:
        median, best = timed(draw, repeats=5, sync=sync)
        add(f"cuda_noise_{name}_1e8", "ms/call", (median * 1e3, best * 1e3))

    batch, n, k, samples = 4096 // scale, 1000, 10, 10
    for name, noise in [
        ("sog", lambda sh: sum_of_gamma(sh, float(k), device=device)),
        ("gumbel", lambda sh: gumbel(sh, device=device)),
    ]:
        layer = imle_function(lambda s: top_k_mask(s, k), noise, samples, 10.0)
        theta = torch.randn(batch, n, device=device)
        weights = torch.randn(batch * samples, n, device=device)

        def forward():
            layer(theta)

        median, best = timed(forward, repeats=9, sync=sync)
        add(f"cuda_topk_forward_{name}", "ms/call", (median * 1e3, best * 1e3))

        def step():
            var = theta.clone().requires_grad_(True)
            (layer(var) * weights).sum().backward()

        median, best = timed(step, repeats=9, sync=sync)
        add(f"cuda_topk_fwd_bwd_{name}", "ms/call", (median * 1e3, best * 1e3))


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = {}

    def add(key, unit, pair):
        rows[key] = {"median": pair[0], "min": pair[1], "unit": unit}

    if "--cuda" in sys.argv:
        cuda_rows(add, dry_run="--cpu" in sys.argv)
        print(json.dumps(rows) if "--json" in sys.argv else rows)
        return

    elements = 10**6
    shape = (1000, 1000)
    for name, draw in [
        ("sum_of_gamma", lambda: sum_of_gamma(shape, 10.0)),
        ("gumbel", lambda: gumbel(shape)),
        ("gaussian", lambda: torch.randn(shape)),
    ]:
        median, best = timed(draw, repeats=5)
        add(f"noise_{name}_2_threads", "ns/element", (median * 1e9 / elements, best * 1e9 / elements))

    for samples in (1, 10):
        batch, n, k = 128, 1000, 10
        layer = imle_function(lambda s: top_k_mask(s, k), lambda sh: sum_of_gamma(sh, float(k)), samples, 10.0)
        theta = torch.randn(batch, n)
        weights = torch.randn(batch * samples, n)

        def step():
            var = theta.clone().requires_grad_(True)
            (layer(var) * weights).sum().backward()

        median, best = timed(step, repeats=5 if samples > 1 else 9)
        add(f"topk_fwd_bwd_s{samples}", "ms/call", (median * 1e3, best * 1e3))

    for side in (12, 30):
        noise = lambda sh: sum_of_gamma(sh, float(side))  # noqa: E731
        layer = imle_function(grid_solver, noise, 1, 10.0, minimize=True)
        theta = torch.rand(32, side, side) + 0.1
        weights = torch.randn(32, side, side)

        def step():
            var = theta.clone().requires_grad_(True)
            (layer(var) * weights).sum().backward()

        median, best = timed(step, repeats=5)
        add(f"shortest_path_{side}x{side}", "ms/call", (median * 1e3, best * 1e3))

    if "--json" in sys.argv:
        print(json.dumps(rows))
    else:
        for key, row in rows.items():
            print(f"{key:<32} {row['median']:>12.2f} {row['min']:>12.2f}  {row['unit']}")


if __name__ == "__main__":
    main()
