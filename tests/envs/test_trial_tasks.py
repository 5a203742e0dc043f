"""Pinned tasks: ``reset(options={"task": ...})`` on one env, ``options={"tasks": [...]}`` on the vector env."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from metarl.envs import TRIAL_START, make_env, make_vec, tasks
from metarl.envs.registry import task_set
from metarl.envs.vector import INFO_KEYS

from _lockstep import step_in_lockstep  # tests/envs is on sys.path (pytest rootdir import mode)

K, L = 2, 3


def test_pinned_task_by_name_or_index_starts_a_trial_of_it() -> None:
    classes = tasks("ML10", "train")
    a = make_env("ML10", episodes_per_trial=K, max_episode_steps=L, env_index=1, num_envs=3)
    b = make_env("ML10", episodes_per_trial=K, max_episode_steps=L, env_index=1, num_envs=3)
    try:
        obs_a, info_a = a.reset(seed=4, options={"task": (classes[6], 17)})
        obs_b, info_b = b.reset(seed=4, options={"task": (6, np.int64(17))})
        np.testing.assert_array_equal(obs_a, obs_b)
        assert (info_a["task"], info_a["task_id"], info_a["goal"], info_a["attempt"]) == (classes[6], 6, 17, 1)
        assert info_b == info_a and obs_a[TRIAL_START] == 1.0
        for _ in range(L):
            a.step(np.zeros(4, np.float32))
        _, info = a.reset()  # unfinished trial: next attempt of the pinned task
        assert (info["task_id"], info["goal"], info["attempt"]) == (6, 17, 2)
        obs, info = a.reset(options={"task": (2, 0)})  # mid-trial: a new trial of the new task
        assert (info["task_id"], info["goal"], info["attempt"]) == (2, 0, 1) and obs[TRIAL_START] == 1.0
        for _ in range(K):
            for _ in range(L):
                a.step(np.zeros(4, np.float32))
            _, info = a.reset()
        # two trials since seeding (both pinned) count in the round-robin: the 3rd plays (1 + 2 * 3) % C
        assert info["task_id"] == (1 + 2 * 3) % len(classes) and info["attempt"] == 1
    finally:
        a.close()
        b.close()


def test_pinned_goal_is_the_goal_a_draw_of_that_index_plays() -> None:
    drawn = make_env("ML1/reach-v3", episodes_per_trial=1, max_episode_steps=L)
    pinned = make_env("ML1/reach-v3", episodes_per_trial=1, max_episode_steps=L)
    try:
        _, info = drawn.reset(seed=9)
        goal = info["goal"]
        _, info = pinned.reset(seed=123, options={"task": ("reach-v3", goal)})
        assert info["goal"] == goal
        np.testing.assert_array_equal(pinned._core.env._last_rand_vec, drawn._core.env._last_rand_vec)
        pinned.reset(seed=123, options={"task": ("reach-v3", (goal + 1) % 50)})
        assert not np.array_equal(pinned._core.env._last_rand_vec, drawn._core.env._last_rand_vec)
    finally:
        drawn.close()
        pinned.close()


def test_point_nav_pinned_goal_sets_the_goal_angle() -> None:
    env = make_env("point-nav", split="test")
    angles = task_set("point-nav", "test").goals["point-nav"]
    for g in (0, 31, 49):
        env.reset(seed=0, options={"task": (0, g)})
        np.testing.assert_allclose(env._core.goal, [math.cos(angles[g]), math.sin(angles[g])])


def test_unpinned_draws_are_unchanged() -> None:
    """Without the option the first goal is the seeded generator's first draw, as before pinning existed."""
    env = make_env("point-nav")
    for seed in (0, 5, 11):
        _, info = env.reset(seed=seed)
        rng, _ = gym.utils.seeding.np_random(seed)
        assert info["goal"] == int(rng.integers(50))


