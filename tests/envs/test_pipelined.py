"""The pipelined vector env: group steps give the same results as plain steps on the same seeds and
actions; spinning workers give the same results as blocking ones."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.envs import make_vec
from metarl.envs.pipelined import PipelinedTrialVectorEnv
from metarl.envs.vector import INFO_KEYS, TrialVectorEnv
from test_vector import _compare_with_single_envs  # tests/envs is on sys.path (pytest rootdir import mode)

K, L = 2, 5


def _pair(benchmark: str, num_envs: int, workers: int, caller_share: float = 0.0):
    kw = dict(num_envs=num_envs, episodes_per_trial=K, max_episode_steps=L, workers=workers, caller_share=caller_share)
    return make_vec(benchmark, **kw), make_vec(benchmark, pipelined=True, **kw)


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
    envs = make_vec("ML1/reach-v3", num_envs=4, episodes_per_trial=K, max_episode_steps=L, workers=2, pipelined=True)
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


def test_make_vec_builds_the_pipelined_variant_only_when_asked() -> None:
    plain = make_vec("bandit", num_envs=2)
    assert type(plain) is TrialVectorEnv and not hasattr(plain, "split_groups")
    plain.close()
    for kw in ({"pipelined": True}, {"spin": 0.001}):
        envs = make_vec("bandit", num_envs=2, **kw)
        assert isinstance(envs, PipelinedTrialVectorEnv)
        envs.close()


def test_spinning_workers_give_the_same_results_and_bad_spin_is_one_line() -> None:
    _compare_with_single_envs("bandit", num_envs=3, workers=2, spin=0.002)
    for bad in (-0.1, 2.0, "1ms"):
        with pytest.raises(ValueError, match="spin must be seconds in") as err:
            make_vec("bandit", num_envs=2, workers=1, spin=bad)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("benchmark,workers,caller_share", [
    ("ML1/reach-v3", 1, 1.0),  # a worker's block and the caller's
    ("bandit", 0, None),  # in process
])
def test_group_steps_without_trial_autoreset_wait_for_reset(benchmark, workers, caller_share) -> None:
    held = make_vec(benchmark, num_envs=3, episodes_per_trial=K, max_episode_steps=L, workers=workers,
                    caller_share=caller_share, trial_autoreset=False, pipelined=True)
    try:
        n_act = held.single_action_space.shape[0]
        actions = np.zeros((3, n_act), dtype=np.float32)
        held.reset(seed=40)
        for _ in range(held.trial_length):
            held.step(actions)
        with pytest.raises(ValueError, match=r"envs \[1\] ended their trial"):
            held.step_group_async(np.array([1]), actions[1:2])
        # Group steps still in flight when the trial ends are booked before the next step.
        held.reset(seed=0)
        groups = held.split_groups(2)
        for step in range(held.trial_length):
            for g in groups:
                held.step_group_async(g, np.zeros((len(g), n_act), dtype=np.float32))
            if step < held.trial_length - 1:
                for g in groups:
                    held.step_group_wait(g)
        with pytest.raises(ValueError, match="ended their trial"):
            held.step(np.zeros((3, n_act), dtype=np.float32))
        held.reset(seed=0)
        held.step(np.zeros((3, n_act), dtype=np.float32))  # a reset opens the next trial
    finally:
        held.close()
