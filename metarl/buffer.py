"""Rollout storage for recurrent PPO on whole trials, GAE, and BPTT minibatches.

A rollout is (T, N): T = one trial's length, N envs. Per-step policy states
are NOT stored (too costly for memory matrices); only the state at the start
of every truncated-BPTT chunk of ``chunk_len`` steps. A minibatch is a set of
(chunk, env) sequences replayed from their stored start states, so recomputed
log-probs equal the rollout's as long as the parameters are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

State = tuple[torch.Tensor, ...]


@dataclass
class Minibatch:
    """(L, M, ...) sequences of M (chunk, env) pairs and their start states (M, ...)."""

    obs: torch.Tensor  # (L, M, D)
    resets: torch.Tensor  # (L, M) bool
    actions: torch.Tensor  # (L, M, A)
    log_probs: torch.Tensor  # (L, M)
    values: torch.Tensor  # (L, M)
    advantages: torch.Tensor  # (L, M)
    returns: torch.Tensor  # (L, M)
    state0: State  # each (M, ...)
    task_targets: torch.Tensor | None = None  # (M, F) or (L, M, F) hidden task vectors, when a task-inference loss uses them


def chunk_length(trial_length: int, bptt_len: int) -> int:
    """Chunk length for a trial: ``bptt_len`` (0 = whole trial); must divide the trial."""
    if bptt_len <= 0 or bptt_len >= trial_length:
        return trial_length
    if trial_length % bptt_len:
        divisors = [d for d in range(1, trial_length + 1) if trial_length % d == 0]
        near = sorted(divisors, key=lambda d: abs(d - bptt_len))[:3]
        raise ValueError(
            f"ppo.bptt_len={bptt_len} must divide the trial length {trial_length}; "
            f"try {', '.join(map(str, sorted(near)))} or 0 (whole trials)"
        )
    return bptt_len


class RolloutBuffer:
    """Preallocated (T, N) tensors on ``device`` plus chunk-start policy states."""

    def __init__(self, T: int, N: int, obs_dim: int, action_dim: int, chunk_len: int, device: torch.device | str = "cpu"):
        if T % chunk_len:
            raise ValueError(f"chunk length {chunk_len} must divide the rollout length {T}")
        self.T, self.N, self.L = T, N, chunk_len
        self.C = T // chunk_len  # chunks per trial
        self.device = torch.device(device)
        z = dict(device=self.device)
        self.obs = torch.zeros(T, N, obs_dim, **z)  # normalised, as the policy saw them
        self.resets = torch.zeros(T, N, dtype=torch.bool, **z)
        self.actions = torch.zeros(T, N, action_dim, **z)
        self.log_probs = torch.zeros(T, N, **z)
        self.values = torch.zeros(T, N, **z)
        self.rewards = torch.zeros(T, N, **z)  # raw env rewards
        self.advantages = torch.zeros(T, N, **z)
        self.returns = torch.zeros(T, N, **z)
        self.chunk_states: State | None = None  # each (C, N, ...)
        # (N, F) per trial, or (T, N, F) per step where the task switches mid-trial: set by the trainer
        self.task_targets: torch.Tensor | None = None

    def store_state(self, t: int, state: State) -> None:
        """Call before acting at step t; keeps the state if t starts a chunk."""
        if t % self.L:
            return
        if self.chunk_states is None:
            self.chunk_states = tuple(torch.zeros((self.C, *s.shape), dtype=s.dtype, device=self.device) for s in state)
        for buf, s in zip(self.chunk_states, state):
            buf[t // self.L].copy_(s.detach())

    def minibatches(self, num_minibatches: int, generator: torch.Generator) -> Iterator[Minibatch]:
        """Shuffle the C*N (chunk, env) sequences and yield ``num_minibatches`` groups."""
        S = self.C * self.N
        num = max(1, min(num_minibatches, S))
        perm = torch.randperm(S, generator=generator)
        for idx in perm.chunk(num):
            idx = idx.to(self.device)
            c_idx, n_idx = idx // self.N, idx % self.N  # (M,), (M,)

            def seq(x: torch.Tensor) -> torch.Tensor:
                # (T, N, ...) -> (C, L, N, ...) -> [c, :, n] (M, L, ...) -> (L, M, ...)
                x = x.view(self.C, self.L, self.N, *x.shape[2:])
                return x[c_idx, :, n_idx].transpose(0, 1)

            state0 = tuple(s[c_idx, n_idx] for s in (self.chunk_states or ()))  # each (M, ...)
            yield Minibatch(
                obs=seq(self.obs),
                resets=seq(self.resets),
                actions=seq(self.actions),
                log_probs=seq(self.log_probs),
                values=seq(self.values),
                advantages=seq(self.advantages),
                returns=seq(self.returns),
                state0=state0,
                task_targets=self._task_targets(seq, n_idx),
            )

    def _task_targets(self, seq, n_idx: torch.Tensor) -> torch.Tensor | None:
        """The minibatch's task targets: (M, F) per trial or (L, M, F) per step."""
        if self.task_targets is None:
            return None
        return self.task_targets[n_idx] if self.task_targets.dim() == 2 else seq(self.task_targets)


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over one trial per env: (T, N) rewards/values, (N,) value after the last step.

    No done inside the rollout: attempts of a trial are one RL² episode, so
    advantages flow across attempt boundaries (time-limit truncations of
    attempts are not terminations). ``last_value`` is 0 when the trial end is
    treated as terminal, or the value of the final observation when it is
    bootstrapped as a truncation. Returns (advantages, returns), each (T, N).
    """
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    gae = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * next_value - values[t]
        gae = delta + gamma * gae_lambda * gae
        advantages[t] = gae
        next_value = values[t]
    return advantages, advantages + values
