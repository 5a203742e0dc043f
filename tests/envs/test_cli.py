"""`metarl envs` lists benchmarks and task classes; typos are one-line errors."""

from __future__ import annotations

from metarl.cli import main


def test_lists_benchmarks(capsys) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "ML10" in out and "point-nav" in out and "ML1/reach-v3" in out and "MT1/<task>" in out


def test_lists_held_out_classes(capsys) -> None:
    assert main(["envs", "ML10", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "drawer-open-v3" in out and "reach-v3" not in out
    assert "observation (46)" in out


def test_typo_is_an_error_with_suggestion(capsys) -> None:
    assert main(["envs", "ML1/reac-v3"]) == 2
    err = capsys.readouterr().err
    assert "ML1/reach-v3" in err and len(err.strip().splitlines()) == 1


def test_benchmark_defaults_and_the_presets_that_use_it(capsys) -> None:
    assert main(["envs", "ML1/reach-v3"]) == 0
    out = capsys.readouterr().out
    assert "ML1/reach-v3: benchmark defaults: episodes_per_trial 10, max_episode_steps 500" in out
    assert "ml1_reach 10 x 500" in out and "the built-in default of `metarl train` 2 x 100" in out
    assert "ml1_push" not in out
    assert "train (1 class):" in out and "1 classes" not in out
    assert main(["envs", "MT1/reach-v3"]) == 0
    out = capsys.readouterr().out
    assert "presets on MT1/reach-v3: none" in out and "built-in" not in out
    assert main(["envs", "ML10", "--split", "test"]) == 0
    assert "test (5 classes):" in capsys.readouterr().out
