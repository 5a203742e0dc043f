"""Same seed, same task sequence and same first observations."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.envs import make_env


def _trace(env, seed: int, trials: int = 4) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
    """(task_id, goal) and first obs of ``trials`` trials after ``reset(seed)``."""
    tasks, firsts = [], []
    obs, info = env.reset(seed=seed)
    for _ in range(trials):
        tasks.append((info["task_id"], info["goal"]))
        firsts.append(obs)
        for _ in range(env.trial_length):
            obs, _, _, trunc, info = env.step(np.zeros(env.action_space.shape, np.float32))
            if trunc:
                obs, info = env.reset()
    return tasks, firsts


@pytest.mark.parametrize("benchmark", ["ML1/pick-place-v3", "point-nav", "bandit"])
def test_same_seed_same_tasks_and_first_obs(benchmark: str) -> None:
    kw = dict(episodes_per_trial=2, max_episode_steps=2) if benchmark.startswith("ML") else {}
    a, b = make_env(benchmark, **kw), make_env(benchmark, **kw)
    tasks_a, obs_a = _trace(a, seed=11)
    tasks_b, obs_b = _trace(b, seed=11)
    assert tasks_a == tasks_b
    for x, y in zip(obs_a, obs_b):
        np.testing.assert_array_equal(x, y)
    # reseeding the same env restarts the same sequence
    tasks_again, _ = _trace(a, seed=11)
    assert tasks_again == tasks_a
    tasks_c, _ = _trace(b, seed=12, trials=8)
    tasks_a8, _ = _trace(a, seed=11, trials=8)
    assert tasks_c != tasks_a8  # another seed, other goals (8 draws from 50)
    a.close()
    b.close()


def test_constructor_seed_seeds_first_reset() -> None:
    a = make_env("point-nav", seed=5)
    b = make_env("point-nav")
    _, ia = a.reset()
    _, ib = b.reset(seed=5)
    assert ia["goal"] == ib["goal"]


def test_bandit_rewards_are_seeded() -> None:
    a, b = make_env("bandit"), make_env("bandit")
    ra, rb = [], []
    for env, out in ((a, ra), (b, rb)):
        env.reset(seed=3)
        for _ in range(30):
            _, r, _, trunc, _ = env.step(np.eye(5, dtype=np.float32)[1])
            out.append(r)
            if trunc:
                env.reset()
    assert ra == rb and 0 < sum(ra) < 30
