"""Run directories as ``metarl plot`` reads them: metrics, resolved config, evaluations; seeds grouped.

:func:`load_run` reads ``metrics.csv`` (columns as float arrays), ``config.yaml``
and any ``eval_<split>.json``; :func:`group_runs` puts runs that differ only in
seed and bookkeeping keys (:func:`config_signature`) together, as seeds of one config.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from metarl.envs.registry import get_benchmark

# config keys that do not change what is learned: runs differing only here are seeds of one config
_NON_CONFIG_KEYS = {"seed", "progress", "tensorboard", "device", "torch_threads", "checkpoint_interval",
                    "save_interval", "eval_interval", "deterministic", "env.workers"}


@dataclass
class RunData:
    """What the plots need from one run directory."""

    path: Path
    columns: dict[str, np.ndarray]
    config: dict[str, Any] = field(default_factory=dict)
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> evaluate JSON

    @property
    def label(self) -> str:
        env, agent = self.config.get("env", {}), self.config.get("agent", {})
        if env or agent:
            kind = agent.get("kind", "metarl")
            return f"{env.get('benchmark', '?')} · {agent.get('cell', '?') if kind == 'metarl' else kind}"
        return self.path.name


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "cell_options":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
    return out


def config_signature(config: dict[str, Any]) -> tuple:
    """Hashable config without seed and bookkeeping keys: equal for seeds of one config."""
    flat = _flatten(config)
    return tuple(sorted((k, str(v)) for k, v in flat.items() if k not in _NON_CONFIG_KEYS))


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv -> column name -> float array (NaN where a cell is empty)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows yet")
    cols: dict[str, np.ndarray] = {}
    for name in rows[0]:
        values = []
        for r in rows:
            cell = r.get(name, "")
            try:
                values.append(float(cell) if cell not in ("", None) else math.nan)
            except ValueError:
                values.append(math.nan)
        cols[name] = np.array(values)
    return cols


def load_run(path: str | Path) -> RunData:
    """Read metrics.csv, config.yaml and eval_<split>.json of a run directory."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such run directory: {p}")
    if not p.is_dir() or not (p / "metrics.csv").is_file():
        raise ValueError(f"{p} is not a metarl run directory (no metrics.csv)")
    config: dict[str, Any] = {}
    if (p / "config.yaml").is_file():
        config = yaml.safe_load((p / "config.yaml").read_text()) or {}
    env = config.get("env") or {}
    if "episodes_per_trial" in env and env["episodes_per_trial"] is None:  # written before config.yaml said the K played
        try:
            env["episodes_per_trial"] = get_benchmark(env.get("benchmark", "")).default_episodes_per_trial
        except ValueError:  # a benchmark this version does not know: leave it as written
            pass
    evals = {}
    for split in ("train", "test"):
        f = p / f"eval_{split}.json"
        if f.is_file():
            evals[split] = json.loads(f.read_text())
    return RunData(p, read_metrics(p / "metrics.csv"), config, evals)


def group_runs(runs: list[RunData]) -> dict[str, list[RunData]]:
    """Runs grouped by config signature (seeds together), labelled by benchmark and cell."""
    groups: dict[tuple, list[RunData]] = {}
    for r in runs:
        groups.setdefault(config_signature(r.config) if r.config else (str(r.path),), []).append(r)
    out: dict[str, list[RunData]] = {}
    for i, members in enumerate(groups.values()):
        label = members[0].label
        if label in out or sum(m[0].label == label for m in groups.values()) > 1:
            label = f"{label} (config {i + 1})"
        out[label] = members
    return out
