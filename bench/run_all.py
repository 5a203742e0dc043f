"""One benchmark page: every speed and memory figure of this project from one run, as one table.

    python bench/run_all.py            # about 10 minutes on 2 shared cores; writes docs/benchmarks.md
    python bench/run_all.py --quick    # under 3 minutes: fewer steps, repeats and envs

Rows (each a median over repeats, with min and max): the env layer (one
process stepping the envs one by one, gymnasium's AsyncVectorEnv, ours, and
EnvPool's native Meta-World v3 where installed), collection with the policy
vs random actions, whole training (ours vs sb3-contrib RecurrentPPO on
ML1/reach-v3, alternating runs, same envs and network size), cells
(forward + backward) and ML45's resident memory. It reuses the functions of
``bench/envs.py``, ``bench/train.py``, ``bench/cells.py`` and ``bench/sb3.py``.
The page records the machine (CPU model, cores, GPU, library versions) and date.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIBRARIES = ("torch", "numpy", "gymnasium", "metaworld", "mujoco", "stable-baselines3", "sb3-contrib", "envpool")


def _bench(name: str):
    """A sibling bench script as a module (bench/ is no package; loaded by path, under its own name)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Row:
    """One measured figure: values over repeats (median, min, max shown), or a note why none."""

    section: str
    what: str
    unit: str
    values: list[float] = field(default_factory=list)
    note: str = ""

    def cells(self) -> list[str]:
        if not self.values:
            return [self.section, self.what, "-", "-", "-", "0", self.unit, self.note]
        fmt = (lambda v: f"{v:,.0f}") if self.unit.endswith("/s") or self.unit == "MB" else (lambda v: f"{v:.4f}")
        v = self.values
        return [self.section, self.what, fmt(statistics.median(v)), fmt(min(v)), fmt(max(v)), str(len(v)),
                self.unit, self.note]


@dataclass
class Sizes:
    """How big each measurement is (``--quick`` shrinks them)."""

    env_envs: int = 10
    env_steps: int = 300
    repeats: int = 3
    train_envs: int = 4
    train_steps: int = 50
    """steps per attempt (trials of 2 attempts) in the collection and training rows"""
    train_updates: int = 1
    train_warmup: int = 1
    train_repeats: int = 2
    cell_T: int = 500
    cell_B: int = 16
    ml45_envs: int = 45


QUICK = Sizes(env_envs=4, env_steps=100, repeats=3, train_envs=2, train_steps=50, train_updates=1, train_warmup=0,
              train_repeats=1, cell_T=100, cell_B=8, ml45_envs=10)


