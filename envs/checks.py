"""Argument rules of the envs layer: one function per concept, each a one-line ``ValueError``.

``make_env``/``make_vec`` and the vector envs check their arguments with these,
and the training config (``metarl.config.validate``) applies the same functions
to its ``env.*`` keys with the key as ``name``, so each rule and its message is
written once (all but ``check_task_switches``: the config words that key's bounds
its own way, see ``metarl.config.validate``). Each returns the value it accepted.
"""

from __future__ import annotations

import numpy as np


def check_positive(name: str, value: int) -> int:
    """``value`` if it is an int >= 1 (``num_envs``, ``episodes_per_trial``, ``max_episode_steps``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_fraction(name: str, value: float, what: str) -> float:
    """``value`` if it is a number in [0, 1], else "``name`` must be ``what``, got ...\""""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_workers(name: str, value: int) -> int:
    """Env worker processes: an int >= 0 (0: every env steps in the calling process)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0 (0: in-process), got {value!r}")
    return int(value)


def check_caller_share(name: str, value: float) -> float:
    """The calling process's block of envs, as a fraction of a worker's (``metarl.envs.vector``)."""
    return check_fraction(name, value, "a fraction in [0, 1] of a worker's block (0: the caller steps no envs)")


def check_spin(name: str, value: float) -> float:
    """Seconds a worker polls for its next command before it blocks (``metarl.envs.pipelined``)."""
    return check_fraction(name, value, "seconds in [0, 1] (0: workers block at once)")


def check_task_switches(name: str, value: int, episodes_per_trial: int) -> int:
    """Task switches per trial: an int in [0, episodes_per_trial - 1] (at most one per attempt after the first)."""
    k = episodes_per_trial
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= k - 1:
        raise ValueError(f"{name} must be an integer in [0, episodes_per_trial - 1 = {k - 1}] "
                         f"(at most one switch per attempt after the first), got {value!r}")
    return int(value)
