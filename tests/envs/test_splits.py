"""Splits are exactly Meta-World's: classes, goals (rand_vec) and held-out sets."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from metarl.envs import tasks
from metarl.envs.metaworld_tasks import BENCHMARK_SEED, build_benchmark
from metarl.envs.registry import task_set


def _rand_vecs(task_list) -> list[tuple[str, np.ndarray]]:
    return [(t.env_name, pickle.loads(t.data)["rand_vec"]) for t in task_list]


def _assert_split_matches(name: str, bench, split: str) -> None:
    ours = task_set(name, split)
    theirs_classes = bench.train_classes if split == "train" else bench.test_classes
    theirs_tasks = bench.train_tasks if split == "train" else bench.test_tasks
    assert list(ours.classes) == list(theirs_classes) == tasks(name, split)
    expected = _rand_vecs(theirs_tasks)
    got = [(c, pickle.loads(g.data)["rand_vec"]) for c in ours.classes for g in ours.goals[c]]
    assert len(got) == len(expected) == 50 * len(ours.classes)
    exp_by_class: dict[str, list[np.ndarray]] = {}
    for c, v in expected:
        exp_by_class.setdefault(c, []).append(v)
    for c in ours.classes:
        ours_vecs = [pickle.loads(g.data)["rand_vec"] for g in ours.goals[c]]
        np.testing.assert_array_equal(np.array(ours_vecs), np.array(exp_by_class[c]))
        assert all(pickle.loads(g.data)["partially_observable"] for g in ours.goals[c])  # goal hidden


@pytest.fixture(scope="module")
def ml10():
    return build_benchmark("ML10", BENCHMARK_SEED)


@pytest.mark.parametrize("split", ["train", "test"])
def test_ml10_split_matches_metaworld(ml10, split: str) -> None:
    _assert_split_matches("ML10", ml10, split)


def test_ml10_test_classes_are_held_out() -> None:
    assert set(tasks("ML10", "train")).isdisjoint(tasks("ML10", "test"))
    assert tasks("ML10", "test") == [
        "drawer-open-v3", "door-close-v3", "shelf-place-v3", "sweep-into-v3", "lever-pull-v3"
    ]


def test_ml1_train_and_test_goals_are_metaworlds_and_differ() -> None:
    import metaworld

    bench = metaworld.ML1("reach-v3", seed=BENCHMARK_SEED)
    for split in ("train", "test"):
        _assert_split_matches("ML1/reach-v3", bench, split)
    train = np.array([v for _, v in _rand_vecs(task_set("ML1/reach-v3", "train").goals["reach-v3"])])
    test = np.array([v for _, v in _rand_vecs(task_set("ML1/reach-v3", "test").goals["reach-v3"])])
    # no test goal appears among the train goals
    dists = np.linalg.norm(train[:, None, :] - test[None, :, :], axis=-1)
    assert dists.min() > 0


@pytest.fixture(scope="module")
def ml45():
    return build_benchmark("ML45", BENCHMARK_SEED)  # ~60 s


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "test"])
def test_ml45_split_matches_metaworld(ml45, split: str) -> None:
    _assert_split_matches("ML45", ml45, split)
    if split == "test":
        assert set(tasks("ML45", "test")) == {
            "bin-picking-v3", "box-close-v3", "hand-insert-v3", "door-lock-v3", "door-unlock-v3"
        }
