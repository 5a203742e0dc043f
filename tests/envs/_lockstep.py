"""Step a vector env and the same envs one by one together, and check they agree."""

from __future__ import annotations

import numpy as np

from metarl.envs.vector import INFO_KEYS


def step_in_lockstep(envs, singles, actions: np.ndarray) -> dict:
    """One vector step and one step of every single env (reset where its attempt ended, as
    the vector env's same-step autoreset does); asserts equal obs, rewards, truncations and
    infos, and returns the vector env's infos."""
    obs, rew, _, trunc, infos = envs.step(actions)
    for i, env in enumerate(singles):
        o, r, _, tr, info = env.step(actions[i])
        assert rew[i] == r and trunc[i] == tr
        for key in INFO_KEYS:
            assert infos[key][i] == info[key], (i, key)
        if tr:
            o, _ = env.reset()
        np.testing.assert_array_equal(obs[i], o)
    return infos
