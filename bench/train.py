"""Throughput of RL² training: random actions vs policy collection vs full training.

Prints, from one run on the same vector env and cores:
  1. random-action env steps/s (the vector env alone),
  2. collection env steps/s with the policy in the loop, sequential (one
     batched forward, then one vector step) and pipelined (``--groups`` env
     groups: the policy acts for one while the others step), timed
     alternately on one env, with the share of collection time spent in the
     policy forward and in env calls (send + wait; from a separate timed pass),
  3. full training env steps/s (collection + PPO updates; the trainer's
     collection uses ``collect``'s default grouping),
and the ratios 2/1 (target >= 0.9) and 3/1 (target >= 0.5).

Runs on CPU or CUDA (``--device auto`` picks CUDA when available). Examples:

    python bench/train.py                                   # ML1/reach-v3, 2 envs, laptop-sized
    python bench/train.py --num-envs 16 --device cuda --max-episode-steps 500 --episodes-per-trial 2 \\
        --hidden 256 --bptt 250 --updates 4               # a 16-core GPU machine
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from metarl.buffer import RolloutBuffer, chunk_length
from metarl.agents import make_policy
from metarl.checkpoint import task_dim
from metarl.config import load_config
from metarl.graphstep import PolicyStepper
from metarl.normalize import ObsNormalizer, obs_mask
from metarl.rollout import collect, make_envs
from metarl.train import train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="ML1/reach-v3")
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--workers", type=int, default=None, help="env worker processes (default: the envs layer's choice)")
    p.add_argument("--episodes-per-trial", type=int, default=2)
    p.add_argument("--max-episode-steps", type=int, default=100)
    p.add_argument("--cell", default="forget-memory")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--encoder", default="128,128", help="encoder widths, comma separated")
    p.add_argument("--bptt", type=int, default=100, help="truncated-BPTT chunk length (0: whole trials)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=2)
    p.add_argument("--groups", type=int, default=2, help="env groups of the pipelined collection")
    p.add_argument("--trials", type=int, default=3, help="timed collections per grouping (median)")
    p.add_argument("--updates", type=int, default=4, help="training updates to time (one trial per env each)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the update (0: default)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="also time collection with the policy step replayed as a CUDA graph (and train with it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p.parse_args(argv)


def random_action_sps(cfg, trials: int) -> float:
    """Median of :func:`random_action_rates`."""
    return statistics.median(random_action_rates(cfg, trials))


def random_action_rates(cfg, trials: int) -> list[float]:
    """Steps/s of the vector env stepping uniform random actions over whole trials, one per trial.

    Per trial it does the env work collection does: one trial reset (here the
    autoreset in the last step; in training, with ``trial_autoreset=False``,
    the reset that ``collect`` times before its first step) and T steps."""
    envs = make_envs(cfg.env, "train", cfg.env.num_envs)
    rng = np.random.default_rng(0)
    space = envs.single_action_space
    N, T = envs.num_envs, envs.trial_length
    actions = rng.uniform(space.low, space.high, size=(T, N, space.shape[0])).astype(np.float32)  # (T, N, A)
    rates = []
    for trial in range(trials):
        envs.reset(seed=trial)
        t0 = time.perf_counter()
        for t in range(T):
            envs.step(actions[t])
        rates.append(N * T / (time.perf_counter() - t0))
    envs.close()
    return rates


class _Timed:
    """Wraps a callable, summing its wall time (synchronising CUDA so GPU work is counted)."""

    def __init__(self, fn, cuda: bool) -> None:
        self.fn, self.cuda, self.seconds = fn, cuda, 0.0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t0
        return out


def collection_sps(cfg, device: torch.device, variants: list[tuple[int, bool]], trials: int) -> dict:
    """Per (groups, CUDA graph) variant: median collection steps/s over ``trials`` (variants
    alternate, after a warm-up), and from one more timed pass the shares of collection time
    in the policy step and in env calls (sending actions and waiting for the step)."""
    envs = make_envs(cfg.env, "train", cfg.env.num_envs, trial_autoreset=False)  # as the trainer's
    N, T = envs.num_envs, envs.trial_length
    D, A = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    policy = make_policy(cfg.agent, D, A, task_dim=task_dim(cfg)).to(device)
    buffer = RolloutBuffer(T, N, D, A, chunk_length(T, cfg.ppo.bptt_len), device)
    obs_norm = ObsNormalizer(obs_mask(envs.obs_layout))  # env dims, as the trainer normalises by default
    if device.type == "cpu":
        torch.set_num_threads(1)  # as the trainer collects
    steppers = {v: PolicyStepper(policy, device) if v[1] else None for v in variants}
    rates: dict[tuple[int, bool], list[float]] = {v: [] for v in variants}
    for trial in range(trials + 1):
        for v in variants:
            t0 = time.perf_counter()
            collect(envs, policy, buffer, obs_norm, seed=trial, groups=v[0], stepper=steppers[v])
            if trial:  # the first round warms up (and captures the graphs)
                rates[v].append(N * T / (time.perf_counter() - t0))
    out = {}
    cuda = device.type == "cuda"
    for v in variants:
        g, stepper = v[0], steppers[v]
        if stepper is None:
            act = policy.act = _Timed(type(policy).act.__get__(policy), cuda)
        else:
            act = stepper = _Timed(stepper, cuda)
        names = ["step"] if g == 1 else ["step_group_async", "step_group_wait"]  # send + wait
        env_calls = [_Timed(getattr(envs, name), False) for name in names]
        for name, timed in zip(names, env_calls):
            setattr(envs, name, timed)
        t0 = time.perf_counter()
        collect(envs, policy, buffer, obs_norm, seed=0, groups=g, stepper=stepper)
        total = time.perf_counter() - t0
        if "act" in policy.__dict__:
            del policy.act
        for name in names:
            delattr(envs, name)
        out[v] = {"sps": statistics.median(rates[v]), "rates": rates[v], "policy_share": act.seconds / total,
                  "env_wait_share": sum(c.seconds for c in env_calls) / total,
                  "graphed": bool(steppers[v] is not None and steppers[v].graphed)}
    envs.close()
    return out


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    encoder = "[" + a.encoder + "]" if a.encoder else "[]"
    overrides = [
        f"env.benchmark={a.benchmark}", f"env.num_envs={a.num_envs}", f"env.episodes_per_trial={a.episodes_per_trial}",
        f"env.max_episode_steps={a.max_episode_steps}", f"agent.cell={a.cell}", f"agent.hidden_size={a.hidden}",
        f"agent.encoder_sizes={encoder}", f"ppo.bptt_len={a.bptt}", f"ppo.epochs={a.epochs}",
        f"ppo.num_minibatches={a.minibatches}", f"device={a.device}", f"torch_threads={a.threads}",
        "eval_interval=0", "progress=false", "tensorboard=false", "env.eval_num_envs=1",
    ]
    if a.workers is not None:
        overrides.append(f"env.workers={a.workers}")
    cfg = load_config(None, overrides + a.overrides)
    steps_per_update = a.num_envs * a.episodes_per_trial * a.max_episode_steps
    cfg.total_steps = steps_per_update * (a.updates + 1)  # the first update (warm-up) is not counted

    random_sps = random_action_sps(cfg, trials=3)
    device = torch.device("cuda" if (a.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if a.device == "auto" else a.device))
    variants = [(1, False), (a.groups, False)] + ([(1, True), (a.groups, True)] if a.cuda_graph else [])
    coll = collection_sps(cfg, device, variants, a.trials)
    cfg.cuda_graph = a.cuda_graph
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as d:
        train(cfg, d)
        with open(Path(d) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))[1:]
    collect_sps = statistics.median(float(r["charts/collect_sps"]) for r in rows)
    train_sps = statistics.median(float(r["charts/sps"]) for r in rows)
    seq, pipe = coll[(1, False)], coll[(a.groups, False)]
    out = {
        "benchmark": a.benchmark, "num_envs": a.num_envs, "trial_length": a.episodes_per_trial * a.max_episode_steps,
        "cell": a.cell, "device": device.type, "torch_threads": threads, "groups": a.groups,
        "random_sps": random_sps, "collect_seq_sps": seq["sps"], "collect_pipelined_sps": pipe["sps"],
        "collect_seq_ratio": seq["sps"] / random_sps, "collect_pipelined_ratio": pipe["sps"] / random_sps,
        "collect_seq_shares": {k: v for k, v in seq.items() if k not in ("sps", "rates")},
        "collect_pipelined_shares": {k: v for k, v in pipe.items() if k not in ("sps", "rates")},
        "collect_graph": {f"{g} groups": c for (g, graphed), c in coll.items() if graphed},
        "train_collect_sps": collect_sps, "train_sps": train_sps,
        "train_collect_ratio": collect_sps / random_sps, "train_ratio": train_sps / random_sps,
    }
    print(f"{a.benchmark}  {a.num_envs} envs  trial {out['trial_length']} steps  cell {a.cell}  device {device.type}")
    print(f"random actions      {random_sps:10.0f} env steps/s")
    for (g, graph), c in coll.items():
        label = ("collect sequential " if g == 1 else f"collect {g} groups   ") + (" + graph" if graph else "        ")
        note = ("   (CUDA graph" + ("" if c["graphed"] else " NOT captured: eager") + ")") if graph else ""
        print(f"{label} {c['sps']:10.0f} env steps/s   ratio {c['sps'] / random_sps:.2f} (target >= 0.9)"
              f"   time: policy {c['policy_share']:.0%}, env calls {c['env_wait_share']:.0%}{note}")
    print(f"collect in training {collect_sps:10.0f} env steps/s   ratio {out['train_collect_ratio']:.2f} "
          f"(collect's default grouping)")
    print(f"full training       {train_sps:10.0f} env steps/s   ratio {out['train_ratio']:.2f} (target >= 0.5)")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
