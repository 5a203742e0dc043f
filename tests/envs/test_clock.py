"""The trial's clock in the observation (``clock=True``)."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.envs import make_env, make_vec
from metarl.envs.trial import CLOCK_DIMS


@pytest.mark.parametrize("benchmark", ["point-nav", "ML1/reach-v3"])
def test_clock_counts_down_attempts_and_the_trial_and_changes_nothing_else(benchmark: str) -> None:
    plain = make_env(benchmark, episodes_per_trial=2, max_episode_steps=3, seed=5)
    timed = make_env(benchmark, episodes_per_trial=2, max_episode_steps=3, seed=5, clock=True)
    d = plain.benchmark_spec.observation_space().shape[0]
    assert timed.observation_space.shape[0] == plain.observation_space.shape[0] + CLOCK_DIMS
    rng = np.random.default_rng(0)
    clocks = []
    for trial in range(2):
        for attempt in range(2):
            o_p, _ = plain.reset()
            o_t, _ = timed.reset()
            seen = [(o_p, o_t)]
            for _ in range(3):
                a = rng.uniform(-1, 1, plain.action_space.shape).astype(np.float32)
                o_p, r_p, *_ = plain.step(a)
                o_t, r_t, *_ = timed.step(a)
                assert r_p == r_t
                seen.append((o_p, o_t))
            for o_p, o_t in seen:
                np.testing.assert_array_equal(o_t[:d], o_p[:d])
                np.testing.assert_array_equal(o_t[d + CLOCK_DIMS:], o_p[d:])
                assert timed.observation_space.contains(o_t)
                clocks.append(o_t[d : d + CLOCK_DIMS].tolist())
    one_trial = [[1, 1], [2 / 3, 5 / 6], [1 / 3, 4 / 6], [0, 3 / 6], [1, 3 / 6], [2 / 3, 2 / 6], [1 / 3, 1 / 6], [0, 0]]
    np.testing.assert_allclose(clocks, one_trial * 2, atol=1e-6)


def test_vector_env_with_clock_equals_its_envs_stepped_one_by_one() -> None:
    envs = make_vec("point-nav", num_envs=3, episodes_per_trial=2, max_episode_steps=4, seed=2, clock=True)
    singles = [make_env("point-nav", episodes_per_trial=2, max_episode_steps=4, seed=2 + i, env_index=i, num_envs=3,
                        clock=True) for i in range(3)]
    obs, _ = envs.reset()
    np.testing.assert_array_equal(obs, np.stack([e.reset()[0] for e in singles]))
    rng = np.random.default_rng(1)
    for _ in range(10):
        a = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
        obs, *_ = envs.step(a)
        expected = []
        for e, ai in zip(singles, a):
            o, _, term, trunc, info = e.step(ai)
            expected.append(e.reset()[0] if trunc else o)  # same-step autoreset
        np.testing.assert_array_equal(obs, np.stack(expected))
    envs.close()


def test_clock_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="clock must be True or False"):
        make_env("point-nav", clock=1)
