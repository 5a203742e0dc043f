"""Trial-aligned collection and evaluation with one batched policy forward per env step.

Every update resets the vector env with a seed derived from (config seed,
rank, update) and steps it exactly ``trial_length`` times, so each env holds
one whole trial: memory starts fresh at step 0 (the trial-start flag) and
all envs end their trial together at the last step. Resume therefore needs no
env state, only counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from metarl.buffer import RolloutBuffer
from metarl.envs import TRIAL_START
from metarl.normalize import ObsNormalizer
from metarl.ppo import NonFiniteError


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (config seed, rank, update ...), well mixed."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint32)[0] >> 1)


def make_envs(env_cfg, split: str, num_envs: int):
    """The trial vector env a config describes (``env_cfg`` an ``EnvConfig``)."""
    from metarl.envs import make_vec

    return make_vec(
        env_cfg.benchmark,
        split=split,
        num_envs=num_envs,
        episodes_per_trial=env_cfg.episodes_per_trial,
        max_episode_steps=env_cfg.max_episode_steps,
        reward_scale=env_cfg.reward_scale,
        workers=env_cfg.workers,
    )


@dataclass
class AttemptStats:
    """Success and return per attempt (1-based), summed over ended attempts."""

    episodes_per_trial: int
    success: np.ndarray = field(init=False)
    ret: np.ndarray = field(init=False)
    count: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k = self.episodes_per_trial
        self.success, self.ret, self.count = np.zeros(k), np.zeros(k), np.zeros(k)

    def add(self, attempt_index: np.ndarray, success: np.ndarray, ret: np.ndarray) -> None:
        """``attempt_index`` 0-based, one entry per ended attempt."""
        np.add.at(self.success, attempt_index, success.astype(np.float64))
        np.add.at(self.ret, attempt_index, ret.astype(np.float64))
        np.add.at(self.count, attempt_index, 1.0)

    def metrics(self, prefix: str) -> dict[str, float]:
        """``<prefix>/success``, ``/return`` and per attempt ``_attempt_<k>`` means."""
        out: dict[str, float] = {}
        if self.count.sum() == 0:
            return out
        out[f"{prefix}/success"] = float(self.success.sum() / self.count.sum())
        out[f"{prefix}/return"] = float(self.ret.sum() / self.count.sum())
        for k in range(self.episodes_per_trial):
            if self.count[k]:
                out[f"{prefix}/success_attempt_{k + 1}"] = float(self.success[k] / self.count[k])
                out[f"{prefix}/return_attempt_{k + 1}"] = float(self.ret[k] / self.count[k])
        return out


def _check_finite(x: np.ndarray, what: str, step: int) -> None:
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise NonFiniteError(f"non-finite {what} at env step {step} (env {int(bad[0])}): {x[tuple(bad)]}")


@dataclass
class Rollout:
    """What collection returns besides the filled buffer."""

    raw_obs: np.ndarray  # (T, N, D) before normalisation, for the normaliser update
    rewards: np.ndarray  # (T, N) raw env rewards
    final_obs: np.ndarray  # (N, D) raw last observation of each trial
    final_state: tuple  # policy state after the last step
    stats: AttemptStats


@torch.no_grad()
def collect(
    envs,
    policy: torch.nn.Module,
    buffer: RolloutBuffer,
    obs_norm: ObsNormalizer | None,
    seed: int,
    step0: int = 0,
    should_stop=None,
) -> Rollout | None:
    """Fill ``buffer`` with one trial per env; None if ``should_stop()`` turned true mid-way."""
    T, N, device = buffer.T, buffer.N, buffer.device
    k = envs.episodes_per_trial
    obs, _ = envs.reset(seed=seed)
    raw_obs = np.empty((T, N, obs.shape[-1]), dtype=np.float32)
    rewards = np.empty((T, N), dtype=np.float32)
    stats = AttemptStats(k)
    ended = np.zeros(N, dtype=np.int64)  # attempts ended so far per env
    state = policy.initial_state(N, device)
    infos: dict = {}
    for t in range(T):
        step = step0 + t * N
        _check_finite(obs, "observation", step)
        raw_obs[t] = obs
        x = obs_norm(obs) if obs_norm is not None else obs
        obs_t = torch.from_numpy(x).to(device, non_blocking=True)  # (N, D)
        reset = obs_t[:, TRIAL_START] > 0.5  # (N,) flags are never normalised
        buffer.store_state(t, state)
        out = policy.act(obs_t, state, reset)
        buffer.obs[t] = obs_t
        buffer.resets[t] = reset
        buffer.actions[t] = out.action
        buffer.log_probs[t] = out.log_prob
        buffer.values[t] = out.value
        state = out.state
        obs, reward, terminated, truncated, infos = envs.step(out.env_action.cpu().numpy())
        _check_finite(np.asarray(reward, dtype=np.float64), "reward", step)
        rewards[t] = reward
        done = np.logical_or(terminated, truncated)
        if done.any():
            idx = np.flatnonzero(done)
            stats.add(np.minimum(ended[idx], k - 1), infos["episode_success"][idx], infos["episode_return"][idx])
            ended[idx] += 1
        if should_stop is not None and should_stop():
            return None
    if not np.all(infos["trial_end"]):
        raise RuntimeError(
            f"trial misaligned: after {T} steps only {int(np.sum(infos['trial_end']))}/{N} envs ended their trial"
        )
    buffer.rewards.copy_(torch.from_numpy(rewards))
    return Rollout(raw_obs, rewards, np.asarray(infos["final_obs"], dtype=np.float32), state, stats)


@torch.no_grad()
def evaluate_trials(envs, policy: torch.nn.Module, obs_norm: ObsNormalizer | None, trials: int, seed: int, device) -> AttemptStats:
    """Deterministic actions on ``trials`` whole trials per env; success/return by attempt."""
    N, k, T = envs.num_envs, envs.episodes_per_trial, envs.trial_length
    was_training = policy.training
    policy.eval()
    obs, _ = envs.reset(seed=seed)
    state = policy.initial_state(N, device)
    stats = AttemptStats(k)
    ended = np.zeros(N, dtype=np.int64)
    for _ in range(trials * T):
        x = obs_norm(obs) if obs_norm is not None else np.asarray(obs, dtype=np.float32)
        obs_t = torch.from_numpy(x).to(device)  # (N, D)
        out = policy.act(obs_t, state, obs_t[:, TRIAL_START] > 0.5, deterministic=True)
        state = out.state
        obs, _, terminated, truncated, infos = envs.step(out.env_action.cpu().numpy())
        done = np.logical_or(terminated, truncated)
        if done.any():
            idx = np.flatnonzero(done)
            stats.add(ended[idx] % k, infos["episode_success"][idx], infos["episode_return"][idx])
            ended[idx] += 1
    policy.train(was_training)
    return stats
