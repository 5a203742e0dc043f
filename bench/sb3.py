"""Whole-training throughput: metarl's RL² PPO vs sb3-contrib's RecurrentPPO, through the same door.

Both train one config that differs only in ``agent.kind`` (``metarl`` with
``--cell`` vs ``sb3-recurrent-ppo``): the same trial envs, one whole trial
per env per update, the same PPO epochs and minibatches, and ``--hidden``
as the cell width and the LSTM width. Runs alternate (ours, theirs, ours,
...) so background load hits both alike. Each run's env steps per second
come from its metrics.csv (``charts/sps``: collection + update, without
setup and evaluation), first update excluded as warm-up.

    python bench/sb3.py                         # ML1/reach-v3, 4 envs, CPU
    python bench/sb3.py --num-envs 8 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import tempfile
from pathlib import Path

import torch

from metarl.config import TrainConfig, load_config
from metarl.kinds import trainer

KINDS = ("metarl", "sb3-recurrent-ppo")


def bench_config(benchmark: str = "ML1/reach-v3", num_envs: int = 4, episodes_per_trial: int = 2,
                 max_episode_steps: int = 100, cell: str = "forget-memory", hidden: int = 128, updates: int = 3,
                 device: str = "auto", workers: int | None = None, warmup: int = 1) -> TrainConfig:
    """The config both learners train (``agent.kind`` set per run): ``warmup`` + ``updates`` updates."""
    overrides = [
        f"env.benchmark={benchmark}", f"env.num_envs={num_envs}", f"env.episodes_per_trial={episodes_per_trial}",
        f"env.max_episode_steps={max_episode_steps}", f"agent.cell={cell}", f"agent.hidden_size={hidden}",
        f"device={device}", "eval_interval=0", "env.eval_num_envs=1", "progress=false", "tensorboard=false",
        f"total_steps={num_envs * episodes_per_trial * max_episode_steps * (warmup + updates)}",
    ]
    if workers is not None:
        overrides.append(f"env.workers={workers}")
    return load_config(None, overrides)


def training_rates(cfg: TrainConfig, kind: str, warmup: int = 1) -> list[float]:
    """Env steps/s of each update after the first ``warmup``, training ``cfg`` with ``agent.kind = kind``."""
    cfg = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, kind=kind))
    with tempfile.TemporaryDirectory() as d:
        trainer(kind)(cfg, d)
        with open(Path(d) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    return [float(r["charts/sps"]) for r in rows[warmup:]]


def compare(cfg: TrainConfig, repeats: int = 2, warmup: int = 1) -> dict[str, list[float]]:
    """Per kind, the env steps/s of every timed update over ``repeats`` alternating runs."""
    rates: dict[str, list[float]] = {k: [] for k in KINDS}
    for _ in range(repeats):
        for kind in KINDS:
            rates[kind] += training_rates(cfg, kind, warmup)
    return rates


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="ML1/reach-v3")
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--episodes-per-trial", type=int, default=2)
    p.add_argument("--max-episode-steps", type=int, default=100)
    p.add_argument("--updates", type=int, default=3, help="timed updates per run (one more warms up)")
    p.add_argument("--repeats", type=int, default=2, help="alternating runs per learner")
    p.add_argument("--cell", default="forget-memory")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    cfg = bench_config(a.benchmark, a.num_envs, a.episodes_per_trial, a.max_episode_steps, a.cell, a.hidden,
                       a.updates, a.device)
    rates = compare(cfg, a.repeats)
    ours, theirs = (statistics.median(rates[k]) for k in KINDS)
    print(f"{a.benchmark}  {a.num_envs} envs  trial {a.episodes_per_trial} x {a.max_episode_steps}  "
          f"hidden {a.hidden}  {torch.get_num_threads()} torch threads")
    print(f"sb3-contrib RecurrentPPO        {theirs:8.0f} env steps/s (median of {len(rates[KINDS[1]])} updates)")
    print(f"metarl RL² PPO ({a.cell})  {ours:8.0f} env steps/s   ({ours / theirs:.1f}x)")
    return rates


if __name__ == "__main__":
    main()
