"""metarl.agents: recurrent and memory-augmented cells, and actor-critics on them.

Interface: docs/interfaces.md. ``make_cell``/``cells`` name every cell;
``make_policy`` builds an actor-critic on any of them.
"""

from metarl.agents.base import Cell, State
from metarl.agents.registry import cell_class, cells, make_cell

__all__ = ["Cell", "State", "cell_class", "cells", "make_cell", "make_policy", "ActorCritic", "ActOutput"]


def __getattr__(name: str):
    # Policies live in their own module; imported on first use.
    if name in ("make_policy", "ActorCritic", "ActOutput"):
        from metarl.agents import policy

        return getattr(policy, name)
    raise AttributeError(name)
