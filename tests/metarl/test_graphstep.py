"""``PolicyStepper``: the static-tensor (CUDA graph on GPU) policy step equals the eager one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metarl.agents import AgentConfig, make_policy
from metarl.buffer import RolloutBuffer
from metarl.envs import make_vec
from metarl.graphstep import PolicyStepper, act_with_noise
from metarl.rollout import collect

CELLS = ["forget-memory", "lstm", "mlp"]


def _policy(cell: str, device="cpu", obs_dim: int = 12, act_dim: int = 3):
    torch.manual_seed(0)
    return make_policy(AgentConfig(cell=cell, hidden_size=16, encoder_sizes=[16]), obs_dim, act_dim).to(device)


def _steps(policy, step_fn, B: int, T: int, device) -> list[torch.Tensor]:
    """T steps from the initial state with fixed inputs; every output copied."""
    g = torch.Generator().manual_seed(7)
    state = policy.initial_state(B, device)
    outs = []
    for t in range(T):
        obs = torch.randn(B, policy.obs_dim, generator=g).to(device)
        reset = (torch.rand(B, generator=g) < (1.0 if t == 0 else 0.2)).to(device)
        noise = torch.randn(B, policy.action_dim, generator=g).to(device)
        out = step_fn(obs, state, reset, noise)
        state = out.state
        outs += [out.action.clone(), out.log_prob.clone(), out.value.clone(), *(s.clone() for s in out.state)]
    return outs


@pytest.mark.parametrize("cell", CELLS)
def test_static_step_equals_eager_step_on_cpu(cell):
    policy = _policy(cell)
    stepper = PolicyStepper(policy, "cpu")
    assert not stepper.use_graph  # CPU: the same static-tensor path, run eagerly
    with torch.no_grad():
        eager = _steps(policy, lambda o, s, r, n: act_with_noise(policy, o, s, r, n), 5, 6, "cpu")
    static = _steps(policy, stepper, 5, 6, "cpu")
    for a, b in zip(eager, static, strict=True):
        assert torch.equal(a, b)


def test_slots_keep_their_own_outputs():
    policy = _policy("forget-memory")
    stepper = PolicyStepper(policy, "cpu")
    state = policy.initial_state(4)
    obs, reset = torch.randn(4, 12), torch.ones(4, dtype=torch.bool)
    a = stepper(obs, state, reset, torch.zeros(4, 3), slot=0)
    kept = a.action.clone()
    stepper(obs + 1.0, state, reset, torch.ones(4, 3), slot=1)  # same batch size, other slot
    assert torch.equal(a.action, kept)


@pytest.mark.parametrize("groups", [1, 2])
def test_collect_with_a_stepper_equals_collect_without(groups):
    envs = make_vec("point-nav", num_envs=4, episodes_per_trial=2, max_episode_steps=10, workers=0, pipelined=groups > 1)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    policy = _policy("forget-memory", obs_dim=obs_dim, act_dim=act_dim)
    results = []
    for stepper in (None, PolicyStepper(policy, "cpu")):
        torch.manual_seed(3)
        buffer = RolloutBuffer(envs.trial_length, 4, obs_dim, act_dim, chunk_len=10)
        rollout = collect(envs, policy, buffer, None, seed=11, groups=groups, stepper=stepper)
        results.append((buffer, rollout))
    envs.close()
    (buf_a, ro_a), (buf_b, ro_b) = results
    for name in ("obs", "actions", "log_probs", "values", "rewards", "resets"):
        assert torch.equal(getattr(buf_a, name), getattr(buf_b, name)), name
    for sa, sb in zip(buf_a.chunk_states, buf_b.chunk_states, strict=True):
        assert torch.equal(sa, sb)
    for sa, sb in zip(ro_a.final_state, ro_b.final_state, strict=True):
        assert torch.equal(sa, sb)
    np.testing.assert_array_equal(ro_a.stats.ret, ro_b.stats.ret)


def test_mann_is_never_captured():
    policy = _policy("mann")
    assert not policy.cell.graph_safe
    assert not PolicyStepper(policy, "cuda" if torch.cuda.is_available() else "cpu").use_graph


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cell", CELLS)
def test_cuda_graph_step_equals_eager_and_sees_parameter_updates(cell):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    policy = _policy(cell, "cuda")
    stepper = PolicyStepper(policy, "cuda")
    with torch.no_grad():
        eager = _steps(policy, lambda o, s, r, n: act_with_noise(policy, o, s, r, n), 8, 6, "cuda")
    graphed = _steps(policy, stepper, 8, 6, "cuda")
    assert stepper.graphed, stepper.fallback_reason
    for a, b in zip(eager, graphed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # an optimizer step updates parameters in place: the graph must see it
        for p in policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
        eager = _steps(policy, lambda o, s, r, n: act_with_noise(policy, o, s, r, n), 8, 3, "cuda")
    graphed = _steps(policy, stepper, 8, 3, "cuda")
    for a, b in zip(eager, graphed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
