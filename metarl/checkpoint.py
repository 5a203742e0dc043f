"""Checkpoint I/O: atomic writes, safe loads, every RNG, and ``load_agent``.

A checkpoint is a plain dict of tensors and Python scalars, readable with
``torch.load(weights_only=True)``. It holds everything an exact resume needs:
model, optimizer, normalisers, every RNG (torch, CUDA, numpy, random, the
minibatch generator), counters, and the config. The task sampler needs no
state of its own: each update resets the envs with a seed derived from
(config seed, rank, update), so the counters determine the tasks.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarl.agent import Agent
from metarl.agents import make_policy
from metarl.config import config_from_dict
from metarl.envs.registry import task_vectors
from metarl import pretrained
from metarl.normalize import ObsNormalizer

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"


# --------------------------------------------------------------------------- RNG state


def capture_rng(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG's state as tensors and scalars (weights_only-safe)."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    rng = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }
    if generator is not None:
        rng["generator"] = generator.get_state()
    return rng


def restore_rng(rng: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = rng["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss"]))
    if generator is not None and "generator" in rng:
        generator.set_state(rng["generator"])


# --------------------------------------------------------------------------- save / load


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically: temp file in the same folder, fsync, ``os.replace``.

    A crash or Ctrl-C mid-write leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format_version": FORMAT_VERSION, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def resolve_checkpoint(run_dir_or_checkpoint: str | Path, name: str = "last.pt") -> Path:
    """A checkpoint file, ``DIR/checkpoints/<name>`` of a run directory, or a shipped agent's
    (``pretrained:NAME``, ``metarl.pretrained``)."""
    if pretrained.is_pretrained(run_dir_or_checkpoint):
        return pretrained.checkpoint_path(str(run_dir_or_checkpoint))
    p = Path(run_dir_or_checkpoint)
    if not p.exists():
        raise FileNotFoundError(f"no such run directory or checkpoint: {p}")
    if p.is_dir():
        ckpt = p / CHECKPOINT_DIR / name
        if not ckpt.is_file():
            raise ValueError(f"{p} is not a metarl run directory (no {CHECKPOINT_DIR}/{name})")
        return ckpt
    return p


def load_checkpoint(run_dir_or_checkpoint: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True`` and check the format version."""
    path = resolve_checkpoint(run_dir_or_checkpoint)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a foreign or truncated file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} is not a readable metarl checkpoint ({first})") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise ValueError(f"{path} is not a metarl checkpoint (no format_version)")
    if state["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format {state['format_version']}, this metarl reads {FORMAT_VERSION}")
    return state


# --------------------------------------------------------------------------- policy and agent


def task_dim(cfg: Any) -> int:
    """Width of the task-inference head a config needs (0 without ``ppo.task_coef``)."""
    if cfg.ppo.task_coef <= 0:
        return 0
    return len(cfg.ppo.task_dims) or int(task_vectors(cfg.env.benchmark, "train").shape[-1])


def load_agent(run_dir_or_checkpoint: str | Path, device: str | torch.device = "cpu"):
    """The trained :class:`metarl.agent.Agent` of a run (``checkpoints/last.pt``) or a checkpoint file.

    ``last.pt`` rather than ``best.pt`` by default: best is chosen on the
    held-out split, so evaluating it there would be optimistic. An SB3 baseline's
    run (``checkpoints/last.zip``) gives a :class:`metarl.baselines.SB3Agent`.
    """
    p = Path(run_dir_or_checkpoint)
    if p.suffix == ".zip" or (p.is_dir() and (p / CHECKPOINT_DIR / "last.zip").is_file()):
        from metarl.baselines import load_sb3_agent  # imports SB3: only for SB3 runs

        return load_sb3_agent(p, device=device)
    device = torch.device(device)
    state = load_checkpoint(run_dir_or_checkpoint, map_location="cpu")
    cfg = config_from_dict(state["config"])
    policy = make_policy(cfg.agent, state["obs_dim"], state["action_dim"], task_dim=task_dim(cfg))
    policy.load_state_dict(state["model"])
    policy.to(device).eval()
    normalize = None
    if state.get("obs_normalizer") is not None:
        normalize = ObsNormalizer(np.zeros(state["obs_dim"], dtype=bool))
        normalize.load_state_dict(state["obs_normalizer"])
    return Agent(policy=policy, config=cfg, normalize_obs=normalize, device=device)
