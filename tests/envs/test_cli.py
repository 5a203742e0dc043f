"""`metarl envs` lists benchmarks and task classes; typos are one-line errors."""

from __future__ import annotations

from metarl.cli import main


def test_lists_benchmarks(capsys) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "ML10" in out and "point-nav" in out and "ML1/reach-v3" in out


def test_lists_held_out_classes(capsys) -> None:
    assert main(["envs", "ML10", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "drawer-open-v3" in out and "reach-v3" not in out
    assert "observation (46)" in out


def test_typo_is_an_error_with_suggestion(capsys) -> None:
    assert main(["envs", "ML1/reac-v3"]) == 2
    err = capsys.readouterr().err
    assert "ML1/reach-v3" in err and len(err.strip().splitlines()) == 1
