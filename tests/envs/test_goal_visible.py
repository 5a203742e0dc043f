"""MT1/<task>: ML1's goals with the goal in the observation (the oracle bound of ML1)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from metarl.envs import make_env
from metarl.envs.registry import get_benchmark, task_set


@pytest.mark.parametrize("split", ["train", "test"])
def test_mt1_plays_ml1_goals_with_the_goal_observed(split: str) -> None:
    ml1, mt1 = task_set("ML1/reach-v3", split), task_set("MT1/reach-v3", split)
    assert ml1.classes == mt1.classes == ("reach-v3",)
    assert [g.data for g in ml1.goals["reach-v3"]] == [g.data for g in mt1.goals["reach-v3"]]
    hidden = make_env("ML1/reach-v3", split=split, episodes_per_trial=2, max_episode_steps=5, seed=3)
    shown = make_env("MT1/reach-v3", split=split, episodes_per_trial=2, max_episode_steps=5, seed=3)
    for t in range(17):  # 3 attempts of 5 steps: a second trial, so a second set_task
        if t % 5 == 0:
            o_h, _ = hidden.reset()
            o_s, info = shown.reset()
        else:
            a = np.full(4, 0.3 * ((-1) ** t), dtype=np.float32)
            o_h, r_h, *_ = hidden.step(a)
            o_s, r_s, *_, info = shown.step(a)
            assert r_h == r_s
        assert hidden.task == shown.task
        goal = pickle.loads(task_set("ML1/reach-v3", split).goals["reach-v3"][info["goal"]].data)["rand_vec"][3:]
        np.testing.assert_array_equal(o_h[36:39], 0.0)  # ML1 hides the goal
        np.testing.assert_allclose(o_s[36:39], goal, atol=1e-6)  # MT1 shows it
        np.testing.assert_array_equal(o_h[:36], o_s[:36])  # everything else is the same
        np.testing.assert_array_equal(o_h[39:], o_s[39:])
        assert shown.observation_space.contains(o_s)


def test_mt1_typo_names_the_closest_mt1_benchmark() -> None:
    with pytest.raises(ValueError, match="MT1/reach-v3"):
        get_benchmark("MT1/reach-v2")
