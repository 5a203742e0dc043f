"""Pipelined collection (env groups stepping while the policy acts for another group)
fills the buffer and stats exactly as sequential collection does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metarl.agents import AgentConfig, make_policy
from metarl.buffer import RolloutBuffer
from metarl.envs import make_vec
from metarl.graphstep import act_with_noise
from metarl.normalize import ObsNormalizer
from metarl.rollout import collect

K, L, N = 2, 20, 4  # attempts per trial, steps per attempt, envs


def _collect(envs, policy, groups: int, obs_norm, should_stop=None):
    torch.manual_seed(123)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    buffer = RolloutBuffer(envs.trial_length, envs.num_envs, obs_dim, act_dim, chunk_len=L // 2)
    rollout = collect(envs, policy, buffer, obs_norm, seed=5, step0=0, should_stop=should_stop, groups=groups)
    return buffer, rollout, torch.get_rng_state()


def _close(x, y, what: str) -> None:
    # Not bit-exact: a batched matmul's rounding depends on the batch size (CPU
    # GEMM kernels), so a group's forward differs from the full batch's in the
    # last ulp; act_with_noise itself is exact (test below).
    torch.testing.assert_close(torch.as_tensor(x), torch.as_tensor(y), rtol=1e-5, atol=1e-6, msg=what)


def _assert_same(a, b) -> None:
    (buf_a, ro_a, rng_a), (buf_b, ro_b, rng_b) = a, b
    assert torch.equal(buf_a.resets, buf_b.resets)
    for name in ("obs", "actions", "log_probs", "values", "rewards"):
        _close(getattr(buf_a, name), getattr(buf_b, name), name)
    assert len(buf_a.chunk_states) == len(buf_b.chunk_states)
    for sa, sb in zip(buf_a.chunk_states, buf_b.chunk_states):
        _close(sa, sb, "chunk state")
    for sa, sb in zip(ro_a.final_state, ro_b.final_state, strict=True):
        _close(sa, sb, "final state")
    for name in ("raw_obs", "rewards", "final_obs"):
        _close(getattr(ro_a, name), getattr(ro_b, name), name)
    np.testing.assert_array_equal(ro_a.stats.count, ro_b.stats.count)
    np.testing.assert_array_equal(ro_a.stats.success, ro_b.stats.success)
    _close(ro_a.stats.ret, ro_b.stats.ret, "returns")
    assert ro_a.stats.count.sum() == K * N  # every attempt of every env was booked
    assert torch.equal(rng_a, rng_b)  # the same noise was drawn: later updates match too


def _setup(benchmark: str, workers: int, cell: str, trial_autoreset: bool = True):
    envs = make_vec(benchmark, num_envs=N, episodes_per_trial=K, max_episode_steps=L, workers=workers,
                    trial_autoreset=trial_autoreset, pipelined=True)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    torch.manual_seed(0)
    policy = make_policy(AgentConfig(cell=cell, hidden_size=32, encoder_sizes=[32]), obs_dim, act_dim)
    mask = np.zeros(obs_dim, dtype=bool)
    mask[: obs_dim - act_dim - 3] = True
    obs_norm = ObsNormalizer(mask)
    obs_norm.update(np.random.default_rng(0).normal(0.3, 2.0, (64, obs_dim)))  # non-trivial statistics
    return envs, policy, obs_norm


@pytest.mark.parametrize("benchmark,workers,cell", [
    ("ML1/reach-v3", 2, "forget-memory"),
    ("ML1/reach-v3", 2, "mlp"),  # empty state
    ("point-nav", 2, "gru"),
    ("point-nav", 0, "forget-memory"),  # in process: group steps are synchronous
])
def test_pipelined_collection_equals_sequential(benchmark: str, workers: int, cell: str) -> None:
    envs, policy, obs_norm = _setup(benchmark, workers, cell)
    try:
        sequential = _collect(envs, policy, 1, obs_norm)
        for groups in (2, 3):
            _assert_same(sequential, _collect(envs, policy, groups, obs_norm))
    finally:
        envs.close()


def test_stop_mid_way_leaves_the_env_usable() -> None:
    envs, policy, obs_norm = _setup("ML1/reach-v3", 2, "forget-memory")
    try:
        calls = []
        stopped = _collect(envs, policy, 2, obs_norm, should_stop=lambda: calls.append(1) or len(calls) >= 7)
        assert stopped[1] is None and len(calls) == 7  # one check per finished step
        _assert_same(_collect(envs, policy, 1, obs_norm), _collect(envs, policy, 2, obs_norm))
        with pytest.raises(ValueError, match="groups must be"):
            _collect(envs, policy, 0, obs_norm)
    finally:
        envs.close()


@pytest.mark.parametrize("cell", ["forget-memory", "mlp"])
def test_given_noise_samples_exactly_as_policy_act(cell: str) -> None:
    torch.manual_seed(0)
    policy = make_policy(AgentConfig(cell=cell, hidden_size=16, encoder_sizes=[16]), 12, 3)
    with torch.no_grad():
        policy.actor_log_std.copy_(torch.tensor([-9.0, 0.3, 5.0]))  # both clamp bounds and inside
    obs, reset = torch.randn(5, 12), torch.tensor([True, False, True, True, False])
    state = policy.initial_state(5)
    torch.manual_seed(1)
    ref = policy.act(obs, state, reset)
    torch.manual_seed(1)
    out = act_with_noise(policy, obs, state, reset, torch.randn(5, 3))
    for name in ("action", "env_action", "log_prob", "value"):
        assert torch.equal(getattr(ref, name), getattr(out, name)), name
    for a, b in zip(ref.state, out.state, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("benchmark,workers", [("ML1/reach-v3", 1), ("point-nav", 0)])
def test_collection_without_trial_autoreset_is_the_same(benchmark: str, workers: int) -> None:
    """The trainer's envs start no new trial at a trial's end (collect resets them anyway):
    the rollouts are the same, bit for bit, sequential and pipelined, update after update."""
    auto, policy, obs_norm = _setup(benchmark, workers, "forget-memory")
    held = _setup(benchmark, workers, "forget-memory", trial_autoreset=False)[0]
    try:
        for groups in (1, 2, 1):
            a, h = _collect(auto, policy, groups, obs_norm), _collect(held, policy, groups, obs_norm)
            for name in ("obs", "actions", "log_probs", "values", "rewards", "resets"):
                assert torch.equal(getattr(a[0], name), getattr(h[0], name)), name
            for name in ("raw_obs", "rewards", "final_obs"):
                np.testing.assert_array_equal(getattr(a[1], name), getattr(h[1], name), err_msg=name)
            for sa, sh in zip(a[1].final_state, h[1].final_state, strict=True):
                assert torch.equal(sa, sh)
            np.testing.assert_array_equal(a[1].stats.ret, h[1].stats.ret)
    finally:
        auto.close()
        held.close()