def machine() -> dict[str, str]:
    """CPU model, cores, GPU, Python and library versions, date, git commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    versions = []
    for lib in LIBRARIES:
        try:
            versions.append(f"{lib} {importlib.metadata.version(lib)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{lib} not installed")
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores ({usable} usable)",
        "gpu": gpu,
        "python": platform.python_version(),
        "libraries": ", ".join(versions),
        "commit": commit,
        "load": f"{os.getloadavg()[0]:.1f} (1-minute load average at the start)",
    }


def env_layer(s: Sizes) -> list[Row]:
    """ML10 train envs: one process stepping them one by one, gymnasium AsyncVectorEnv, ours; alternating."""
    envs_bench = _bench("envs")
    from metarl.envs import make_env, make_vec

    args = argparse.Namespace(benchmark="ML10", split="train", num_envs=s.env_envs, max_episode_steps=None)
    rng = np.random.default_rng(0)
    singles = [make_env("ML10", split="train", env_index=i, num_envs=s.env_envs, seed=i) for i in range(s.env_envs)]
    for env in singles:
        env.reset()
    ours = make_vec("ML10", split="train", num_envs=s.env_envs)
    theirs = envs_bench._make_gym_async(args)
    ours.reset(seed=0)
    theirs.reset(seed=0)
    actions = rng.uniform(-1, 1, (s.env_steps, *ours.action_space.shape)).astype(np.float32)  # (steps, N, A)
    ours_pids, theirs_pids = [p.pid for p in ours._procs], [p.pid for p in theirs.processes]
    envs_bench._vector_rate(ours, ours_pids, actions[:20])  # warm-up
    envs_bench._vector_rate(theirs, theirs_pids, actions[:20])
    single, gym_async, mine = [], [], []
    half = actions[: max(1, s.env_steps // 2)]
    for _ in range(s.repeats):
        t0 = time.perf_counter()
        envs_bench._step_one_by_one(singles, half)
        single.append(half.shape[0] * half.shape[1] / (time.perf_counter() - t0))
        gym_async.append(envs_bench._vector_rate(theirs, theirs_pids, actions)[0])
        mine.append(envs_bench._vector_rate(ours, ours_pids, actions)[0])
    workers = ours.num_workers
    for env in singles:
        env.close()
    ours.close()
    theirs.close()
    section = f"env layer: ML10 train, {s.env_envs} envs, random actions"
    ratio = statistics.median(mine) / statistics.median(gym_async)
    return [
        Row(section, "one process, the same envs one by one", "env steps/s", single),
        Row(section, "gymnasium AsyncVectorEnv (one process per env)", "env steps/s", gym_async),
        Row(section, f"ours, TrialVectorEnv ({workers} workers + envs in the caller)", "env steps/s", mine,
            f"{ratio:.2f}x gymnasium"),
        envpool_row(s),
    ]


def envpool_row(s: Sizes) -> Row:
    """EnvPool's C++ Meta-World v3 (reach-v3 only: it has no ML task sets) where installed, else a note."""
    section = f"env layer: ML10 train, {s.env_envs} envs, random actions"
    what = "EnvPool native Meta-World v3 (reach-v3)"
    if importlib.util.find_spec("envpool") is None:
        return Row(section, what, "env steps/s", [], "skipped: envpool is not installed")
    import envpool  # optional: only measured where someone installed it

    env = envpool.make_gymnasium("MetaWorld/Reach-v3", num_envs=s.env_envs, seed=0,
                                 num_threads=len(os.sched_getaffinity(0)))
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (s.env_steps, s.env_envs, *env.action_space.shape[1:])).astype(np.float32)
    rates = []
    for _ in range(s.repeats):
        t0 = time.perf_counter()
        for a in actions:
            env.step(a)
        rates.append(actions.shape[0] * actions.shape[1] / (time.perf_counter() - t0))
    env.close()
    return Row(section, what, "env steps/s", rates, "one goal per reset: no RL² trials, no ML goal sets")


def collection(s: Sizes) -> list[Row]:
    """ML1/reach-v3: random actions vs collection with the policy (sequential), trainer-shaped envs."""
    train_bench, sb3_bench = _bench("train"), _bench("sb3")
    cfg = sb3_bench.bench_config(num_envs=s.train_envs, max_episode_steps=s.train_steps, updates=1, device="cpu")
    random_rates = train_bench.random_action_rates(cfg, trials=s.repeats)
    coll = train_bench.collection_sps(cfg, torch.device("cpu"), [(1, False)], trials=s.repeats)[(1, False)]
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # collection_sps leaves one thread set
    section = f"collection: ML1/reach-v3, {s.train_envs} envs, trial 2 x {s.train_steps}, forget-memory 128"
    ratio = statistics.median(coll["rates"]) / statistics.median(random_rates)
    return [
        Row(section, "random actions (the vector env alone)", "env steps/s", random_rates),
        Row(section, "collection with the policy in the loop", "env steps/s", coll["rates"],
            f"{ratio:.2f}x random; policy {coll['policy_share']:.0%} of the time"),
    ]


