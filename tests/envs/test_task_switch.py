"""Non-stationary trials (``task_switches``): the hidden task changes, unannounced, at attempt boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.config import ConfigError, config_from_dict
from metarl.envs import EPISODE_START, TRIAL_START, make_env, make_vec
from metarl.envs.vector import INFO_KEYS
from metarl.rollout import make_envs

from _lockstep import step_in_lockstep  # tests/envs is on sys.path (pytest rootdir import mode)

K, L = 4, 3  # attempts per trial, steps per attempt


def play(env, trials: int, seed: int | None = None, action_seed: int = 0, options: dict | None = None):
    """Play ``trials`` whole trials; one record per attempt: (reset obs, reset info, step obs, rewards, step infos)."""
    rng = np.random.default_rng(action_seed)
    attempts = []
    for trial in range(trials):
        for a in range(env.episodes_per_trial):
            first = a == 0 and trial == 0
            obs, info = env.reset(seed=seed if first else None, options=options if a == 0 else None)
            step_obs, rewards, step_infos = [], [], []
            for _ in range(env.max_episode_steps):
                act = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
                o, r, term, trunc, i = env.step(act)
                step_obs.append(o), rewards.append(r), step_infos.append(i)
            assert trunc and i["trial_end"] == (a == env.episodes_per_trial - 1)
            attempts.append((obs, info, step_obs, rewards, step_infos))
    return attempts


def switch_attempts(attempts) -> list[list[int]]:
    """Per trial, the attempts (1-based) whose task differs from the previous attempt's."""
    out = []
    for rec in attempts:
        info = rec[1]
        if info["attempt"] == 1:
            out.append([])
            prev = (info["task_id"], info["goal"])
        task = (info["task_id"], info["goal"])
        if task != prev:
            out[-1].append(info["attempt"])
        prev = task
    return out


@pytest.mark.parametrize("benchmark, switches", [("point-nav", 1), ("point-nav", K - 1), ("bandit", 2)])
def test_switches_happen_s_times_per_trial_at_attempt_boundaries_and_are_marked(benchmark, switches) -> None:
    env = make_env(benchmark, episodes_per_trial=K, max_episode_steps=L, seed=3, task_switches=switches)
    attempts = play(env, trials=6)
    per_trial = switch_attempts(attempts)
    assert len(per_trial) == 6
    for trial in per_trial:
        assert len(trial) == switches and all(2 <= a <= K for a in trial)
    for obs, info, _, _, step_infos in attempts:
        task = (info["task_id"], info["goal"])
        # the task holds within an attempt: switches only at attempt boundaries
        assert {(i["task_id"], i["goal"]) for i in step_infos} == {task}
        assert task[0] == 0  # one class: another goal of it
    # task_switched marks exactly the switch attempts: their reset info and first step, nothing else
    marked = []
    for obs, info, _, _, step_infos in attempts:
        if info["attempt"] == 1:
            marked.append([])
        assert step_infos[0]["task_switched"] == info["task_switched"]
        assert not any(i["task_switched"] for i in step_infos[1:])
        if info["task_switched"]:
            marked[-1].append(info["attempt"])
    assert marked == per_trial
    env.close()


def test_no_observation_flag_announces_a_switch() -> None:
    env = make_env("point-nav", episodes_per_trial=K, max_episode_steps=L, seed=0, task_switches=K - 1)
    plain = make_env("point-nav", episodes_per_trial=K, max_episode_steps=L, seed=0)
    assert env.observation_space == plain.observation_space
    d = 2  # point-nav: position
    attempts = play(env, trials=3)
    switched = 0
    for prev, (obs, info, _, _, step_infos) in zip([None, *attempts[:-1]], attempts):
        if info["attempt"] == 1:
            assert obs[TRIAL_START] == 1.0 and obs[EPISODE_START] == 1.0
            continue
        switched += info["task_switched"]
        # every later attempt starts alike, switched or not: episode flag 1, trial flag 0,
        # the robot at the origin and the previous attempt's last action and reward
        assert obs[TRIAL_START] == 0.0 and obs[EPISODE_START] == 1.0
        np.testing.assert_array_equal(obs[:d], 0.0)
        np.testing.assert_array_equal(obs[d:], prev[2][-1][d:-2].tolist() + [1.0, 0.0])
    assert switched == 3 * (K - 1)
    env.close()


