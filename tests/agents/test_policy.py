"""ActorCritic: rollout steps agree with sequence evaluation; heads behave as documented."""

from __future__ import annotations

import math

import pytest
import torch

from metarl.agents import ActOutput, AgentConfig, cells, make_policy


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


OBS, ACT, T, B = 6, 3, 9, 4


def small_policy(cell: str, **kw):
    torch.manual_seed(0)
    return make_policy(AgentConfig(cell=cell, hidden_size=16, encoder_sizes=[12], **kw), OBS, ACT)


def resets() -> torch.Tensor:
    r = torch.zeros(T, B, dtype=torch.bool)
    r[0] = True
    r[4, 1] = True
    r[6, :2] = True
    return r


@pytest.mark.parametrize("cell", cells())
def test_act_steps_match_evaluate_over_the_sequence(cell):
    policy = small_policy(cell)
    obs = torch.randn(T, B, OBS)
    reset = resets()
    state0 = policy.initial_state(B)
    state = state0
    actions, log_probs, values = [], [], []
    with torch.no_grad():
        for t in range(T):
            out = policy.act(obs[t], state, reset[t])
            assert isinstance(out, ActOutput)
            state = out.state
            actions.append(out.action)
            log_probs.append(out.log_prob)
            values.append(out.value)
        lp, ent, v = policy.evaluate(obs, state0, reset, torch.stack(actions))
    assert lp.shape == ent.shape == v.shape == (T, B)
    torch.testing.assert_close(lp, torch.stack(log_probs), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(v, torch.stack(values), atol=1e-4, rtol=1e-4)


def test_get_value_equals_act_value():
    policy = small_policy("lstm")
    obs = torch.randn(B, OBS)
    state = policy.initial_state(B)
    reset = torch.tensor([True, False, True, False])
    with torch.no_grad():
        out = policy.act(obs, state, reset)
        v = policy.get_value(obs, state, reset)
    assert v.shape == (B,)
    torch.testing.assert_close(v, out.value)


def test_env_action_is_clipped_sample_and_deterministic_is_mean_in_bounds():
    policy = small_policy("gru", init_log_std=1.5)  # wide: many samples fall outside [-1, 1]
    obs = torch.randn(64, OBS) * 5
    state = policy.initial_state(64)
    reset = torch.ones(64, dtype=torch.bool)
    with torch.no_grad():
        out = policy.act(obs, state, reset)
        det1 = policy.act(obs, state, reset, deterministic=True)
        det2 = policy.act(obs, state, reset, deterministic=True)
    assert out.action.abs().max() > 1.0  # raw sample is kept unclipped
    torch.testing.assert_close(out.env_action, out.action.clamp(-1, 1))
    assert det1.action.abs().max() <= 1.0
    torch.testing.assert_close(det1.action, det2.action)
    # log-prob of the raw sample under N(mean, std), summed over dims
    std = math.exp(1.5)
    expected = torch.distributions.Normal(det1.action, std).log_prob(out.action).sum(-1)
    torch.testing.assert_close(out.log_prob, expected, atol=1e-4, rtol=1e-4)


def test_entropy_follows_learned_log_std():
    obs = torch.randn(T, B, OBS)
    a = torch.zeros(T, B, ACT)
    ents = []
    for ls in (-1.0, 0.0):
        policy = small_policy("mlp", init_log_std=ls)
        _, ent, _ = policy.evaluate(obs, policy.initial_state(B), resets(), a)
        ents.append(ent)
    # Gaussian entropy per dim is 0.5 * log(2 pi e) + log_std
    torch.testing.assert_close(ents[1] - ents[0], torch.full((T, B), float(ACT)))


@pytest.mark.parametrize("cell", ["mlp", "gru", "lstm"])
def test_evaluate_gradients_reach_every_parameter(cell):
    policy = small_policy(cell)
    obs = torch.randn(T, B, OBS)
    lp, ent, v = policy.evaluate(obs, policy.initial_state(B), resets(), torch.randn(T, B, ACT))
    (lp.sum() + ent.sum() + v.sum()).backward()
    missing = [n for n, p in policy.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_memoryless_policy_ignores_history_and_recurrent_policy_does_not():
    obs = torch.randn(T, 1, OBS)
    no_reset = torch.zeros(T, 1, dtype=torch.bool)
    a = torch.zeros(T, 1, ACT)
    for cell, depends in (("mlp", False), ("gru", True)):
        policy = small_policy(cell)
        obs2 = obs.clone()
        obs2[0] += 3.0  # change only the first step
        with torch.no_grad():
            _, _, v1 = policy.evaluate(obs, policy.initial_state(1), no_reset, a)
            _, _, v2 = policy.evaluate(obs2, policy.initial_state(1), no_reset, a)
        assert bool((v1[1:] - v2[1:]).abs().max() > 1e-6) == depends, cell


def test_unknown_cell_names_valid_ones():
    with pytest.raises(ValueError, match="lstm"):
        make_policy(AgentConfig(cell="lstmm"), OBS, ACT)


@pytest.mark.parametrize("cell", [c for c in cells() if c not in ("mlp", "gru", "lstm")])
def test_act_passes_cell_diagnostics_per_env(cell):
    policy = small_policy(cell)
    with torch.no_grad():
        out = policy.act(torch.randn(B, OBS), policy.initial_state(B), torch.ones(B, dtype=torch.bool), diagnostics=True)
        plain = policy.act(torch.randn(B, OBS), policy.initial_state(B), torch.ones(B, dtype=torch.bool))
    assert plain.diagnostics is None
    assert out.diagnostics, "memory cells report diagnostics"
    for name, value in out.diagnostics.items():
        assert value.shape[0] == B, name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cell", cells())
def test_evaluate_on_cuda_matches_cpu(cell):
    policy = small_policy(cell)
    obs, actions = torch.randn(T, B, OBS), torch.randn(T, B, ACT)
    with torch.no_grad():
        cpu = policy.evaluate(obs, policy.initial_state(B), resets(), actions)
        policy = policy.cuda()
        gpu = policy.evaluate(obs.cuda(), policy.initial_state(B, "cuda"), resets().cuda(), actions.cuda())
        out = policy.act(obs[0].cuda(), policy.initial_state(B, "cuda"), resets()[0].cuda())
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=1e-4)
    assert out.action.device.type == "cuda" and all(s.device.type == "cuda" for s in out.state)


def test_normal_log_prob_is_normals_formula_exactly():
    from metarl.agents.policy import normal_log_prob

    torch.manual_seed(0)
    mean, std, x = torch.randn(7, 3), torch.rand(3) + 0.1, torch.randn(7, 3)
    ref = torch.distributions.Normal(mean, std.expand_as(mean), validate_args=False).log_prob(x)
    assert torch.equal(normal_log_prob(x, mean, std), ref)


@pytest.mark.parametrize("cell", ["forget-memory", "gru"])
def test_act_samples_as_normal_sample_does(cell):
    """``act``'s own draw uses the RNG as ``Normal(mean, std).sample()`` does: same actions."""
    policy = small_policy(cell)
    obs, reset = torch.randn(B, OBS), torch.ones(B, dtype=torch.bool)
    with torch.no_grad():
        det = policy.act(obs, policy.initial_state(B), reset, deterministic=True)
        std = policy.actor_log_std.exp().expand_as(det.action)
        torch.manual_seed(3)
        ref = torch.distributions.Normal(det.action, std).sample()
        torch.manual_seed(3)
        out = policy.act(obs, policy.initial_state(B), reset)
    assert torch.equal(out.action, ref)


def test_one_agent_config_serves_the_trainer_and_the_factory():
    from metarl.config import AgentConfig as TrainerAgentConfig
    from metarl.config import ConfigError, load_config

    assert TrainerAgentConfig is AgentConfig
    cfg = load_config(None, ["agent.cell=gru", "agent.hidden_size=16", "agent.encoder_sizes=[12]"]).agent
    policy = make_policy(cfg, OBS, ACT)
    assert type(policy.cell).__name__ == "GRUCell" and policy.cell.hidden_size == 16 and policy.config is cfg
    assert policy.task_head is None and make_policy(cfg, OBS, ACT, task_dim=3).task_head.out_features == 3
    with pytest.raises(ConfigError, match=r"config key 'agent.cell': unknown cell 'lstmm'.*Valid cells:") as err:
        load_config(None, ["agent.cell=lstmm"])
    assert "\n" not in str(err.value)


def test_ignored_obs_dims_change_nothing_and_the_others_do():
    policy = small_policy("gru", ignore_obs=[1, 3])
    obs = torch.randn(T, B, OBS)
    reset = resets()
    actions = torch.randn(T, B, ACT)
    state = policy.initial_state(B)
    changed = obs.clone()
    changed[..., [1, 3]] += 5.0
    with torch.no_grad():
        base = policy.evaluate(obs, state, reset, actions)
        same = policy.evaluate(changed, state, reset, actions)
        step = policy.act(changed[0], state, reset[0], deterministic=True)
        step_base = policy.act(obs[0], state, reset[0], deterministic=True)
        seen = obs.clone()
        seen[..., 0] += 5.0
        other = policy.evaluate(seen, state, reset, actions)
    for a, b in zip(base, same):
        assert torch.equal(a, b)
    assert torch.equal(step.action, step_base.action)
    assert not torch.allclose(base[2], other[2])  # dim 0 is seen
    assert "obs_keep" not in policy.state_dict()  # checkpoints keep their keys


def test_ignore_obs_out_of_range_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"ignore_obs indices \[6\] are outside the 6-dim observation"):
        small_policy("gru", ignore_obs=[0, 6])
