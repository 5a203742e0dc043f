"""One way to play whole trials of an agent: reset, act, step, and book each env's ended attempts.

Every caller that plays trials with a trained (or training) agent goes through
:func:`play_trials`: the trainer's held-out evaluation and the SB3 baselines'
(:func:`attempt_stats`), ``metarl evaluate`` (``metarl.evaluate.run_trials``),
``metarl plot``'s memory trace (``metarl.diagnostics.trace_memory``) and
``metarl record`` (``metarl.record.record_trial``). Each adds only what it needs
through two callbacks: ``on_act`` sees the step the agent just chose (its
observations, actions and memory diagnostics: frames, memory strips),
``on_step`` what the envs answered (task switches, progress). A single trial
env plays as a vector env of one through :class:`SingleEnvBatch`.

Collection for PPO (``metarl.rollout.collect``) is not a caller: it fills the
learner's buffer, pipelines env groups and checks every value, at one policy
forward per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


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


@dataclass
class Step:
    """One vector step as the callbacks see it (arrays are the runner's: read, don't keep)."""

    t: int
    """Steps played since the reset, before this one."""
    obs: np.ndarray
    """(N, D) the observations the agent acted on."""
    infos: dict[str, np.ndarray]
    """The infos that came with ``obs``: the reset's at ``t`` = 0, else the previous step's."""
    ended: np.ndarray
    """(N,) attempts each env had ended before this step."""
    action: np.ndarray
    """(N, A) the actions chosen."""
    diagnostics: dict[str, np.ndarray] | None
    """The cell's memory diagnostics of this step, (N, ...) each, with ``diagnostics=True``; else None."""


@dataclass
class Played:
    """What :func:`play_trials` returns."""

    success: np.ndarray
    """(N, A) bool: attempt a of env i succeeded (A = attempts that fit in the steps played)."""
    returns: np.ndarray
    """(N, A) float64: its raw return."""
    ended: np.ndarray
    """(N,) attempts each env ended."""
    reset_infos: dict[str, np.ndarray]
    """The infos of the reset (each env's first task)."""
    infos: dict[str, np.ndarray]
    """The infos of the last step played."""
    stopped: bool = False
    """A callback stopped the play early."""


class SingleEnvBatch:
    """A trial env (``metarl.envs.TrialEnv``) as a vector env of one: arrays with a batch dim of 1,
    and the next attempt reset in the step that ended one (the trial's last attempt stays as it
    ended, like a vector env made with ``trial_autoreset=False``)."""

    num_envs = 1

    def __init__(self, env: Any) -> None:
        self.env = env
        self.episodes_per_trial = env.episodes_per_trial
        self.max_episode_steps = env.max_episode_steps
        self.trial_length = env.trial_length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return obs[None], _batch(info)  # (1, D)

    def step(self, actions: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        if (terminated or truncated) and not info["trial_end"]:
            obs, _ = self.env.reset()  # the next attempt of the trial
        return obs[None], np.array([reward]), np.array([terminated]), np.array([truncated]), _batch(info)


def _batch(info: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.array([v]) for k, v in info.items()}  # (1,) each


def play_trials(
    agent: Any,
    envs: Any,
    steps: int,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    deterministic: bool = True,
    explore_attempts: int = 0,
    diagnostics: bool = False,
    on_act: Callable[[Step], bool | None] | None = None,
    on_step: Callable[[Step, dict[str, np.ndarray], np.ndarray], None] | None = None,
) -> Played:
    """Reset ``envs`` (``seed``, ``options``), start the agent's memory and play ``steps`` vector steps.

    ``agent``: ``initial_state(N)`` and ``act(obs, state, deterministic=, diagnostics=)`` as
    :class:`metarl.agent.Agent`. ``envs``: a trial vector env (or :class:`SingleEnvBatch`);
    with trial autoreset, ``steps`` may span several trials per env. Actions are the policy
    mean if ``deterministic``, except in each env's first ``explore_attempts`` attempts
    (they sample). ``on_act(step)`` runs after the agent acted and before the envs step;
    returning True stops the play there (``Played.stopped``). ``on_step(step, infos, done)``
    runs after the envs stepped, before the ended attempts are booked (``done`` (N,) bool).
    """
    obs, infos = envs.reset(seed=seed, options=options)
    reset_infos = infos
    n = envs.num_envs
    attempts = -(-steps // envs.max_episode_steps)  # ceil: attempts that fit in the steps
    success = np.zeros((n, attempts), dtype=bool)  # (N, A)
    returns = np.zeros((n, attempts))  # (N, A)
    ended = np.zeros(n, dtype=np.int64)  # attempts finished per env
    state = agent.initial_state(n)
    for t in range(steps):
        # attempts run in lockstep (equal lengths), so every env is in attempt ended.min() + 1
        det = deterministic and int(ended.min()) >= explore_attempts
        if diagnostics:
            action, state, diag = agent.act(obs, state, deterministic=det, diagnostics=True)
        else:
            (action, state), diag = agent.act(obs, state, deterministic=det), None
        step = Step(t, obs, infos, ended, action, diag)
        if on_act is not None and on_act(step):
            return Played(success, returns, ended, reset_infos, infos, stopped=True)
        obs, _, terminated, truncated, infos = envs.step(action)
        done = np.logical_or(terminated, truncated)
        if on_step is not None:
            on_step(step, infos, done)
        for i in np.flatnonzero(done):
            if ended[i] < attempts:
                success[i, ended[i]] = bool(infos["episode_success"][i])
                returns[i, ended[i]] = float(infos["episode_return"][i])
            ended[i] += 1
    return Played(success, returns, ended, reset_infos, infos)


def attempt_stats(agent: Any, envs: Any, trials: int, seed: int) -> AttemptStats:
    """Deterministic actions on ``trials`` whole trials per env of an autoresetting trial vector
    env: success and return by attempt (the training-time held-out evaluation)."""
    k = envs.episodes_per_trial
    played = play_trials(agent, envs, trials * envs.trial_length, seed=seed)
    stats = AttemptStats(k)
    for a in range(played.success.shape[1]):  # attempts end in lockstep: booked in the order the envs ended them
        idx = np.flatnonzero(played.ended > a)
        stats.add(np.full(idx.size, a % k), played.success[idx, a], played.returns[idx, a])
    return stats
