"""``ObsLayout``: where each part of a trial observation lies (docs/interfaces.md).

Every trial env's observation is one flat float32 vector::

    [ env obs (D_env) | clock (CLOCK_DIMS, with clock=True) | previous action (A)
      | previous reward * reward_scale (1) | episode-start flag (1) | trial-start flag (1) ]

This module is the one place that spells it; envs, the trainer's normaliser
and the Meta-World protocol adapter read positions from an ``ObsLayout``.
"""

from __future__ import annotations

from dataclasses import dataclass

CLOCK_DIMS = 2  # (share of the attempt left, share of the trial left)
TRIAL_START = -1  # index of the trial-start flag in every trial observation
EPISODE_START = -2  # index of the episode-start flag
TAIL_DIMS = 3  # previous reward, episode-start flag, trial-start flag


@dataclass(frozen=True)
class ObsLayout:
    """Positions in a trial observation of ``env_dim`` env dims and ``action_dim`` action dims."""

    env_dim: int
    action_dim: int
    clock: bool = False

    @property
    def dim(self) -> int:
        """Length of the whole observation."""
        return self.action.stop + TAIL_DIMS

    @property
    def env(self) -> slice:
        """The env's own observation."""
        return slice(0, self.env_dim)

    @property
    def clock_dims(self) -> slice:
        """The clock (empty without ``clock``)."""
        return slice(self.env_dim, self.env_dim + (CLOCK_DIMS if self.clock else 0))

    @property
    def action(self) -> slice:
        """The previous action."""
        start = self.clock_dims.stop
        return slice(start, start + self.action_dim)

    @property
    def reward(self) -> int:
        """Index of the previous reward (times ``reward_scale``)."""
        return self.action.stop

    @property
    def flags(self) -> slice:
        """The episode-start and trial-start flags, in that order."""
        return slice(self.dim + EPISODE_START, self.dim)

    @property
    def episode_start(self) -> int:
        return self.dim + EPISODE_START

    @property
    def trial_start(self) -> int:
        return self.dim + TRIAL_START
