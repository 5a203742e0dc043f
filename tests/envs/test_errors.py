"""Bad input gives one-line errors that say what would be valid."""

from __future__ import annotations

import pytest

from metarl.envs import benchmarks, make_env, make_vec, tasks


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


def test_unknown_benchmark_names_closest() -> None:
    with pytest.raises(ValueError) as exc:
        make_env("ML11")
    msg = _one_line(exc)
    assert "'ML11'" in msg and "'ML10'" in msg


def test_unknown_ml1_task_names_closest() -> None:
    with pytest.raises(ValueError) as exc:
        tasks("ML1/reac-v3", "train")
    msg = _one_line(exc)
    assert "'ML1/reach-v3'" in msg


def test_unknown_benchmark_in_make_vec() -> None:
    with pytest.raises(ValueError, match="point-nav"):
        make_vec("point-nv", num_envs=2)


def test_benchmarks_lists_every_family() -> None:
    names = benchmarks()
    assert {"ML10", "ML25", "ML45", "point-nav", "bandit", "ML1/reach-v3"} <= set(names)
    assert sum(n.startswith("ML1/") for n in names) == 50
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "call,needle",
    [
        (lambda: make_env("point-nav", split="val"), "invalid split 'val'"),
        (lambda: tasks("ML10", "validation"), "invalid split"),
        (lambda: make_vec("point-nav", num_envs=0), "num_envs must be an integer >= 1, got 0"),
        (lambda: make_vec("point-nav", num_envs=2, episodes_per_trial=0), "episodes_per_trial must be"),
        (lambda: make_env("bandit", episodes_per_trial=-3), "episodes_per_trial must be an integer >= 1"),
        (lambda: make_env("point-nav", max_episode_steps=0), "max_episode_steps must be"),
        (lambda: make_vec("point-nav", num_envs=2, workers=-1), "workers must be"),
    ],
)
def test_bad_arguments_are_one_line_value_errors(call, needle: str) -> None:
    with pytest.raises(ValueError) as exc:
        call()
    assert needle in _one_line(exc)


def test_metaworld_episode_longer_than_500_is_refused() -> None:
    with pytest.raises(ValueError, match="limit of 500"):
        make_env("ML1/reach-v3", max_episode_steps=501)
