"""Group steps of the vector env: same results as plain steps on the same seeds and actions."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.envs import make_vec
from metarl.envs.vector import INFO_KEYS

K, L = 2, 5


def _pair(benchmark: str, num_envs: int, workers: int, caller_share: float = 0.0):
    kw = dict(num_envs=num_envs, episodes_per_trial=K, max_episode_steps=L, workers=workers, caller_share=caller_share)
    return make_vec(benchmark, **kw), make_vec(benchmark, **kw)


@pytest.mark.parametrize("benchmark,num_envs,workers,groups,caller_share", [
    ("ML1/reach-v3", 4, 2, 2, 0.0),
    ("ML10", 5, 2, 3, 0.0),  # uneven blocks, more groups than some blocks have envs
    ("point-nav", 4, 0, 2, 0.0),  # in process: group steps run synchronously
    ("ML10", 5, 1, 2, 0.5),  # the caller steps its share of each group
])
def test_group_steps_equal_plain_steps(benchmark: str, num_envs: int, workers: int, groups: int,
                                       caller_share: float) -> None:
    plain, grouped = _pair(benchmark, num_envs, workers, caller_share)
    try:
        ids = grouped.split_groups(groups)
        assert len(ids) == groups
        if caller_share:  # every group holds envs of the caller's block and of the worker's
            assert all(set(g) & set(grouped.caller_envs) and set(g) - set(grouped.caller_envs) for g in ids)
        np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.arange(num_envs))
        obs_a, _ = plain.reset(seed=7)
        obs_b, _ = grouped.reset(seed=7)
        np.testing.assert_array_equal(obs_a, obs_b)
        rng = np.random.default_rng(1)
        n_act = plain.single_action_space.shape[0]
        for step in range(2 * plain.trial_length):
            actions = rng.uniform(-1.2, 1.2, (num_envs, n_act)).astype(np.float32)  # (N, A)
            expected = plain.step(actions)
            for g in ids:  # all groups in flight at once, waited for in order
                grouped.step_group_async(g, actions[g])
            for g in ids:
                obs, rew, term, trunc, infos = grouped.step_group_wait(g)
                np.testing.assert_array_equal(obs, expected[0][g])
                np.testing.assert_array_equal(rew, expected[1][g])
                np.testing.assert_array_equal(term, expected[2][g])
                np.testing.assert_array_equal(trunc, expected[3][g])
                for key in (*INFO_KEYS, "final_obs"):
                    np.testing.assert_array_equal(infos[key], expected[4][key][g], err_msg=f"{step} {key}")
        # reset and step wait for a group still in flight, then behave as usual
        grouped.step_group_async(ids[0], actions[ids[0]])
        np.testing.assert_array_equal(grouped.reset(seed=3)[0], plain.reset(seed=3)[0])
        grouped.step_group_async(ids[-1], actions[ids[-1]])
        np.testing.assert_array_equal(grouped.step(actions)[0][ids[0]], plain.step(actions)[0][ids[0]])
    finally:
        plain.close()
        grouped.close()


def test_group_step_misuse_is_refused() -> None:
    envs = make_vec("ML1/reach-v3", num_envs=4, episodes_per_trial=K, max_episode_steps=L, workers=2)
    try:
        with pytest.raises(ValueError, match="groups must be"):
            envs.split_groups(5)
        a, b = envs.split_groups(2)
        envs.reset(seed=0)
        actions = np.zeros((2, envs.single_action_space.shape[0]), dtype=np.float32)  # (G, A)
        with pytest.raises(ValueError, match="oldest group"):
            envs.step_group_wait(a)  # nothing in flight
        envs.step_group_async(a, actions)
        with pytest.raises(ValueError, match="still stepping"):
            envs.step_group_async(a, actions)
        with pytest.raises(ValueError, match="env_ids must be"):
            envs.step_group_async(np.array([0, 9]), actions)
        envs.step_group_async(b, actions)
        with pytest.raises(ValueError, match="oldest group"):
            envs.step_group_wait(b)
        assert envs.step_group_wait(a)[0].shape == (2, envs.single_observation_space.shape[0])
        envs.step_group_wait(b)
    finally:
        envs.close()
