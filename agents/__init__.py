"""metarl.agents: recurrent and memory-augmented cells, and actor-critics on them.

Interface: docs/interfaces.md. ``make_cell``/``cells`` name every cell;
``make_policy(AgentConfig(...), obs_dim, action_dim)`` builds an actor-critic on any of them.
"""

from metarl.agents.base import Cell, State
from metarl.agents.config import AgentConfig, cell_options_for
from metarl.agents.policy import ActorCritic, ActOutput, make_policy
from metarl.agents.registry import cell_class, cells, check_cell, make_cell

__all__ = ["ActOutput", "ActorCritic", "AgentConfig", "Cell", "State", "cell_class", "cell_options_for", "cells",
           "check_cell", "make_cell", "make_policy"]
