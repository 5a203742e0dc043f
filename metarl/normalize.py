"""Running mean/std normalisers for observations and rewards.

Statistics are float64 tensors updated with the parallel-variance formula
(Chan et al.), so a batch update equals a per-sample one and batches from
several ranks merge exactly. The trainer keeps them frozen during a rollout
and updates them after it, so the observations stored in the buffer are
exactly what the policy saw (the PPO ratio stays 1 at the first minibatch).
"""

from __future__ import annotations

import numpy as np
import torch

from metarl.envs.obs_layout import ObsLayout


class RunningMeanStd:
    """Mean and variance of a stream of vectors of shape ``shape``."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = torch.zeros(shape, dtype=torch.float64)
        self.var = torch.ones(shape, dtype=torch.float64)
        self.count = torch.tensor(epsilon, dtype=torch.float64)

    def update(self, x: torch.Tensor | np.ndarray) -> None:
        """Fold in a batch ``x`` of shape (..., *shape)."""
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).to(torch.float64)
        x = x.reshape(-1, *self.mean.shape)  # (M, *shape)
        self.update_from_moments(x.mean(0), x.var(0, unbiased=False), torch.tensor(float(x.shape[0]), dtype=torch.float64))

    def update_from_moments(self, batch_mean: torch.Tensor, batch_var: torch.Tensor, batch_count: torch.Tensor) -> None:
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta.pow(2) * self.count * batch_count / total
        self.mean, self.var, self.count = new_mean, m2 / total, total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.mean = state["mean"].to(torch.float64).clone()
        self.var = state["var"].to(torch.float64).clone()
        self.count = state["count"].to(torch.float64).clone()


def obs_mask(layout: ObsLayout, obs: bool = True, reward_input: bool = False) -> np.ndarray:
    """The dims the trainer normalises, (D,) bool: the env obs and the clock (``obs``) and
    the previous reward (``reward_input``); never the previous action or the flags."""
    mask = np.zeros(layout.dim, dtype=bool)
    mask[: layout.action.start] = obs  # env obs and clock
    mask[layout.reward] = reward_input
    return mask


class ObsNormalizer:
    """Normalises the dims selected by ``mask``; the others pass through unchanged.

    The trainer selects the env-observation dims (and optionally the
    previous-reward dim), never the previous action (already in [-1, 1]) nor the
    episode/trial flags: the flags drive memory resets and their raw 0/1 values
    are the clearest signal a cell can get.
    """

    def __init__(self, mask: np.ndarray, clip: float = 10.0, epsilon: float = 1e-8):
        self.mask = np.asarray(mask, dtype=bool)
        self.rms = RunningMeanStd(shape=(int(self.mask.sum()),))
        self.clip = clip
        self.epsilon = epsilon
        self._refresh()

    def _refresh(self) -> None:
        """Cache float32 numpy mean/std (statistics are frozen between updates)."""
        self._mean = self.rms.mean.numpy().astype(np.float32)
        self._std = np.sqrt(self.rms.var.numpy() + self.epsilon).astype(np.float32)

    def update(self, obs: np.ndarray) -> None:
        """Fold in raw observations (..., D)."""
        self.rms.update(np.asarray(obs)[..., self.mask])
        self._refresh()

    def update_from_moments(self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor) -> None:
        """Fold in a batch given by its moments over the masked dims (e.g. merged across ranks)."""
        self.rms.update_from_moments(mean, var, count)
        self._refresh()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalised copy of raw observations (..., D), float32."""
        out = np.array(obs, dtype=np.float32, copy=True)
        if self.mask.any():
            out[..., self.mask] = np.clip((out[..., self.mask] - self._mean) / self._std, -self.clip, self.clip)
        return out

    def state_dict(self) -> dict:
        return {"mask": torch.as_tensor(self.mask), "rms": self.rms.state_dict(), "clip": self.clip}

    def load_state_dict(self, state: dict) -> None:
        self.mask = state["mask"].numpy().astype(bool)
        self.rms.load_state_dict(state["rms"])
        self.clip = float(state["clip"])
        self._refresh()


class ReturnScaler:
    """Scales rewards by the running std of the discounted return (as VecNormalize does).

    Fed with whole rollouts (T, N) after collection; the running return per env
    restarts at trial start, because every rollout is whole trials.
    """

    def __init__(self, gamma: float, epsilon: float = 1e-8):
        self.gamma = gamma
        self.epsilon = epsilon
        self.rms = RunningMeanStd(shape=())

    def discounted_returns(self, rewards: torch.Tensor) -> torch.Tensor:
        """Forward discounted running return per step, (T, N) -> (T, N)."""
        rewards = rewards.detach().to("cpu", torch.float64)
        out = torch.empty_like(rewards)
        ret = torch.zeros(rewards.shape[1], dtype=torch.float64)
        for t in range(rewards.shape[0]):
            ret = ret * self.gamma + rewards[t]
            out[t] = ret
        return out

    @property
    def std(self) -> float:
        return float(torch.sqrt(self.rms.var + self.epsilon))

    def scale(self, rewards: torch.Tensor) -> torch.Tensor:
        return rewards / self.std

    def state_dict(self) -> dict:
        return {"rms": self.rms.state_dict(), "gamma": self.gamma}

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state["rms"])
        self.gamma = float(state["gamma"])
