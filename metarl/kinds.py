"""Agent kinds: which learner ``metarl train`` runs (config ``agent.kind``).

One registry for the concept: ``metarl`` (our RL² PPO over a memory cell) and
the Stable-Baselines3 baselines, trained on the same trial envs into run
directories of the same layout. Trainers are named as ``module:function`` and
imported only when a run uses them (SB3 is a heavy import nobody else needs).
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class AgentKind:
    """One learner: what it is and where its trainer lives."""

    name: str
    summary: str
    trainer: str
    """``module:function`` with the signature of :func:`metarl.train.train`."""

    @property
    def is_sb3(self) -> bool:
        return self.name.startswith("sb3-")


AGENT_KINDS: dict[str, AgentKind] = {
    k.name: k
    for k in (
        AgentKind("metarl", "metarl RL² PPO over the memory cell agent.cell", "metarl.train:train"),
        AgentKind("sb3-ppo", "Stable-Baselines3 PPO, MlpPolicy (memoryless control)", "metarl.baselines:train_sb3"),
        AgentKind("sb3-recurrent-ppo", "sb3-contrib RecurrentPPO, MlpLstmPolicy (RL² with an LSTM)",
                  "metarl.baselines:train_sb3"),
    )
}


def agent_kinds() -> list[str]:
    """Valid ``agent.kind`` names."""
    return list(AGENT_KINDS)


def get_kind(name: str) -> AgentKind:
    """The kind called ``name``; a one-line ValueError naming the closest kind and listing all."""
    if name in AGENT_KINDS:
        return AGENT_KINDS[name]
    close = difflib.get_close_matches(name, AGENT_KINDS, n=1, cutoff=0.4)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ValueError(f"unknown agent kind '{name}'{hint} (valid: {', '.join(AGENT_KINDS)})")


def trainer(name: str) -> Callable[..., Any]:
    """The training function of kind ``name``: ``trainer(name)(cfg, run_dir, resume=False) -> TrainResult``."""
    module, attr = get_kind(name).trainer.split(":")
    return getattr(importlib.import_module(module), attr)


def agent_label(cfg: Any) -> str:
    """What tells runs apart in tables and plots: the cell of a metarl run, else the kind (``sb3-ppo``)."""
    return cfg.agent.cell if cfg.agent.kind == "metarl" else cfg.agent.kind
