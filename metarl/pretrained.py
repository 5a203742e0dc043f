"""Shipped agents: trained checkpoints installed with the package, named ``pretrained:NAME``.

Each agent is two files in ``metarl/shipped/``: ``NAME.pt`` (a checkpoint stripped
to what acting needs: config, weights, observation normaliser, counters) and
``NAME.json`` (its card: what it was trained on, how long, and the held-out
success measured for it, with the command that measured it). ``load_agent``,
``metarl evaluate`` and ``metarl record`` accept ``pretrained:NAME`` wherever
they take a run directory; ``metarl pretrained`` lists the cards.
"""

from __future__ import annotations

import argparse
import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "pretrained:"
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
# What a shipped checkpoint keeps: enough to act and to say what it is; not the optimiser,
# the return scaler, the RNG or the sampler (those only resume training).
KEEP_KEYS = ("config", "obs_dim", "action_dim", "model", "obs_normalizer", "counters")


@dataclass
class Card:
    """What a shipped agent is and what was measured for it (``NAME.json``)."""

    name: str
    benchmark: str
    cell: str
    env_steps: int
    heldout_success: float
    """Mean final-attempt success on the benchmark's held-out (test) split."""
    heldout_ci: tuple[float, float]
    """95% CI of ``heldout_success`` over its trials."""
    actions: str
    """``sampled`` or ``deterministic``: the action mode of ``heldout_success``."""
    trials: int
    """Held-out trials per task class behind the figure (ML10/ML45: times its 5 classes)."""
    measured_by: str
    """The command that gave ``heldout_success``."""
    trained_by: str
    """The command (and commit) that trained the agent."""
    wall_time_s: float = 0.0
    """Training seconds, and on what machine, in ``notes``."""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """Other measured figures (e.g. deterministic success, attempt 1)."""


def _card_path(name: str) -> Path:
    return SHIPPED_DIR / f"{name}.json"


def names() -> list[str]:
    """Names of every shipped agent, sorted."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json")) if SHIPPED_DIR.is_dir() else []


def card(name: str) -> Card:
    """The card of shipped agent ``name``; ValueError naming the closest valid names."""
    valid = names()
    if name not in valid:
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(valid) if valid else "none are installed"
        raise ValueError(f"unknown pretrained agent {name!r}{hint} (valid: {listing})")
    data = json.loads(_card_path(name).read_text())
    data["heldout_ci"] = tuple(data["heldout_ci"])
    return Card(**data)


def is_pretrained(source: str | Path) -> bool:
    """Whether ``source`` names a shipped agent (``pretrained:NAME``)."""
    return isinstance(source, str) and source.startswith(PREFIX)


def checkpoint_path(source: str) -> Path:
    """The installed checkpoint of ``pretrained:NAME``."""
    name = source[len(PREFIX):]
    card(name)  # unknown names fail here, with the valid ones
    return SHIPPED_DIR / f"{name}.pt"


def table() -> str:
    """The ``metarl pretrained`` listing: one row per shipped agent."""
    rows = [card(n) for n in names()]
    if not rows:
        return "no pretrained agents are installed"
    head = f"{'name':<16} {'benchmark':<20} {'cell':<14} {'env steps':>10}  held-out success (95% CI), actions, trials per class"
    lines = [head]
    for c in rows:
        lo, hi = c.heldout_ci
        lines.append(f"{c.name:<16} {c.benchmark:<20} {c.cell:<14} {c.env_steps:>10,}  "
                     f"{c.heldout_success:.2f} ({lo:.2f}-{hi:.2f}), {c.actions}, {c.trials}")
    lines.append("use as: metarl evaluate pretrained:NAME | metarl record pretrained:NAME --task TASK --out FILE")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pretrained", help="list the shipped agents (use them as pretrained:NAME)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", help="show one agent's whole card")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name:
        print(json.dumps(asdict(card(args.name[len(PREFIX):] if is_pretrained(args.name) else args.name)), indent=2))
    else:
        print(table())
    return 0


def size_mb(name: str) -> float:
    """Size of a shipped checkpoint in MB (the package keeps each to a few MB)."""
    return (SHIPPED_DIR / f"{name}.pt").stat().st_size / 1e6


__all__ = ["Card", "PREFIX", "SHIPPED_DIR", "card", "checkpoint_path", "is_pretrained", "names", "table"]
