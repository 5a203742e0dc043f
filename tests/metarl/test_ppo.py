"""PPO pieces: GAE, BPTT minibatches with stored chunk-start states, the loss, normalisers."""

import numpy as np
import pytest
import torch

from metarl.agents import AgentConfig, make_policy
from metarl.buffer import RolloutBuffer, chunk_length, compute_gae
from metarl.config import PPOConfig
from metarl.envs import make_vec
from metarl.normalize import ObsNormalizer, ReturnScaler, RunningMeanStd
from metarl.ppo import NonFiniteError, ppo_update
from metarl.rollout import collect


def test_gae_lambda_one_is_monte_carlo_return_and_lambda_zero_is_td():
    g = torch.Generator().manual_seed(0)
    r, v = torch.rand(7, 3, generator=g), torch.rand(7, 3, generator=g)
    last = torch.rand(3, generator=g)
    adv, ret = compute_gae(r, v, last, gamma=0.9, gae_lambda=1.0)
    mc = torch.zeros(7, 3)
    acc = last.clone()
    for t in reversed(range(7)):
        acc = r[t] + 0.9 * acc
        mc[t] = acc
    assert torch.allclose(ret, mc, atol=1e-6)
    adv0, _ = compute_gae(r, v, last, gamma=0.9, gae_lambda=0.0)
    nxt = torch.cat([v[1:], last[None]])
    assert torch.allclose(adv0, r + 0.9 * nxt - v, atol=1e-6)


def test_chunk_length_rejects_non_divisors_with_suggestions():
    assert chunk_length(80, 0) == 80 and chunk_length(80, 20) == 20 and chunk_length(80, 500) == 80
    with pytest.raises(ValueError, match="must divide the trial length 80"):
        chunk_length(80, 30)


def test_minibatches_cover_every_step_once_with_their_chunk_states():
    T, N, L = 12, 3, 4
    buf = RolloutBuffer(T, N, obs_dim=2, action_dim=1, chunk_len=L)
    buf.obs[..., 0] = torch.arange(T)[:, None].float()  # time
    buf.obs[..., 1] = torch.arange(N)[None, :].float()  # env
    for t in range(T):
        buf.store_state(t, (torch.arange(N).float() * 100 + t,))  # state encodes (env, t)
    seen = set()
    for mb in buf.minibatches(4, torch.Generator().manual_seed(0)):
        L_, M, _ = mb.obs.shape
        assert L_ == L and mb.state0[0].shape == (M,)
        for m in range(M):
            t0, n = int(mb.obs[0, m, 0]), int(mb.obs[0, m, 1])
            assert t0 % L == 0 and mb.state0[0][m] == n * 100 + t0  # the state stored at the chunk start
            assert mb.obs[:, m, 0].tolist() == list(range(t0, t0 + L))  # consecutive steps of one env
            seen.update((t0 + i, n) for i in range(L))
    assert seen == {(t, n) for t in range(T) for n in range(N)}


@pytest.mark.parametrize("cell, bptt", [("gru", 0), ("forget-memory", 20)])
def test_first_minibatch_ratio_is_one_with_stored_states(cell, bptt):
    """Log-probs recomputed from stored chunk-start states reproduce the rollout's."""
    torch.manual_seed(0)
    envs = make_vec("point-nav", num_envs=4, episodes_per_trial=2)
    D, A = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    policy = make_policy(AgentConfig(cell=cell, hidden_size=16, encoder_sizes=[16],
                                     cell_options={"slots": 4, "width": 4} if cell == "forget-memory" else {}), D, A)
    T = envs.trial_length
    buf = RolloutBuffer(T, 4, D, A, chunk_length(T, bptt))
    norm = ObsNormalizer(np.r_[np.ones(2, bool), np.zeros(D - 2, bool)])
    norm.update(np.random.default_rng(0).normal(size=(50, D)))  # non-trivial frozen statistics
    assert collect(envs, policy, buf, norm, seed=3) is not None
    with torch.no_grad():
        for mb in buf.minibatches(3, torch.Generator().manual_seed(1)):
            log_prob, _, value = policy.evaluate(mb.obs, mb.state0, mb.resets, mb.actions)
            assert torch.allclose(log_prob, mb.log_probs, atol=1e-4)
            assert torch.allclose(value, mb.values, atol=1e-4)
    buf.advantages.normal_()
    buf.returns.normal_()
    cfg = PPOConfig(epochs=1, num_minibatches=2, bptt_len=bptt)
    metrics = ppo_update(policy, torch.optim.Adam(policy.parameters(), lr=1e-2), buf, cfg, torch.Generator().manual_seed(2))
    assert metrics["losses/first_ratio_dev"] < 1e-4
    assert metrics["losses/approx_kl"] > 0  # later minibatches did move the policy
    envs.close()


def test_memory_resets_only_at_trial_start():
    envs = make_vec("point-nav", num_envs=2, episodes_per_trial=3)
    D, A = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    policy = make_policy(AgentConfig(cell="gru", hidden_size=8, encoder_sizes=[]), D, A)
    buf = RolloutBuffer(envs.trial_length, 2, D, A, envs.trial_length)
    collect(envs, policy, buf, None, seed=0)
    assert buf.resets[0].all() and not buf.resets[1:].any()
    envs.close()


def test_nonfinite_loss_is_reported_with_step():
    envs = make_vec("bandit", num_envs=2, episodes_per_trial=3)
    D, A = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    policy = make_policy(AgentConfig(cell="mlp", hidden_size=8, encoder_sizes=[]), D, A)
    buf = RolloutBuffer(envs.trial_length, 2, D, A, envs.trial_length)
    collect(envs, policy, buf, None, seed=0)
    buf.returns[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="non-finite PPO loss at env step 42"):
        ppo_update(policy, torch.optim.Adam(policy.parameters()), buf, PPOConfig(), torch.Generator(), step=42)
    envs.close()


def test_running_mean_std_batches_equal_one_pass():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 4))
    a, b = RunningMeanStd((4,)), RunningMeanStd((4,))
    a.update(x)
    for chunk in np.array_split(x, 7):
        b.update(chunk)
    assert torch.allclose(a.mean, b.mean) and torch.allclose(a.var, b.var)
    assert np.allclose(a.mean.numpy(), x.mean(0), atol=1e-3) and np.allclose(a.var.numpy(), x.var(0), rtol=1e-3)


def test_obs_normalizer_leaves_unmasked_dims_and_round_trips():
    mask = np.array([True, True, False])
    norm = ObsNormalizer(mask)
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(500, 3)).astype(np.float32)
    norm.update(x)
    y = norm(x)
    assert np.allclose(y[:, 2], x[:, 2])  # flag-like dim untouched
    assert abs(y[:, :2].mean()) < 0.05 and abs(y[:, :2].std() - 1) < 0.05
    other = ObsNormalizer(np.zeros(3, bool))
    other.load_state_dict(norm.state_dict())
    assert np.array_equal(other(x), y)


def test_return_scaler_uses_discounted_return_std():
    s = ReturnScaler(gamma=0.0)  # return = reward, so the scale is the reward std
    r = torch.from_numpy(np.random.default_rng(0).normal(1.0, 2.0, size=(2000, 2)))
    s.rms.update(s.discounted_returns(r).reshape(-1))
    assert s.std == pytest.approx(2.0, rel=0.05)
    assert s.scale(r).std().item() == pytest.approx(1.0, rel=0.05)
    s2 = ReturnScaler(gamma=0.5)
    assert torch.allclose(s2.discounted_returns(torch.ones(3, 1)).squeeze(), torch.tensor([1.0, 1.5, 1.75], dtype=torch.float64))
