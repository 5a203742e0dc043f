"""Tiny real training runs shared by the evaluate/record/plot tests.

Each run is trained once per pytest session into the session's base temp dir
and reused by every test module that asks for it (a run dir that already holds
``checkpoints/last.pt`` is not retrained).
"""

from __future__ import annotations

from pathlib import Path

import torch

# name -> --set overrides for `metarl train` (kept tiny: seconds, not minutes)
RUNS: dict[str, list[str]] = {
    "point-nav": [
        "env.benchmark=point-nav", "env.num_envs=8", "env.episodes_per_trial=2", "agent.cell=gru",
        "agent.hidden_size=32", "total_steps=1280", "eval_interval=2", "progress=false", "tensorboard=false",
        "seed=1",
    ],
    "reach": [
        "env.benchmark=ML1/reach-v3", "env.num_envs=2", "env.episodes_per_trial=2", "env.max_episode_steps=30",
        "env.workers=0", "agent.cell=gru", "agent.hidden_size=32", "total_steps=240", "progress=false",
        "tensorboard=false", "seed=1",
    ],
}


def tiny_run(base: Path, name: str, seed: int | None = None) -> Path:
    """Train (once) and return the run directory of tiny run ``name``."""
    from metarl.config import load_config
    from metarl.train import train

    overrides = list(RUNS[name])
    if seed is not None:
        overrides = [o for o in overrides if not o.startswith("seed=")] + [f"seed={seed}"]
    run_dir = base / "tiny_runs" / (name if seed is None else f"{name}-seed{seed}")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            train(load_config(None, overrides), run_dir)
        finally:
            torch.set_num_threads(threads)
    return run_dir
