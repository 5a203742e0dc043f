"""Trial-aligned collection and evaluation with one batched policy forward per env step.

Every update resets the vector env with a seed derived from (config seed,
rank, update) and steps it exactly ``trial_length`` times, so each env holds
one whole trial: memory starts fresh at step 0 (the trial-start flag) and
all envs end their trial together at the last step. Resume therefore needs no
env state, only counters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metarl.agent import Agent
from metarl.buffer import RolloutBuffer
from metarl.envs import TRIAL_START
from metarl.graphstep import PolicyStepper, act_with_noise
from metarl.normalize import ObsNormalizer
from metarl.ppo import NonFiniteError
from metarl.trials import AttemptStats, attempt_stats


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (config seed, rank, update ...), well mixed."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint32)[0] >> 1)


def make_envs(env_cfg, split: str, num_envs: int, trial_autoreset: bool = True):
    """The trial vector env a config describes (``env_cfg`` an ``EnvConfig``).

    ``trial_autoreset=False`` for envs that only ``collect`` steps: it resets
    every env at the start of each trial, so a new trial started at the end
    of the last one would be thrown away (see ``make_vec``)."""
    from metarl.envs import make_vec

    return make_vec(
        env_cfg.benchmark,
        split=split,
        num_envs=num_envs,
        episodes_per_trial=env_cfg.episodes_per_trial,
        max_episode_steps=env_cfg.max_episode_steps,
        reward_scale=env_cfg.reward_scale,
        workers=env_cfg.workers,
        spin=env_cfg.spin,
        pipelined=env_cfg.collect_groups > 1,
        caller_share=env_cfg.caller_share,
        trial_autoreset=trial_autoreset,
        clock=env_cfg.clock,
        task_switches=env_cfg.task_switches,
        switch_class=env_cfg.switch_class,
    )


def _check_finite(x: np.ndarray, what: str, step: int, env_ids: np.ndarray | None = None) -> None:
    """Raise ``NonFiniteError`` naming the env; ``env_ids`` maps rows of ``x`` to env indices."""
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        env = int(bad[0]) if env_ids is None else int(env_ids[bad[0]])
        raise NonFiniteError(f"non-finite {what} at env step {step} (env {env}): {x[tuple(bad)]}")


@dataclass
class Rollout:
    """What collection returns besides the filled buffer."""

    raw_obs: np.ndarray  # (T, N, D) before normalisation, for the normaliser update
    rewards: np.ndarray  # (T, N) raw env rewards
    final_obs: np.ndarray  # (N, D) raw last observation of each trial
    final_state: tuple  # policy state after the last step
    stats: AttemptStats
    tasks: np.ndarray  # (N, 2) each env's trial task: (task_id, goal index)
    step_tasks: np.ndarray | None = None  # (T, N, 2) the task of every step; only where tasks switch mid-trial


def _select(state: tuple, rows: torch.Tensor) -> tuple:
    """The states of envs ``rows`` (batch is dim 0 of every state tensor)."""
    return tuple(s[rows] for s in state)


def _merge(states: list[tuple], rows: list[torch.Tensor], N: int) -> tuple:
    """One state for all N envs from per-group states (group g holds envs ``rows[g]``)."""
    if len(states) == 1:
        return states[0]
    merged = []
    for parts in zip(*states):  # the g-th group's tensor of one state component
        full = parts[0].new_empty((N, *parts[0].shape[1:]))  # (N, ...)
        for part, r in zip(parts, rows):
            full.index_copy_(0, r, part)
        merged.append(full)
    return tuple(merged)


@torch.no_grad()
def collect(
    envs,
    policy: torch.nn.Module,
    buffer: RolloutBuffer,
    obs_norm: ObsNormalizer | None,
    seed: int,
    step0: int = 0,
    should_stop=None,
    groups: int = 1,
    stepper: PolicyStepper | None = None,
    obs_noise: float = 0.0,
    noise_dims: slice | None = None,
) -> Rollout | None:
    """Fill ``buffer`` with one trial per env; None if ``should_stop()`` turned true mid-way.

    ``groups`` > 1 pipelines that many env groups (``envs.split_groups``):
    the policy acts for one group while the others step, at one policy
    forward per group per step. The buffer, stats and states equal those of
    ``groups=1`` up to matmul rounding (each step's action noise is drawn once
    for all envs). It pays only where a policy forward costs less than the
    envs' step (measured in ``bench/train.py``): on 2 shared cores it loses.

    ``stepper`` (a :class:`~metarl.graphstep.PolicyStepper` over ``policy``)
    runs each policy step through static tensors, replayed as a CUDA graph on
    a GPU; its actions use noise drawn per step for all envs, like ``groups`` > 1.

    ``obs_noise`` > 0 adds Gaussian noise of that std to the ``noise_dims`` of what the
    policy sees (after normalisation; also what the buffer keeps), drawn from a generator
    seeded with ``seed``: augmentation, so training tasks cannot be told apart by
    task-irrelevant features alone. 0 draws nothing.
    """
    T, N, device = buffer.T, buffer.N, buffer.device
    if isinstance(groups, bool) or not isinstance(groups, int) or not 1 <= groups <= N:
        raise ValueError(f"groups must be an integer in [1, num_envs={N}], got {groups!r}")
    G = groups
    k = envs.episodes_per_trial
    obs, reset_infos = envs.reset(seed=seed)
    tasks = np.stack([reset_infos["task_id"], reset_infos["goal"]], axis=1).astype(np.int64)  # (N, 2)
    ids = [np.arange(N)] if G == 1 else envs.split_groups(G)  # env indices per group
    rows = [slice(None)] if G == 1 else [torch.as_tensor(i, device=device) for i in ids]
    raw_obs = np.empty((T, N, obs.shape[-1]), dtype=np.float32)
    rewards = np.empty((T, N), dtype=np.float32)
    stats = AttemptStats(k)
    ended = np.zeros(N, dtype=np.int64)  # attempts ended so far per env
    state = policy.initial_state(N, device)
    states = [state] if G == 1 else [_select(state, r) for r in rows]
    obs_g = [obs[i] for i in ids]  # the obs each group acts on next, (N_g, D)
    # results of the step in flight, filled group by group: done, success, return, trial end, final obs
    done, ep_success, ep_return = np.zeros(N, bool), np.zeros(N, bool), np.zeros(N)
    trial_end, final_obs = np.zeros(N, bool), np.zeros_like(obs)
    # where the task can switch mid-trial, the task each step was taken in (infos name it per step)
    step_tasks = np.empty((T, N, 2), dtype=np.int64) if envs.task_switches else None

    def receive(g: int, t: int) -> None:
        """Results of group g's step t: its next obs, rewards, attempt ends."""
        i = ids[g]
        o, r, term, trunc, infos = last_step if G == 1 else envs.step_group_wait(i)
        _check_finite(np.asarray(r, dtype=np.float64), "reward", step0 + t * N, i)
        obs_g[g], rewards[t, i] = o, r
        done[i] = np.logical_or(term, trunc)
        ep_success[i], ep_return[i] = infos["episode_success"], infos["episode_return"]
        trial_end[i], final_obs[i] = infos["trial_end"], infos["final_obs"]
        if step_tasks is not None:
            step_tasks[t, i, 0], step_tasks[t, i, 1] = infos["task_id"], infos["goal"]

    def finish_step() -> bool:
        """Book a step all groups received (in env order, as one batch); True to stop."""
        if done.any():
            idx = np.flatnonzero(done)
            stats.add(np.minimum(ended[idx], k - 1), ep_success[idx], ep_return[idx])
            ended[idx] += 1
        return should_stop is not None and should_stop()

    draw = G > 1 or stepper is not None  # noise drawn here for all envs, not inside policy.act
    obs_rng = np.random.default_rng([seed, 1]) if obs_noise > 0 else None
    # A stop or error may leave group steps in flight: the env's next reset finishes them.
    for t in range(T):
        step = step0 + t * N
        if t % buffer.L == 0:
            buffer.store_state(t, _merge(states, rows, N))
        noise = torch.randn(N, envs.single_action_space.shape[0], device=device) if draw else None  # (N, A)
        for g in range(G):
            if t > 0:
                receive(g, t - 1)
                if g == G - 1 and finish_step():
                    return None
            i, r = ids[g], rows[g]
            _check_finite(obs_g[g], "observation", step, i)
            raw_obs[t, i] = obs_g[g]
            x = obs_norm(obs_g[g]) if obs_norm is not None else obs_g[g]
            if obs_rng is not None:
                x = np.array(x, dtype=np.float32)  # a copy: the raw obs stay untouched
                cols = x[:, noise_dims]  # (N_g, D_env)
                x[:, noise_dims] = cols + obs_noise * obs_rng.standard_normal(cols.shape, dtype=np.float32)
            obs_t = torch.from_numpy(x).to(device, non_blocking=True)  # (N_g, D)
            reset = obs_t[:, TRIAL_START] > 0.5  # (N_g,) flags are never normalised
            if noise is None:
                out = policy.act(obs_t, states[g], reset)
            elif stepper is not None:
                out = stepper(obs_t, states[g], reset, noise[r], slot=g)  # static outputs: copied below
            else:
                out = act_with_noise(policy, obs_t, states[g], reset, noise[r])
            buffer.obs[t][r] = obs_t
            buffer.resets[t][r] = reset
            buffer.actions[t][r] = out.action
            buffer.log_probs[t][r] = out.log_prob
            buffer.values[t][r] = out.value
            states[g] = out.state
            if G == 1:
                last_step = envs.step(out.env_action.cpu().numpy())
            else:
                envs.step_group_async(i, out.env_action.cpu().numpy())
    for g in range(G):
        receive(g, T - 1)
    if finish_step():
        return None
    if not np.all(trial_end):
        raise RuntimeError(
            f"trial misaligned: after {T} steps only {int(np.sum(trial_end))}/{N} envs ended their trial"
        )
    buffer.rewards.copy_(torch.from_numpy(rewards))
    final_state = tuple(x.clone() for x in _merge(states, rows, N))  # a stepper's states are overwritten on replay
    return Rollout(raw_obs, rewards, final_obs.astype(np.float32), final_state, stats, tasks, step_tasks)


def evaluate_trials(envs, policy: torch.nn.Module, obs_norm: ObsNormalizer | None, trials: int, seed: int, device) -> AttemptStats:
    """Deterministic actions on ``trials`` whole trials per env; success/return by attempt
    (``metarl.trials.attempt_stats``, with the policy in eval mode)."""
    was_training = policy.training
    policy.eval()
    try:
        return attempt_stats(Agent(policy, normalize_obs=obs_norm, device=device), envs, trials, seed)
    finally:
        policy.train(was_training)
