"""metarl.envs: Meta-World benchmarks and toy tasks as RL² trial environments.

Public API (mirrors gymnasium's names):
- ``make_env(benchmark, split=, episodes_per_trial=, seed=, ...)`` one trial env
  (``metarl.envs.trial``, where the observation layout and trial rules live);
- ``make_vec(benchmark, split=, num_envs=, episodes_per_trial=, seed=, ...)`` a
  vector env of them, several per worker process over shared memory
  (``metarl.envs.vector``);
- ``tasks(benchmark, split)`` the split's task class names;
  ``benchmarks()`` every valid benchmark name.

Observation layout and trial semantics: docs/interfaces.md.
"""

TRIAL_START = -1  # index of the trial-start flag in every trial observation
EPISODE_START = -2  # index of the episode-start flag

from metarl.envs.registry import benchmarks, tasks  # noqa: E402
from metarl.envs.trial import TrialEnv, make_env  # noqa: E402
from metarl.envs.vector import TrialVectorEnv, make_vec  # noqa: E402

__all__ = [
    "TRIAL_START",
    "EPISODE_START",
    "TrialEnv",
    "TrialVectorEnv",
    "benchmarks",
    "make_env",
    "make_vec",
    "tasks",
]