@pytest.mark.parametrize("task, message", [
    (("reach-v9", 0), "unknown task class 'reach-v9' in ML10/train; valid: reach-v3, push-v3"),
    ((10, 0), "task class must be a name or an index in [0, 10), got 10; valid: reach-v3"),
    ((True, 0), "task class must be a name or an index in [0, 10), got True"),
    (("push-v3", 50), "goal index must be an integer in [0, 50) for class 'push-v3', got 50"),
    ((0, -1), "goal index must be an integer in [0, 50) for class 'reach-v3', got -1"),
    ((0, 1.0), "goal index must be an integer in [0, 50) for class 'reach-v3', got 1.0"),
    ("reach-v3", "task must be a (class, goal index) pair, got 'reach-v3'"),
])
def test_bad_task_is_a_one_line_error_and_changes_nothing(task, message: str) -> None:
    env = make_env("ML10", episodes_per_trial=K, max_episode_steps=L, seed=0)
    try:
        env.reset()
        with pytest.raises(ValueError) as err:
            env.reset(seed=99, options={"task": task})
        assert message in str(err.value) and "\n" not in str(err.value)
        _, info = env.reset()  # the failed reset left the trial as it was
        assert info["attempt"] == 2 and info["task_id"] == 0
    finally:
        env.close()


@pytest.mark.parametrize("benchmark, num_envs, workers", [("point-nav", 4, 0), ("ML10", 3, 2)])
def test_vector_pinned_tasks_equal_single_envs_pinned_the_same(benchmark: str, num_envs: int, workers: int) -> None:
    classes = tasks(benchmark, "train")
    pins = [(classes[-1], 7), None, (0, 49), (0, 3)][:num_envs]  # names, indices, None: draw as usual
    kw = dict(episodes_per_trial=K, max_episode_steps=L)
    envs = make_vec(benchmark, num_envs=num_envs, workers=workers, **kw)
    singles = [make_env(benchmark, env_index=i, num_envs=num_envs, **kw) for i in range(num_envs)]
    try:
        n_act = envs.single_action_space.shape[0]
        rng = np.random.default_rng(0)
        for seed in (20, None):  # seeded and unseeded resets
            obs, infos = envs.reset(seed=seed, options={"tasks": pins})
            for i, env in enumerate(singles):
                o, info = env.reset(seed=None if seed is None else seed + i,
                                    options={"new_trial": True} if pins[i] is None else {"task": pins[i]})
                np.testing.assert_array_equal(obs[i], o)
                assert all(infos[key][i] == info[key] for key in INFO_KEYS), (i, infos, info)
            pinned = [i for i, p in enumerate(pins) if p is not None]
            assert [int(infos["goal"][i]) for i in pinned] == [pins[i][1] for i in pinned]
            for _ in range(envs.trial_length + L):  # a whole trial, then into the next (drawn) one
                actions = rng.uniform(-1, 1, (num_envs, n_act)).astype(np.float32)  # (N, A)
                step_in_lockstep(envs, singles, actions)
    finally:
        envs.close()
        for env in singles:
            env.close()


def test_vector_bad_tasks_option_is_a_one_line_error_and_env_still_works() -> None:
    envs = make_vec("ML1/reach-v3", num_envs=2, episodes_per_trial=1, max_episode_steps=L, workers=2)
    try:
        with pytest.raises(ValueError, match=r"one \(class, goal index\) pair or None per env \(2 entries\), got 3"):
            envs.reset(seed=0, options={"tasks": [None, None, None]})
        with pytest.raises(ValueError) as err:
            envs.reset(seed=0, options={"tasks": [None, ("reach-v3", 50)]})
        assert str(err.value).startswith("options['tasks'][1]: goal index must be") and "\n" not in str(err.value)
        _, infos = envs.reset(seed=0, options={"tasks": [("reach-v3", 5), ("reach-v3", 6)]})
        assert infos["goal"].tolist() == [5, 6]
    finally:
        envs.close()
