"""Trial semantics of one env: task held for a trial, flags, attempts, truncation."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.envs import EPISODE_START, TRIAL_START, make_env, tasks

K, L = 3, 8  # attempts per trial, steps per attempt (short Meta-World episodes)


def _play_trial(env, rng):
    """Play one whole trial from a fresh reset; returns per-step records."""
    records = []
    obs, info = env.reset()
    records.append(("reset", obs, info, None, False, False))
    for attempt in range(1, K + 1):
        for t in range(L):
            a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, r, term, trunc, info = env.step(a)
            records.append(("step", obs, info, a, term, trunc))
        if attempt < K:
            obs, info = env.reset()
            records.append(("reset", obs, info, None, False, False))
    return records


@pytest.fixture(scope="module")
def ml10_env():
    env = make_env("ML10", episodes_per_trial=K, max_episode_steps=L, seed=7)
    yield env
    env.close()


def test_attributes(ml10_env) -> None:
    assert ml10_env.episodes_per_trial == K
    assert ml10_env.max_episode_steps == L
    assert ml10_env.trial_length == K * L
    d = ml10_env.observation_space.shape[0]
    assert d == 39 + 4 + 3


def test_flags_attempts_and_truncation(ml10_env) -> None:
    rng = np.random.default_rng(0)
    records = _play_trial(ml10_env, rng)
    d_env, n_act = 39, 4
    last_action = None
    last_reward_obs = None
    attempt_seen = []
    for kind, obs, info, a, term, trunc in records:
        assert obs.dtype == np.float32 and ml10_env.observation_space.contains(obs)
        if kind == "reset":
            assert obs[EPISODE_START] == 1.0
            if info["attempt"] == 1:
                assert obs[TRIAL_START] == 1.0
                assert np.all(obs[d_env : d_env + n_act + 1] == 0.0)  # no previous action/reward
            else:
                assert obs[TRIAL_START] == 0.0
                np.testing.assert_array_equal(obs[d_env : d_env + n_act], last_action)
                assert obs[d_env + n_act] == last_reward_obs
            attempt_seen.append(info["attempt"])
        else:
            assert obs[EPISODE_START] == 0.0 and obs[TRIAL_START] == 0.0
            np.testing.assert_array_equal(obs[d_env : d_env + n_act], np.clip(a, -1, 1))
            last_action, last_reward_obs = obs[d_env : d_env + n_act].copy(), obs[d_env + n_act]
            assert term is False
            assert isinstance(info["success"], bool)
            if trunc:
                assert info["episode_return"] != 0.0
                assert info["trial_end"] == (info["attempt"] == K)
            else:
                assert not info["trial_end"] and info["episode_return"] == 0.0
    assert attempt_seen == list(range(1, K + 1))
    steps = [r for r in records if r[0] == "step"]
    truncs = [i for i, r in enumerate(steps) if r[5]]
    assert truncs == [L - 1 + k * L for k in range(K)]  # truncation exactly at each time limit


def test_reward_input_is_scaled() -> None:
    env = make_env("ML1/reach-v3", max_episode_steps=L, reward_scale=0.25, seed=0)
    env.reset()
    obs, r, *_ = env.step(np.zeros(4, np.float32))
    assert r > 0 and obs[39 + 4] == pytest.approx(0.25 * r, rel=1e-5)
    env.close()


def test_goal_constant_in_trial_and_changes_across_trials() -> None:
    env = make_env("ML1/reach-v3", episodes_per_trial=K, max_episode_steps=L, seed=3)
    rng = np.random.default_rng(1)
    goals, rand_vecs = [], []
    for _ in range(4):
        records = _play_trial(env, rng)
        trial_goals = {r[2]["goal"] for r in records}
        assert len(trial_goals) == 1  # one goal for the whole trial
        assert {r[2]["task"] for r in records} == {"reach-v3"}
        goals.append(trial_goals.pop())
        rand_vecs.append(env._core.env._last_rand_vec.copy())
        assert records[-1][2]["trial_end"]
    assert len(set(goals)) > 1  # a new task is drawn per trial (4 draws from 50)
    # the goal really is the Meta-World task's rand_vec, and it changes with it
    assert any(not np.array_equal(rand_vecs[0], v) for v in rand_vecs[1:])
    env.close()


def test_first_obs_of_attempts_repeat_within_trial() -> None:
    """Between attempts the robot resets and the task stays: same env observation."""
    env = make_env("ML1/pick-place-v3", episodes_per_trial=K, max_episode_steps=L, seed=5)
    rng = np.random.default_rng(2)
    firsts = [r[1][:39] for r in _play_trial(env, rng) if r[0] == "reset"]
    for f in firsts[1:]:
        np.testing.assert_array_equal(f, firsts[0])
    env.close()


def test_round_robin_covers_all_classes_when_fewer_envs_than_classes() -> None:
    classes = tasks("ML10", "train")
    num_envs, env_index = 3, 1
    env = make_env("ML10", episodes_per_trial=1, max_episode_steps=1, seed=0,
                   env_index=env_index, num_envs=num_envs)
    seen = []
    for _ in range(len(classes)):
        _, info = env.reset()
        seen.append(info["task_id"])
        assert info["task"] == classes[info["task_id"]]
        env.step(np.zeros(4, np.float32))
    env.close()
    # the k-th trial of env i plays class (i + k * num_envs) % C
    assert seen == [(env_index + k * num_envs) % len(classes) for k in range(len(classes))]
    assert sorted(seen) == list(range(len(classes)))  # 3 and 10 coprime: every class


def test_step_after_attempt_end_needs_reset() -> None:
    env = make_env("point-nav", max_episode_steps=2, seed=0)
    env.reset()
    env.step(np.zeros(2, np.float32))
    *_, trunc, _ = env.step(np.zeros(2, np.float32))
    assert trunc
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.float32))


def test_reset_with_new_trial_option_draws_next_task() -> None:
    env = make_env("ML10", episodes_per_trial=K, max_episode_steps=L, seed=0, num_envs=1)
    _, info = env.reset()
    assert info["attempt"] == 1 and info["task_id"] == 0
    _, info = env.reset()  # unfinished trial: next attempt
    assert info["attempt"] == 2 and info["task_id"] == 0
    obs, info = env.reset(options={"new_trial": True})
    assert info["attempt"] == 1 and info["task_id"] == 1 and obs[TRIAL_START] == 1.0
    env.close()
