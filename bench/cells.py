"""Forward+backward time of every registered cell on one sequence, as ratios to ``lstm``.

    python bench/cells.py                        # T=500, B=40, hidden 256, CPU (+ CUDA when present)
    python bench/cells.py --device cuda --repeats 5 --cells lstm forget-memory

Prints one row per cell and device: median seconds over ``--repeats`` timed runs
(after one warm-up) of ``cell(x, state, reset)`` + ``backward()``, and the ratio
to ``lstm`` measured in the same run. Extra rows time ``forget-memory`` with
``parallel=False`` (its own step loop), ``scan="chunked"`` (the chunkwise scan
even on CPU, where the default steps the memory alone) and
``write_mode="controller"``; the
summary gives the parallel path's speed-up over its loop, for the whole cell and
for the memory alone (chunkwise scan + content reads vs the step loop).
Targets (issue 3): parallel >= 5x its loop on CPU, >= 10x on GPU;
forget-memory (default) within 3x of lstm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from metarl.agents import cells, make_cell
from metarl.agents.addressing import content_weights, read
from metarl.agents.scan import gated_scan, gated_scan_loop

# Variants timed besides each registered cell's defaults: label -> (cell, options).
VARIANTS: dict[str, tuple[str, dict]] = {
    "forget-memory[loop]": ("forget-memory", {"parallel": False}),
    "forget-memory[chunked]": ("forget-memory", {"scan": "chunked"}),
    "forget-memory[controller]": ("forget-memory", {"write_mode": "controller"}),
}


@dataclass
class BenchConfig:
    """What to time."""

    T: int = 500
    """sequence length"""
    B: int = 40
    """batch (envs)"""
    hidden: int = 256
    """hidden size of every cell"""
    input: int = 256
    """input size (the policy's encoder output)"""
    repeats: int = 3
    """timed runs per cell (median reported)"""
    resets: int = 0
    """extra all-env resets spread over the sequence (the trainer's trial-aligned rollouts have one, at t=0)"""
    seed: int = 0


def time_cell(name: str, options: dict, cfg: BenchConfig, device: torch.device) -> float:
    """Median seconds of forward + backward over the configured sequence."""
    torch.manual_seed(cfg.seed)
    cell = make_cell(name, cfg.input, cfg.hidden, **options).to(device)
    x = torch.randn(cfg.T, cfg.B, cfg.input, device=device)  # (T, B, I)
    reset = torch.zeros(cfg.T, cfg.B, dtype=torch.bool, device=device)  # (T, B)
    reset[0] = True
    for k in range(1, cfg.resets + 1):
        reset[k * cfg.T // (cfg.resets + 1)] = True
    times = []
    for i in range(cfg.repeats + 1):  # the first run warms up
        cell.zero_grad(set_to_none=True)
        _sync(device)
        start = time.perf_counter()
        out, _ = cell(x, cell.initial_state(cfg.B, device), reset)
        out.square().mean().backward()
        _sync(device)
        if i > 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_memory(parallel: bool, cfg: BenchConfig, device: torch.device, slots: int = 32, width: int = 32) -> float:
    """Median seconds of the forget-memory's memory alone (scan + content reads), fwd + bwd."""
    torch.manual_seed(cfg.seed)
    B, T = cfg.B, cfg.T
    logits = torch.randn(B, T, slots, device=device, requires_grad=True)
    write = torch.rand(B, T, slots, device=device, requires_grad=True)
    value = torch.randn(B, T, width, device=device, requires_grad=True)
    key = torch.randn(B, T, 1, width, device=device, requires_grad=True)
    beta = torch.ones(B, T, 1, device=device)
    reset = torch.zeros(B, T, dtype=torch.bool, device=device)
    reset[:, 0] = True
    mem0 = torch.zeros(B, slots, width, device=device)
    scan = gated_scan if parallel else gated_scan_loop
    times = []
    for i in range(cfg.repeats + 1):
        _sync(device)
        start = time.perf_counter()
        mem = scan(torch.nn.functional.logsigmoid(logits), write, value, reset, mem0, mem0)  # (B, T, N, W)
        read(content_weights(key, mem, beta), mem).square().mean().backward()
        _sync(device)
        if i > 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    d = BenchConfig()
    for field in ("T", "B", "hidden", "input", "repeats", "resets", "seed"):
        p.add_argument(f"--{field}", type=int, default=getattr(d, field))
    p.add_argument("--device", choices=["all", "cpu", "cuda"], default="all", help="all = cpu, plus cuda when present")
    p.add_argument("--cells", nargs="*", default=None, help=f"cells/variants to time (default: all): {cells() + list(VARIANTS)}")
    p.add_argument("--memory-only", action="store_true", help="also time the memory scan alone, even without forget-memory")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    cfg = BenchConfig(**{k: getattr(args, k) for k in ("T", "B", "hidden", "input", "repeats", "resets", "seed")})
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.cells or cells() + list(VARIANTS)
    names = ["lstm", *[n for n in names if n != "lstm"]]  # the reference runs first
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [dv for dv in devices if dv == "cpu" or torch.cuda.is_available()]

    print(f"T={cfg.T} B={cfg.B} hidden={cfg.hidden} input={cfg.input} repeats={cfg.repeats} "
          f"torch={torch.__version__} cpu_threads={torch.get_num_threads()}")
    results: dict[str, dict[str, float]] = {}
    for dv in devices:
        device = torch.device(dv)
        label = torch.cuda.get_device_name(device) if dv == "cuda" else "cpu"
        print(f"\n[{label}]\n{'cell':28s} {'fwd+bwd s':>10s} {'x lstm':>8s}")
        res: dict[str, float] = {}
        for name in names:
            cell_name, options = VARIANTS.get(name, (name, {}))
            try:
                res[name] = time_cell(cell_name, options, cfg, device)
            except (ImportError, AttributeError, ValueError) as err:  # a cell not in the tree yet
                print(f"{name:28s} unavailable: {err}")
                continue
            ratio = res[name] / res["lstm"] if "lstm" in res else float("nan")
            print(f"{name:28s} {res[name]:10.4f} {ratio:8.2f}", flush=True)
        if "forget-memory" in res and "forget-memory[loop]" in res:
            print(f"forget-memory parallel speed-up over its step loop (whole cell): "
                  f"{res['forget-memory[loop]'] / res['forget-memory']:.1f}x")
        if args.memory_only or "forget-memory" in res:
            for parallel in (True, False):
                res[f"memory[{'scan' if parallel else 'loop'}]"] = time_memory(parallel, cfg, device)
            print(f"memory alone (32x32, scan + reads): scan {res['memory[scan]']:.4f} s, "
                  f"loop {res['memory[loop]']:.4f} s, speed-up {res['memory[loop]'] / res['memory[scan]']:.1f}x")
        results[dv] = res
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
