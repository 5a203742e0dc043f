"""A trained agent as evaluation, videos and plots see it.

Wraps an actor-critic policy with its observation normaliser and the RL² reset
rule (memory resets where the observation's trial-start flag is set), so that
callers only pass numpy observations and carry an opaque state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from metarl.envs import TRIAL_START


@dataclass
class Agent:
    """Policy + normaliser + config, ready to act in trial envs."""

    policy: torch.nn.Module
    config: Any = None
    normalize_obs: Callable[[np.ndarray], np.ndarray] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def initial_state(self, batch_size: int) -> Any:
        return self.policy.initial_state(batch_size, self.device)

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: Any, deterministic: bool = True, diagnostics: bool = False):
        """One batched step: obs (B, D) -> env actions (B, A) numpy and the next state."""
        obs = np.asarray(obs, dtype=np.float32)
        reset = torch.as_tensor(obs[:, TRIAL_START] > 0.5, device=self.device)  # (B,)
        if self.normalize_obs is not None:
            obs = self.normalize_obs(obs)
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        out = self.policy.act(obs_t, state, reset, deterministic=deterministic, diagnostics=diagnostics)
        action = out.env_action.cpu().numpy()
        if diagnostics:
            diag = {k: v.detach().cpu().numpy() for k, v in (out.diagnostics or {}).items()}
            return action, out.state, diag
        return action, out.state
