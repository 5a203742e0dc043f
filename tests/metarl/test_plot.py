"""`metarl plot`: PNGs from real tiny runs, seed grouping, adaptation sources, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from metarl import cli
from metarl.plot import adaptation_by_attempt, make_plots
from metarl.runs import group_runs, load_run

from _tiny_runs import tiny_run  # tests/metarl is on sys.path (pytest rootdir import mode)


@pytest.fixture(scope="session")
def point_nav_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.getbasetemp(), "point-nav")


@pytest.fixture
def two_seeds(point_nav_run: Path, tmp_path: Path) -> list[Path]:
    """The tiny run and a copy posing as seed 2 of the same config (returns shifted by +1)."""
    a, b = tmp_path / "seed1", tmp_path / "seed2"
    shutil.copytree(point_nav_run, a)
    shutil.copytree(point_nav_run, b)
    cfg = (b / "config.yaml").read_text()
    (b / "config.yaml").write_text(cfg.replace("seed: 1\n", "seed: 2\n", 1))
    lines = (b / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    col = header.index("charts/return")
    shifted = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[col] = str(float(cells[col]) + 1.0)
        shifted.append(",".join(cells))
    (b / "metrics.csv").write_text("\n".join(shifted) + "\n")
    return [a, b]


def _memory_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, forget=rng.random((40, 8)), read_weights=rng.dirichlet(np.ones(8), size=(40, 2)),
             write_weights=rng.dirichlet(np.ones(8), size=40), episode_starts=np.array([0, 20]),
             successes=np.array([False, True]), task=np.array("point-nav"))
    return path


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    assert path.is_file() and path.stat().st_size > 5_000
    return np.asarray(Image.open(path).convert("RGB"))


def test_plot_writes_non_empty_pngs(two_seeds: list[Path], tmp_path: Path, capsys) -> None:
    _memory_npz(two_seeds[0] / "trial.memory.npz")
    out = tmp_path / "plots"
    assert cli.main(["plot", *map(str, two_seeds), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(Path(p).name for p in printed)
    assert names == ["adaptation.png", "learning_curves.png", "memory_trial.png"]
    for name in names:
        image = _png(out / name)
        assert image.std() > 10  # a drawing, not a blank canvas


def test_seeds_of_one_config_are_grouped_and_other_configs_not(two_seeds: list[Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(two_seeds[0], other)
    cfg = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(cfg.replace("cell: gru", "cell: lstm", 1))
    groups = group_runs([load_run(p) for p in [*two_seeds, other]])
    sizes = sorted(len(v) for v in groups.values())
    assert sizes == [1, 2]
    assert any("gru" in label for label in groups) and any("lstm" in label for label in groups)


def test_adaptation_prefers_evaluate_json_and_falls_back_to_metrics(two_seeds: list[Path]) -> None:
    run = load_run(two_seeds[0])
    from_metrics = adaptation_by_attempt(run, "test")
    assert from_metrics is not None and len(from_metrics.success) == 2  # eval/success_attempt_1..2
    assert all(0.0 <= v <= 1.0 for v in from_metrics.success)
    # the tiny run: 8 envs, 1 eval trial each (in-training evaluation: deterministic); train: its 4 updates x 8 envs
    assert (from_metrics.trials, from_metrics.mode) == (8, "deterministic")
    train = adaptation_by_attempt(run, "train")
    assert (train.trials, train.mode) == (32, "sampled")
    (two_seeds[0] / "eval_test.json").write_text(json.dumps({
        "success_by_attempt": [0.25, 0.75], "deterministic": False,
        "tasks": {"point-nav": {"trials": 50, "success_by_attempt": [0.25, 0.75]}}}))
    from_json = adaptation_by_attempt(load_run(two_seeds[0]), "test")
    assert (from_json.success, from_json.trials, from_json.mode) == ([0.25, 0.75], 50, "sampled")


def test_adaptation_plot_colours_train_and_held_out_apart_and_labels_them(two_seeds: list[Path], tmp_path: Path,
                                                                            monkeypatch) -> None:
    import matplotlib.axes

    from metarl.plot import plot_adaptation

    drawn = []
    real = matplotlib.axes.Axes.errorbar

    def spy(self, *args, **kwargs):
        drawn.append((kwargs["color"], kwargs["label"]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    plot_adaptation([load_run(p) for p in two_seeds], tmp_path)
    (train_colour, train_label), (test_colour, test_label) = drawn
    assert train_colour != test_colour
    assert "train tasks (32 trials per point each, sampled actions, mean ± std of 2 seeds)" in train_label
    assert "held-out tasks (8 trials per point each, deterministic actions, mean ± std of 2 seeds)" in test_label


def test_traced_memory_is_drawn_without_leaving_files(tmp_path: Path) -> None:
    from metarl.config import load_config
    from metarl.train import train

    run = tmp_path / "run"
    train(load_config(None, ["env.benchmark=point-nav", "env.num_envs=2", "env.episodes_per_trial=2",
                             "agent.cell=forget-memory", "agent.hidden_size=16", "total_steps=80", "progress=false",
                             "tensorboard=false", "device=cpu"]), run)
    out = tmp_path / "plots"
    paths = make_plots([run], out)
    assert [p.name for p in paths if p.name.startswith("memory_")] == ["memory_run_point-nav.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # PNGs only, no .memory.npz


def test_explicit_memory_file_gives_a_memory_picture(two_seeds: list[Path], tmp_path: Path) -> None:
    npz = _memory_npz(tmp_path / "rec.memory.npz")
    paths = make_plots([two_seeds[0]], tmp_path / "out", memory=[npz])
    memory_png = [p for p in paths if p.name == "memory_rec.png"]
    assert memory_png and _png(memory_png[0]).shape[0] > 300  # three stacked heatmaps


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing", "no such run directory"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "not a metarl run directory (no metrics.csv)"),
    ],
)
def test_bad_run_paths_give_one_line_errors(make, message, tmp_path: Path, capsys) -> None:
    assert cli.main(["plot", str(make(tmp_path)), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_memory_file_without_diagnostics_is_a_one_line_error(two_seeds: list[Path], tmp_path: Path, capsys) -> None:
    npz = tmp_path / "gru.memory.npz"
    np.savez(npz, episode_starts=np.array([0]), successes=np.array([True]), task=np.array("point-nav"))
    assert cli.main(["plot", str(two_seeds[0]), "--out", str(tmp_path / "o"), "--memory", str(npz)]) == 2
    assert "holds no memory diagnostics" in capsys.readouterr().err


def test_trace_memory_plays_one_held_out_trial_of_a_memory_cell() -> None:
    import torch

    from metarl.agent import Agent
    from metarl.agents import AgentConfig, make_policy
    from metarl.envs import make_env
    from metarl.plot import trace_memory

    env = make_env("point-nav")
    dims = env.observation_space.shape[0], env.action_space.shape[0]
    torch.manual_seed(0)
    memory = trace_memory(Agent(policy=make_policy(AgentConfig("forget-memory", 16, encoder_sizes=[256, 256]), *dims)), "point-nav",
                          episodes_per_trial=3)
    assert memory["forget"].shape[0] == 3 * 20 and memory["episode_starts"].tolist() == [0, 20, 40]
    assert memory["successes"].shape == (3,) and str(memory["task"]) == "point-nav"
    assert np.all((memory["forget"] >= 0) & (memory["forget"] <= 1))
    assert trace_memory(Agent(policy=make_policy(AgentConfig("gru", 16, encoder_sizes=[256, 256]), *dims)), "point-nav") == {}  # no memory


def test_per_class_figure_comes_only_with_evaluations_of_several_classes(two_seeds: list[Path],
                                                                         tmp_path: Path) -> None:
    from metarl.plot import class_success, plot_by_class

    runs = [load_run(p) for p in two_seeds]
    assert plot_by_class(runs, tmp_path) is None  # no evaluate JSON at all
    one_class = {"success_by_attempt": [0.2, 0.4], "tasks": {"point-nav": {"success_by_attempt": [0.2, 0.4]}}}
    (two_seeds[0] / "eval_test.json").write_text(json.dumps(one_class))
    (two_seeds[1] / "eval_test.json").write_text(json.dumps(one_class))
    assert plot_by_class([load_run(p) for p in two_seeds], tmp_path) is None  # ML1-like: one class
    for p, (a, b) in zip(two_seeds, [(0.0, 0.5), (1.0, 0.5)]):
        (p / "eval_test.json").write_text(json.dumps({"success_by_attempt": [0.5, 0.5], "tasks": {
            "lever-pull-v3": {"success_by_attempt": [a, 1.0]}, "door-close-v3": {"success_by_attempt": [b, 0.0]}}}))
    runs = [load_run(p) for p in two_seeds]
    table = class_success(runs, "test")  # the two seeds averaged per class and attempt
    assert list(table) == ["door-close-v3", "lever-pull-v3"]
    np.testing.assert_allclose(table["lever-pull-v3"], [0.5, 1.0])
    np.testing.assert_allclose(table["door-close-v3"], [0.5, 0.0])
    assert class_success(runs, "train") == {}
    image = _png(plot_by_class(runs, tmp_path))
    assert image.std() > 10
