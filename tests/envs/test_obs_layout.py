"""ObsLayout names the positions that the trial env actually writes."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.envs import EPISODE_START, TRIAL_START, ObsLayout, make_env, make_vec
from metarl.normalize import obs_mask


@pytest.mark.parametrize("clock", [False, True])
def test_layout_matches_what_the_env_writes(clock: bool) -> None:
    env = make_env("point-nav", clock=clock, seed=0, reward_scale=0.5)
    lay = env.obs_layout
    assert lay == ObsLayout(2, 2, clock) and lay.dim == env.observation_space.shape[0]
    obs, _ = env.reset(seed=0)
    assert obs[lay.episode_start] == obs[lay.trial_start] == 1.0
    assert lay.trial_start == lay.dim + TRIAL_START and lay.episode_start == lay.dim + EPISODE_START
    action = np.array([0.3, -2.0], dtype=np.float32)
    obs, reward, *_ = env.step(action)
    np.testing.assert_array_equal(obs[lay.action], np.array([0.3, -1.0], dtype=np.float32))  # clipped, as sent to the core
    assert obs[lay.reward] == np.float32(reward * 0.5)
    np.testing.assert_array_equal(obs[lay.flags], [0.0, 0.0])
    if clock:
        np.testing.assert_allclose(obs[lay.clock_dims], [1 - 1 / 20, 1 - 1 / 80], rtol=1e-6)
    else:
        assert lay.clock_dims.start == lay.clock_dims.stop == lay.env.stop
    envs = make_vec("point-nav", num_envs=2, clock=clock)
    assert envs.obs_layout == lay
    envs.close()


def test_normaliser_mask_is_env_obs_and_clock_and_optionally_the_reward() -> None:
    lay = ObsLayout(env_dim=3, action_dim=2, clock=True)  # [3 env | 2 clock | 2 action | reward | 2 flags]
    assert obs_mask(lay).tolist() == [True] * 5 + [False] * 5
    assert obs_mask(lay, obs=False, reward_input=True).tolist() == [False] * 7 + [True, False, False]