def test_switch_changes_the_goal_index_and_what_the_env_rewards() -> None:
    env = make_env("point-nav", episodes_per_trial=2, max_episode_steps=L, seed=1, task_switches=1)
    for trial in range(3):
        _, info1 = env.reset()
        goal1 = env._core.goal.copy()
        for _ in range(L):
            env.step(np.zeros(2, np.float32))
        _, info2 = env.reset()
        assert info2["task_switched"] and info2["attempt"] == 2
        assert info2["goal"] != info1["goal"] and info2["task_id"] == info1["task_id"]
        assert not np.array_equal(env._core.goal, goal1)  # the core really plays the new goal
        np.testing.assert_allclose(env._core.goal, env.benchmark_spec.task_vector("point-nav", env.task_set.goals[
            "point-nav"][info2["goal"]]))
        for _ in range(L):
            env.step(np.zeros(2, np.float32))
    env.close()


def test_same_seed_same_switches_other_seed_other_switches() -> None:
    def schedule(seed):
        env = make_env("point-nav", episodes_per_trial=6, max_episode_steps=1, seed=seed, task_switches=2)
        attempts = play(env, trials=5)
        env.close()
        return [(rec[1]["attempt"], rec[1]["goal"]) for rec in attempts], switch_attempts(attempts)

    a, b, c = schedule(11), schedule(11), schedule(12)
    assert a == b
    assert a[1] != c[1]  # where the switches fall (5 trials x 2 of 5 boundaries)
    assert a[0] != c[0]


def _assert_same_rollout(a, b) -> None:
    assert len(a) == len(b)
    for (o1, i1, so1, r1, si1), (o2, i2, so2, r2, si2) in zip(a, b):
        np.testing.assert_array_equal(o1, o2)
        assert i1 == i2 and si1 == si2 and r1 == r2
        np.testing.assert_array_equal(np.stack(so1), np.stack(so2))


@pytest.mark.parametrize("benchmark", ["point-nav", "ML1/reach-v3"])
def test_zero_switches_is_exactly_todays_env(benchmark) -> None:
    kwargs = dict(episodes_per_trial=3, max_episode_steps=5, seed=21)
    plain, zero = make_env(benchmark, **kwargs), make_env(benchmark, **kwargs, task_switches=0, switch_class=True)
    a, b = play(plain, trials=3), play(zero, trials=3)
    _assert_same_rollout(a, b)
    assert not any(i["task_switched"] for rec in b for i in [rec[1], *rec[4]])
    # Both envs run this code: pin the random stream to what it was before switches existed,
    # one goal draw per trial from the seeded generator and nothing else (these cores' resets draw nothing).
    rng = np.random.default_rng(21)
    n_goals = len(plain.task_set.goals[plain.task_names[0]])
    draws = [int(rng.integers(n_goals)) for _ in range(3)]  # one per trial
    assert [rec[1]["goal"] for rec in b] == [g for g in draws for _ in range(3)]  # held for the trial's 3 attempts
    plain.close(), zero.close()


def test_pinned_trial_switches_from_the_pinned_task() -> None:
    env = make_env("point-nav", episodes_per_trial=3, max_episode_steps=2, seed=0, task_switches=1)
    attempts = play(env, trials=1, options={"task": ("point-nav", 7)})
    goals = [rec[1]["goal"] for rec in attempts]
    (at,) = [rec[1]["attempt"] for rec in attempts if rec[1]["task_switched"]]
    assert goals[: at - 1] == [7] * (at - 1)  # the pinned task until the switch
    assert len(set(goals[at - 1 :])) == 1 and goals[-1] != 7  # then another goal
    env.close()
    # the vector env's pinned tasks too
    envs = make_vec("point-nav", num_envs=2, episodes_per_trial=2, max_episode_steps=1, task_switches=1, workers=0)
    _, infos = envs.reset(seed=0, options={"tasks": [("point-nav", 3), None]})
    assert infos["goal"][0] == 3 and not infos["task_switched"].any()
    envs.step(np.zeros((2, 2), np.float32))
    _, _, _, _, infos = envs.step(np.zeros((2, 2), np.float32))
    assert infos["task_switched"].all() and infos["goal"][0] != 3 and infos["attempt"].tolist() == [2, 2]
    envs.close()