def training(s: Sizes) -> list[Row]:
    """Whole training, ours vs sb3-contrib RecurrentPPO, alternating runs of one config (bench/sb3.py)."""
    sb3_bench = _bench("sb3")
    cfg = sb3_bench.bench_config(num_envs=s.train_envs, max_episode_steps=s.train_steps, updates=s.train_updates,
                                 device="cpu", warmup=s.train_warmup)
    rates = sb3_bench.compare(cfg, repeats=s.train_repeats, warmup=s.train_warmup)
    section = (f"whole training: ML1/reach-v3, {s.train_envs} envs, trial 2 x {s.train_steps}, hidden 128, "
               f"4 epochs{'' if s.train_warmup else ', first update included'}")
    ratio = statistics.median(rates["metarl"]) / statistics.median(rates["sb3-recurrent-ppo"])
    return [
        Row(section, "metarl RL² PPO, forget-memory", "env steps/s", rates["metarl"], f"{ratio:.1f}x RecurrentPPO"),
        Row(section, "sb3-contrib RecurrentPPO, MlpLstmPolicy (LSTM 128)", "env steps/s", rates["sb3-recurrent-ppo"]),
    ]


def cells(s: Sizes) -> list[Row]:
    """Forward + backward seconds of lstm, gru and forget-memory over one (T, B) sequence, hidden 128."""
    cells_bench = _bench("cells")
    cfg = cells_bench.BenchConfig(T=s.cell_T, B=s.cell_B, hidden=128, input=128, repeats=1)
    section = f"cells: forward + backward, T={s.cell_T}, B={s.cell_B}, hidden 128, CPU"
    rows = []
    for name in ("lstm", "gru", "forget-memory"):
        times = [cells_bench.time_cell(name, {}, cfg, torch.device("cpu")) for _ in range(s.repeats)]
        rows.append(Row(section, name, "s", times))
    lstm = statistics.median(rows[0].values)
    for row in rows[1:]:
        row.note = f"{statistics.median(row.values) / lstm:.2f}x lstm"
    return rows


def ml45_memory(s: Sizes) -> list[Row]:
    """Resident memory of ours with ML45 train envs (bench/envs.py --memory-only)."""
    envs_bench = _bench("envs")
    args = argparse.Namespace(benchmark="ML45", split="train", num_envs=s.ml45_envs, max_episode_steps=None,
                              workers=None, steps=20)
    m = envs_bench.memory_only(args)
    section = f"memory: ML45 train, {s.ml45_envs} envs, {m['workers']} workers + the main process"
    return [Row(section, "RSS sum over processes", "MB", [m["rss_mb"]]),
            Row(section, "PSS sum (shared pages counted once)", "MB", [m["pss_mb"]], f"built in {m['build_s']:.0f} s")]


SECTIONS = {"env layer": env_layer, "collection": collection, "training": training, "cells": cells,
            "ML45 memory": ml45_memory}
HEADER = ["section", "what", "median", "min", "max", "repeats", "unit", "note"]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join([" --- "] * len(HEADER)) + "|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def page(info: dict[str, str], rows: list[Row], quick: bool, seconds: float) -> str:
    mode = "`--quick` (small sizes)" if quick else "full sizes"
    return "\n".join([
        "# Benchmarks",
        "",
        f"Written by `python bench/run_all.py{' --quick' if quick else ''}` ({mode}, {seconds / 60:.1f} minutes). "
        "Medians over repeats, with min and max; ratios in the notes are of medians measured in the same run. "
        "On a shared machine only the ratios mean much.",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        table(rows),
        "",
    ])


def main(argv: list[str] | None = None) -> list[Row]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: under 3 minutes on 2 cores")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the page to write")
    a = p.parse_args(argv)
    sizes = QUICK if a.quick else Sizes()
    info = machine()
    start = time.perf_counter()
    rows: list[Row] = []
    for name, section in SECTIONS.items():
        t0 = time.perf_counter()
        rows += section(sizes)
        print(f"[{name}] {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    text = page(info, rows, a.quick, time.perf_counter() - start)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(table(rows))
    print(f"wrote {a.out}")
    return rows


if __name__ == "__main__":
    main()
