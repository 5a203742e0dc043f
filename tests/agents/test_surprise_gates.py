"""forget-memory's surprise gates: forget gates that also read the reward-prediction error.

The cell's input ends with the raw previous action (A) and reward (1); the error is that reward
minus a prediction from h_{t-1} and the action, 0 at a reset; each slot's forget logit gains
u δ + v |δ| (zero at init). Checked: the one-step path equals the sequence path, the gates move
by exactly that term, the error's definition, the policy appends the right obs dims and its
auxiliary loss trains the predictor (in a short run its loss falls), and bad options fail clearly.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from metarl import train as train_mod
from metarl.agents import make_cell, make_policy
from metarl.config import ConfigError, load_config

I, H, N, W, A = 7, 12, 6, 5, 2  # the input's last A + 1 dims: previous action, previous reward


def build(seed: int = 0, **options):
    torch.manual_seed(seed)
    return make_cell("forget-memory", I, H, slots=N, width=W, **options)


def resets(T: int, B: int) -> torch.Tensor:
    r = torch.zeros(T, B, dtype=torch.bool)
    r[0], r[4, 0], r[9] = True, True, True
    return r


@pytest.mark.parametrize("write_mode", ["input", "controller"])
def test_surprise_step_equals_sequence_with_resets(write_mode):
    T, B = 13, 3
    cell = build(surprise=True, action_dim=A, write_mode=write_mode)
    with torch.no_grad():
        cell.surprise_gates.weight.normal_()  # gates that really read the error
    x, reset = torch.randn(T, B, I), resets(T, B)
    h, c, mem = cell.initial_state(B)
    state = (torch.randn_like(h), torch.randn_like(c), mem + torch.randn_like(mem))
    with torch.no_grad():
        out, final = cell(x, state, reset)
        outs, s = [], state
        for t in range(T):
            o, s = cell.step(x[t], s, reset[t])
            outs.append(o)
    torch.testing.assert_close(torch.stack(outs), out, atol=1e-5, rtol=1e-5)
    for a, b in zip(s, final):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_gates_move_by_exactly_the_error_term_and_start_as_the_plain_cell():
    """In input mode a forget logit is from_x(x_t) alone; with surprise it is that plus u δ + v |δ|.
    With u = v = 0 (the init) the gates and outputs are the plain cell's, same parameters."""
    T, B = 10, 2
    x, reset = torch.randn(T, B, I), resets(T, B)
    plain, cell = build(), build(surprise=True, action_dim=A)
    missing = cell.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert all(k.startswith(("reward_predictor", "surprise_gates")) for k in missing) and missing
    with torch.no_grad():
        out_p, _, diag_p = plain(x, plain.initial_state(B), reset, diagnostics=True)
        out_s, _, diag_s = cell(x, cell.initial_state(B), reset, diagnostics=True)
        torch.testing.assert_close(out_s, out_p, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(diag_s["forget"], diag_p["forget"])
        cell.surprise_gates.weight.normal_()
        _, _, diag = cell(x, cell.initial_state(B), reset, diagnostics=True)
    delta = diag["surprise"]  # (T, B)
    moved = torch.logit(diag["forget"]) - torch.logit(diag_p["forget"])  # (T, B, N)
    expected = torch.stack([delta, delta.abs()], -1) @ cell.surprise_gates.weight.T  # (T, B, N)
    torch.testing.assert_close(moved, expected, atol=1e-4, rtol=1e-4)
    assert moved.abs().max() > 0.1


def test_the_error_is_the_reward_minus_its_prediction_from_the_last_state_and_zero_at_a_reset():
    T, B = 11, 2
    cell = build(surprise=True, action_dim=A)
    x, reset = torch.randn(T, B, I), resets(T, B)
    with torch.no_grad():
        out, _, diag = cell(x, cell.initial_state(B), reset, diagnostics=True)
        for t in range(1, T):
            h_prev = out[t - 1]  # the controller state that chose the previous action
            pred = cell.reward_predictor(torch.cat([h_prev, x[t, :, -A - 1:-1]], -1)).squeeze(-1)
            want = torch.where(reset[t], torch.zeros(B), x[t, :, -1] - pred)
            torch.testing.assert_close(diag["surprise"][t], want, atol=1e-5, rtol=1e-5)
    assert torch.equal(diag["surprise"][reset], torch.zeros(int(reset.sum())))


def test_bad_surprise_options_say_what_is_needed():
    with pytest.raises(ValueError, match="surprise needs learn_forget true"):
        build(surprise=True, action_dim=A, learn_forget=False)
    with pytest.raises(ValueError, match=r"surprise needs action_dim in \[1, 6\] \(the policy sets it"):
        build(surprise=True)


TOY = [
    "env.benchmark=point-nav", "env.num_envs=16", "env.episodes_per_trial=2", "env.max_episode_steps=20",
    "env.workers=0", "agent.cell=forget-memory", "agent.hidden_size=32", "agent.encoder_sizes=[32]",
    "agent.cell_options.forget-memory.slots=4", "agent.cell_options.forget-memory.width=4",
    "agent.cell_options.forget-memory.surprise=true", "ppo.epochs=4", "ppo.lr=0.003", "eval_interval=0",
    "progress=false", "tensorboard=false", "device=cpu", "torch_threads=1",
]


def test_the_policy_feeds_the_cell_the_raw_previous_action_and_reward():
    cfg = load_config(None, TOY)
    obs_dim, action_dim = 9, 2  # point-nav: env 2 | action 2 | reward | 2 flags ... padded here
    policy = make_policy(cfg.agent, obs_dim, action_dim)
    assert policy.has_surprise and policy.cell.input_size == 32 + action_dim + 1
    obs = torch.randn(3, 2, obs_dim)
    z = policy._cell_input(obs)  # (T, B, E + A + 1)
    torch.testing.assert_close(z[..., 32:], obs[..., obs_dim - 3 - action_dim:obs_dim - 2])
    plain = make_policy(load_config(None, TOY[:-8] + TOY[-7:]).agent, obs_dim, action_dim)
    assert not plain.has_surprise
    with pytest.raises(ValueError, match="no surprise gates"):
        plain.evaluate(obs, plain.initial_state(2), torch.zeros(3, 2, dtype=torch.bool), torch.zeros(3, 2, 2),
                       with_surprise=True)


def test_surprise_needs_its_loss():
    with pytest.raises(ConfigError, match="surprise: true needs 'ppo.surprise_coef' > 0"):
        load_config(None, TOY + ["ppo.surprise_coef=0"])


def test_training_lowers_the_reward_prediction_error_and_the_agent_reloads(tmp_path):
    """On point-nav the reward (-distance) follows from the position and the goal the state holds:
    the auxiliary loss falls by half in a short run, and the saved agent evaluates with its gates."""
    cfg = load_config(None, TOY + ["total_steps=48000"])
    train_mod.train(cfg, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    first = np.mean([float(r["losses/surprise_loss"]) for r in rows[:3]])
    last = np.mean([float(r["losses/surprise_loss"]) for r in rows[-3:]])
    assert last < 0.5 * first, (first, last)
    from metarl.checkpoint import load_agent

    agent = load_agent(tmp_path)
    assert agent.policy.has_surprise and agent.policy.cell.surprise_gates.weight.abs().sum() > 0