def _compare_vector_with_single_envs(benchmark: str, num_envs: int, workers: int, trials: int, **switch) -> None:
    kwargs = dict(episodes_per_trial=3, max_episode_steps=2, **switch)
    envs = make_vec(benchmark, num_envs=num_envs, workers=workers, caller_share=0.0, **kwargs)
    singles = [make_env(benchmark, env_index=i, num_envs=num_envs, **kwargs) for i in range(num_envs)]
    switched = 0
    try:
        obs, infos = envs.reset(seed=5)
        for i, env in enumerate(singles):
            o, info = env.reset(seed=5 + i)
            np.testing.assert_array_equal(obs[i], o)
            assert all(infos[key][i] == info[key] for key in INFO_KEYS)
        rng = np.random.default_rng(0)
        for step in range(trials * envs.trial_length):
            actions = rng.uniform(-1, 1, (num_envs, envs.single_action_space.shape[0])).astype(np.float32)
            infos = step_in_lockstep(envs, singles, actions)
            switched += int(infos["task_switched"].sum())
    finally:
        envs.close()
        for env in singles:
            env.close()
    assert switched == trials * num_envs * switch["task_switches"]


def test_vector_env_with_switches_equals_its_envs_stepped_one_by_one_point_nav() -> None:
    _compare_vector_with_single_envs("point-nav", num_envs=3, workers=0, trials=3, task_switches=2)


def test_vector_env_with_switches_equals_its_envs_stepped_one_by_one_metaworld_worker() -> None:
    _compare_vector_with_single_envs("ML1/reach-v3", num_envs=2, workers=1, trials=2, task_switches=1)


def test_switch_class_changes_the_class_on_ml10_and_plain_switches_keep_it() -> None:
    for switch_class in (True, False):
        env = make_env("ML10", episodes_per_trial=3, max_episode_steps=1, seed=4, task_switches=2,
                       switch_class=switch_class)
        attempts = play(env, trials=2)
        env.close()
        for prev, rec in zip(attempts, attempts[1:]):
            info = rec[1]
            if not info["task_switched"]:
                assert (info["task_id"], info["goal"]) == (prev[1]["task_id"], prev[1]["goal"]) or info["attempt"] == 1
                continue
            assert info["task"] == env.task_names[info["task_id"]]
            assert all(i["task"] == info["task"] for i in rec[4])  # the steps play the new class
            if switch_class:
                assert info["task_id"] != prev[1]["task_id"]
            else:
                assert info["task_id"] == prev[1]["task_id"] and info["goal"] != prev[1]["goal"]
        assert sum(rec[1]["task_switched"] for rec in attempts) == 4


def test_switch_class_on_a_one_class_split_switches_goals() -> None:
    env = make_env("ML1/reach-v3", episodes_per_trial=2, max_episode_steps=1, seed=0, task_switches=1,
                   switch_class=True)
    attempts = play(env, trials=1)
    assert attempts[1][1]["task_switched"] and attempts[1][1]["task_id"] == attempts[0][1]["task_id"] == 0
    assert attempts[1][1]["goal"] != attempts[0][1]["goal"]
    env.close()


@pytest.mark.parametrize("bad", [K, -1, 1.5, True, "1"])
def test_bad_switch_count_is_a_one_line_error(bad) -> None:
    with pytest.raises(ValueError, match=r"task_switches must be an integer in \[0, episodes_per_trial - 1 = 3\]") as e:
        make_env("point-nav", episodes_per_trial=K, task_switches=bad)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="task_switches must be"):
        make_vec("point-nav", num_envs=2, episodes_per_trial=K, task_switches=bad)
    with pytest.raises(ValueError, match="switch_class must be True or False"):
        make_env("point-nav", episodes_per_trial=K, task_switches=1, switch_class=1)


def test_config_keys_reach_the_envs() -> None:
    cfg = config_from_dict({"env": {"benchmark": "point-nav", "episodes_per_trial": 3, "max_episode_steps": 1,
                                    "task_switches": 2, "switch_class": True}})
    envs = make_envs(cfg.env, "train", 2)
    envs.reset(seed=0)
    marked = [envs.step(np.zeros((2, 2), np.float32))[4]["task_switched"].tolist() for _ in range(3)]
    assert marked == [[False, False], [True, True], [True, True]]
    envs.close()
    assert config_from_dict({}).env.task_switches == 0 and config_from_dict({}).env.switch_class is False
    for env, match in (({"episodes_per_trial": 3, "task_switches": 3}, "env.task_switches' must be <="),
                       ({"task_switches": -1}, "env.task_switches' must be >= 0")):
        with pytest.raises(ConfigError, match=match):
            config_from_dict({"env": env})
    both = config_from_dict({"env": {"task_switches": 1}, "ppo": {"task_coef": 0.1}})  # per-step task targets
    assert both.env.task_switches == 1 and both.ppo.task_coef == 0.1
