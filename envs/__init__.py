"""metarl.envs: Meta-World benchmarks and toy tasks as RL² trial environments.

Public API (mirrors gymnasium's names):
- ``make_env(benchmark, split=, episodes_per_trial=, seed=, ...)`` one trial env
  (``metarl.envs.trial``, where the observation layout and trial rules live);
- ``make_vec(benchmark, split=, num_envs=, episodes_per_trial=, seed=, ...)`` a
  vector env of them, several per worker process over shared memory
  (``metarl.envs.vector``);
- ``tasks(benchmark, split)`` the split's task class names;
  ``benchmarks()`` every valid benchmark name.

Observation layout (``ObsLayout``, ``metarl.envs.obs_layout``) and trial semantics: docs/interfaces.md.
"""

from metarl.envs.obs_layout import CLOCK_DIMS, EPISODE_START, TRIAL_START, ObsLayout
from metarl.envs.registry import benchmarks, tasks
from metarl.envs.trial import TrialEnv, make_env
from metarl.envs.vector import TrialVectorEnv, make_vec

__all__ = [
    "CLOCK_DIMS",
    "EPISODE_START",
    "ObsLayout",
    "TRIAL_START",
    "TrialEnv",
    "TrialVectorEnv",
    "benchmarks",
    "make_env",
    "make_vec",
    "tasks",
]
