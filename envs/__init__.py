"""metarl.envs: Meta-World benchmarks and toy tasks as RL² trial environments.

Observation layout and trial semantics: docs/interfaces.md.
"""

TRIAL_START = -1  # index of the trial-start flag in every trial observation
EPISODE_START = -2  # index of the episode-start flag
