"""Toy tasks: fast, held-out goals unseen, and memory pays off on later attempts."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from metarl.envs import TRIAL_START, make_env, tasks
from metarl.envs.registry import task_set


def test_point_nav_splits_hold_different_goals_on_the_half_circle() -> None:
    train = np.array(task_set("point-nav", "train").goals["point-nav"])
    test = np.array(task_set("point-nav", "test").goals["point-nav"])
    assert len(train) == len(test) == 50
    assert np.all((train >= 0) & (train <= math.pi)) and np.all((test >= 0) & (test <= math.pi))
    assert np.abs(train[:, None] - test[None]).min() > 0  # no test goal is a train goal
    assert train.std() > 0.6 and test.std() > 0.6  # spread over the circle (uniform: pi / sqrt(12) = 0.91)
    assert tasks("point-nav", "train") == tasks("point-nav", "test") == ["point-nav"]


def test_bandit_train_and_test_tasks_differ() -> None:
    train = np.array(task_set("bandit", "train").goals["bandit"])
    test = np.array(task_set("bandit", "test").goals["bandit"])
    assert train.shape == test.shape == (50, 5)
    assert not np.any(np.all(np.isclose(train[:, None], test[None]), axis=-1))


def test_bandit_onehot_has_one_good_arm_each_arm_in_a_fifth_of_the_tasks() -> None:
    for split in ("train", "test"):
        goals = np.array(task_set("bandit-onehot", split).goals["bandit-onehot"])  # (50, 5)
        assert goals.shape == (50, 5)
        assert np.all(np.sort(goals, axis=1) == [0.1, 0.1, 0.1, 0.1, 0.9])
        assert np.bincount(goals.argmax(axis=1), minlength=5).tolist() == [10] * 5
    train, test = (np.array(task_set("bandit-onehot", s).goals["bandit-onehot"]).argmax(axis=1)
                   for s in ("train", "test"))
    assert not np.array_equal(train, test)  # the splits draw their own order
    from metarl.envs.toy import BanditCore

    goal = task_set("bandit-onehot", "test").goals["bandit-onehot"][0]
    good = int(np.argmax(goal))
    core = BanditCore(5)
    core.set_goal(goal)
    core.reset(np.random.default_rng(0))
    for arm, rate in ((good, 0.9), ((good + 1) % 5, 0.1)):
        action = np.full(5, -1.0, np.float32)
        action[arm] = 1.0
        steps = [core.step(action) for _ in range(1000)]
        assert np.mean([r for _, r, _ in steps]) == pytest.approx(rate, abs=0.04)
        assert all(success == (arm == good) for *_, success in steps)


@pytest.mark.parametrize("benchmark", ["point-nav", "bandit", "bandit-onehot"])
def test_toy_steps_thousands_per_cpu_second(benchmark: str) -> None:
    env = make_env(benchmark, seed=0)
    env.reset()
    action = np.zeros(env.action_space.shape, np.float32)
    n, t0 = 3000, time.process_time()
    for _ in range(n):
        *_, trunc, _ = env.step(action)
        if trunc:
            env.reset()
    rate = n / (time.process_time() - t0)
    assert rate > 2000, f"{benchmark}: {rate:.0f} steps per CPU second"


def _point_nav_success_per_attempt(policy_uses_memory: bool, trials: int = 40) -> np.ndarray:
    """Scripted policies; attempt 1 always walks right then up (a fixed probe path).

    With memory: from attempt 2 on, head straight for the goal solved from
    attempt 1's (position, reward) pairs: -r = |p - g|, |g| = 1 gives the
    linear equations 2 p.g = |p|^2 + 1 - r^2. Without memory: the probe path again.
    """
    env = make_env("point-nav", seed=1)
    k = env.episodes_per_trial
    success = np.zeros(k)
    for _ in range(trials):
        obs, info = env.reset()
        assert obs[TRIAL_START] == 1.0
        pairs, goal = [], None
        for attempt in range(k):
            if attempt == 1 and policy_uses_memory:
                P = np.array([p for p, _ in pairs])
                rhs = (P**2).sum(1) + 1 - np.array([r for _, r in pairs]) ** 2
                goal = np.linalg.lstsq(2 * P, rhs, rcond=None)[0]
            ep_success = False
            for t in range(env.max_episode_steps):
                pos = obs[:2]
                if goal is None:
                    a = np.array([1.0, 0.0]) if t < 3 else np.array([0.0, 1.0])
                else:
                    a = np.clip((goal - pos) / 0.1, -1, 1)
                obs, r, _, trunc, info = env.step(a.astype(np.float32))
                if attempt == 0:
                    pairs.append((obs[:2].astype(np.float64), r))
                ep_success |= info["success"]
            assert trunc
            success[attempt] += info["episode_success"]
            assert info["episode_success"] == ep_success
            if attempt < k - 1:
                obs, info = env.reset()
    return success / trials


def test_point_nav_memory_improves_later_attempts() -> None:
    with_memory = _point_nav_success_per_attempt(True)
    without = _point_nav_success_per_attempt(False)
    assert with_memory[1:].min() > with_memory[0] + 0.5
    assert with_memory[1:].min() > 0.95
    np.testing.assert_array_equal(without, without[0])  # memoryless: no attempt is better


def _bandit_best_arm_rate(policy_uses_memory: bool, trials: int = 300) -> np.ndarray:
    """Memory: pull each arm 3 times (attempts 1..15), then the best seen; else always arm 0."""
    env = make_env("bandit", seed=2, episodes_per_trial=25)
    k = env.episodes_per_trial
    hits = np.zeros(k)
    for _ in range(trials):
        env.reset()
        rewards = np.zeros(5)
        for attempt in range(k):
            arm = 0
            if policy_uses_memory:
                arm = attempt % 5 if attempt < 15 else int(np.argmax(rewards))
            _, r, _, trunc, info = env.step(np.eye(5, dtype=np.float32)[arm])
            assert trunc and info["attempt"] == attempt + 1
            rewards[arm] += r
            hits[attempt] += info["success"]
            if attempt < k - 1:
                env.reset()
    return hits / trials


def test_bandit_memory_improves_later_attempts() -> None:
    with_memory = _bandit_best_arm_rate(True)
    without = _bandit_best_arm_rate(False)
    assert with_memory[15:].mean() > with_memory[0] + 0.3  # exploiting what was seen
    assert abs(without[15:].mean() - without[0]) < 0.05  # memoryless: flat


def test_point_reach_reward_is_meta_worlds_reach_reward() -> None:
    """The proxy's reward is reach-v3's v2 reward on the same goal box and start."""
    from metaworld.utils.reward_utils import tolerance

    from metarl.envs.toy import PointReachBenchmark, PointReachCore

    goals = np.array(task_set("point-reach", "train").goals["point-reach"])
    assert goals.shape == (50, 3)
    assert np.all(goals >= PointReachBenchmark.GOAL_LOW) and np.all(goals <= PointReachBenchmark.GOAL_HIGH)
    core = PointReachCore()
    rng = np.random.default_rng(0)
    for goal in goals[:5]:
        core.set_goal(goal)
        pos = core.reset(rng)
        margin = float(np.linalg.norm(pos - goal))
        for _ in range(60):
            pos, reward, success = core.step(rng.uniform(-1, 1, 3) + np.sign(goal - pos))
            dist = float(np.linalg.norm(pos - goal))
            expected = 10 * tolerance(dist, bounds=(0, 0.05), margin=margin, sigmoid="long_tail")
            assert reward == pytest.approx(expected, rel=1e-9)
            assert success == (dist <= 0.05)


def test_point_reach_scripted_reward_climber_finds_held_out_goals() -> None:
    """The hidden goal can be found from the reward through the trial's observation:
    a climber that keeps its last move while the reward rose and otherwise tries a
    random one succeeds on most held-out goals; standing still never does."""
    env = make_env("point-reach", split="test", seed=3, episodes_per_trial=1, max_episode_steps=500)
    rng = np.random.default_rng(0)
    dims = env.observation_space.shape[0]
    reward_slot = dims - 3  # [obs | previous action (3) | previous reward | flags (2)]
    wins, still = 0, 0
    for _ in range(20):
        obs, _ = env.reset()
        move, last_r, done, solved = rng.uniform(-1, 1, 3), -1.0, False, False
        while not done:
            r = obs[reward_slot] / 0.1
            if r <= last_r:
                move = rng.uniform(-1, 1, 3)
            last_r = r
            obs, _, _, done, info = env.step(move.astype(np.float32))
            solved |= bool(info["success"])
        wins += solved
        obs, _ = env.reset()
        done, solved = False, False
        while not done:
            obs, _, _, done, info = env.step(np.zeros(3, np.float32))
            solved |= bool(info["success"])
        still += solved
    assert wins >= 16, wins
    assert still == 0


def test_point_reach_visible_shows_the_goal_of_the_same_goal_sets() -> None:
    for split in ("train", "test"):
        hidden = np.array(task_set("point-reach", split).goals["point-reach"])
        shown = np.array(task_set("point-reach-visible", split).goals["point-reach-visible"])
        np.testing.assert_array_equal(hidden, shown)
    env = make_env("point-reach-visible", split="test", seed=0)
    obs, info = env.reset()
    goal = task_set("point-reach-visible", "test").goals["point-reach-visible"][info["goal"]]
    np.testing.assert_allclose(obs[3:6], goal, rtol=1e-6)
    assert make_env("point-reach", seed=0).observation_space.shape[0] + 3 == env.observation_space.shape[0]


def test_point_reach_puck_is_fixed_per_goal_and_differs_between_goals() -> None:
    env = make_env("point-reach-puck", split="train", seed=0)
    pucks = {}
    for goal in (0, 1, 0):
        obs, info = env.reset(options={"task": (0, goal)})
        obs2, *_ = env.step(np.ones(3, np.float32))
        np.testing.assert_array_equal(obs[3:5], obs2[3:5])  # constant within a trial
        pucks.setdefault(goal, []).append(obs[3:5].copy())
    np.testing.assert_array_equal(pucks[0][0], pucks[0][1])  # the same goal, the same puck
    assert not np.allclose(pucks[0][0], pucks[1][0])
    assert np.all(pucks[0][0] >= [-0.1, 0.6]) and np.all(pucks[0][0] <= [0.1, 0.7])


def test_point_nav_sparse_pays_one_only_near_the_goal_with_point_navs_goals() -> None:
    from metarl.envs.toy import PointNavCore

    for split in ("train", "test"):
        assert task_set("point-nav-sparse", split).goals["point-nav-sparse"] == task_set("point-nav", split).goals["point-nav"]
    sparse, dense = PointNavCore(sparse=True), PointNavCore()
    rng = np.random.default_rng(0)
    for core in (sparse, dense):
        core.set_goal(math.pi / 2)  # the goal (0, 1)
        core.reset(rng)
    up = np.array([0.0, 1.0], dtype=np.float32)
    seen = []
    for _ in range(11):  # 0.1 per step: 0.2 from the goal after step 8, 0.1 past it after step 11
        pos, r, success = sparse.step(up)
        pos_dense, r_dense, _ = dense.step(up)
        np.testing.assert_array_equal(pos, pos_dense)  # the same robot, only the reward differs
        dist = -r_dense
        assert r == (1.0 if dist < 0.2 else 0.0) and success == (dist < 0.2)
        seen.append(r)
    assert seen[:7] == [0.0] * 7 and seen[8:] == [1.0] * 3  # step 8 sits on the radius

    env = make_env("point-nav-sparse", seed=0)
    assert env.max_episode_steps == 40
    env.reset()
    rewards = {env.step(env.action_space.sample())[1] for _ in range(40)}
    assert rewards <= {0.0, 1.0}
