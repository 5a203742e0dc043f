"""`metarl plot` on switching trials: recovery curves (from evaluate JSONs, run directories, the
forgetting experiment's results) and the memory picture with the switch marked where the env said so."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import matplotlib.axes
import matplotlib.figure
import numpy as np
import pytest
import torch

from metarl import cli
from metarl.agent import Agent
from metarl.agents import AgentConfig, make_policy
from metarl.diagnostics import trace_memory
from metarl.envs import make_env
from metarl.plot import plot_memory, switch_marks
from metarl.recovery import plot_recoveries, read_evaluations

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]
OFFSETS = [-2, -1, 0, 1, 2, 3]


def _table(returns: list[float], success: list[float] | None = None) -> dict:
    success = success if success is not None else [0.5] * len(OFFSETS)
    return {"offsets": OFFSETS, "success": success, "return": returns, "trials": [10] * len(OFFSETS)}


def _result(agent: str, returns: list[float], benchmark: str = "point-nav", run: str = "r") -> dict:
    """What `metarl evaluate --task-switches 1` writes for one run (the keys the plot reads)."""
    return {"benchmark": benchmark, "split": "test", "protocol": "rl2", "episodes_per_trial": 8, "agent": agent,
            "run": run, "deterministic": True, "around_switch": _table(returns)}


@pytest.fixture
def saved_figures(monkeypatch) -> list[matplotlib.figure.Figure]:
    """Every figure saved while the test runs (closed, but its axes and artists stay readable)."""
    saved = []
    real = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kwargs):
        saved.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    return saved


def _lines(fig: matplotlib.figure.Figure, panel: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Label -> (x, y) of the curves drawn on a panel (the legend's labels, seeds note cut off)."""
    ax = fig.axes[panel]
    return {line.get_label().split(" (")[0]: (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
            for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_recovery_plot_from_evaluate_jsons_draws_a_line_per_agent_over_the_offsets(tmp_path, saved_figures,
                                                                                   capsys) -> None:
    # two per-run JSONs of forget-memory (seeds), one aggregate of two lstm seeds, one single gru run
    paths = []
    for i, rets in enumerate(([1.0, 2.0, 0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 2.0, 3.0, 4.0, 5.0])):
        paths.append(tmp_path / f"fm{i}.json")
        paths[-1].write_text(json.dumps(_result("forget-memory", rets, run=f"fm{i}")))
    per_run = [_result("lstm", [float(s)] * 6, run=f"lstm{s}") for s in (10, 20)]
    (tmp_path / "lstm.json").write_text(json.dumps({**per_run[0], "num_runs": 2, "per_run": per_run}))
    (tmp_path / "gru.json").write_text(json.dumps(_result("gru", [5.0, 5.0, 1.0, 2.0, 3.0, float("nan")])))
    out = tmp_path / "plots"
    argv = ["plot", "--recovery", *map(str, paths), str(tmp_path / "lstm.json"), str(tmp_path / "gru.json"),
            "--out", str(out)]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.split() == [str(out / "recovery_point-nav.png")]
    assert (out / "recovery_point-nav.png").stat().st_size > 5_000
    (fig,) = saved_figures
    returns, success = _lines(fig, 0), _lines(fig, 1)
    assert list(returns) == list(success) == ["forget-memory", "lstm", "gru"]  # one line per agent, first seen first
    for x, _ in [*returns.values(), *success.values()]:
        assert x.tolist() == OFFSETS
    np.testing.assert_allclose(returns["forget-memory"][1], [2.0, 3.0, 1.0, 2.0, 3.0, 4.0])  # mean of the 2 seeds
    np.testing.assert_allclose(returns["lstm"][1], [15.0] * 6)
    assert np.isnan(returns["gru"][1][-1]) and returns["gru"][1][0] == 5.0  # an offset no trial reached: a gap
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["-2", "-1", "0", "+1", "+2", "+3"]
    assert len(fig.axes[0].collections) == 2  # a band for each line with several seeds, none for gru's one
    assert any("task switched" in t.get_text() for t in fig.axes[0].texts)


def test_labels_name_lines_and_benchmarks_get_a_figure_each(tmp_path, saved_figures) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(_result("forget-memory", [1.0] * 6)))
    bandit = tmp_path / "b.json"
    bandit.write_text(json.dumps(_result("gru", [0.5] * 6, benchmark="bandit")))
    tables = read_evaluations([f"learned={one}", f"noforget={one}", str(bandit)])
    assert [t.label for t in tables] == ["learned", "noforget", "gru"]
    plots = plot_recoveries(tables, tmp_path / "out")
    assert [p.path.name for p in plots] == ["recovery_point-nav.png", "recovery_bandit.png"]
    assert list(_lines(saved_figures[0])) == ["learned", "noforget"] and list(_lines(saved_figures[1])) == ["gru"]
    assert set(plots[0].curves) == {"learned", "noforget"} and plots[0].offsets == OFFSETS


@pytest.mark.parametrize(
    "content, message",
    [
        ({"benchmark": "point-nav", "agent": "gru", "success_by_attempt": [0.1]}, "has no around_switch table"),
        ({"benchmark": "point-nav", "per_run": [_result("gru", [1.0] * 6),
                                                {"agent": "gru", "run": "runs/b", "benchmark": "point-nav"}]},
         "(run runs/b) has no around_switch table"),
        ({**_result("gru", [1.0] * 6), "around_switch": {"offsets": OFFSETS, "success": [0.0] * 6}},
         "around_switch has no return"),
        ("not json", "is not JSON"),
    ],
)
def test_evaluation_json_without_a_switch_table_is_a_one_line_error(content, message, tmp_path, capsys) -> None:
    bad = tmp_path / "eval.json"
    bad.write_text(content if isinstance(content, str) else json.dumps(content))
    assert cli.main(["plot", "--recovery", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "o").exists()  # failed before writing anything


def test_plot_with_neither_runs_nor_evaluations_is_a_one_line_error(tmp_path, capsys) -> None:
    assert cli.main(["plot", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "give run directories or --recovery" in err and "\n" not in err
    assert cli.main(["plot", "--recovery", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "no such evaluation JSON" in capsys.readouterr().err


def test_forgetting_experiment_plots_its_results_with_the_same_function(tmp_path, saved_figures) -> None:
    spec = importlib.util.spec_from_file_location("forgetting", ROOT / "experiments" / "forgetting.py")
    forgetting = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(forgetting)
    results = {"bandit": {cell: {"per_seed": [_table([float(i + s)] * 6) for s in range(3)]}
                          for i, cell in enumerate(["forget-memory", "forget-memory-noforget", "gru"])}}
    assert [p.name for p in forgetting.plot_results(results, tmp_path)] == ["recovery_bandit.png"]
    lines = _lines(saved_figures[0])
    assert list(lines) == ["forget-memory", "forget-memory-noforget", "gru"]
    np.testing.assert_allclose(lines["gru"][1], [3.0] * 6)  # mean of seeds 2, 3, 4
    assert lines["gru"][0].tolist() == OFFSETS
    (tmp_path / "recovery_bandit.png").unlink()
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert forgetting.main(["--replot", "--out", str(tmp_path)]) == 0  # the same figure from results.json
    assert (tmp_path / "recovery_bandit.png").stat().st_size > 5_000
    assert list(_lines(saved_figures[1])) == list(lines)


# ----------------------------------------------------------------------- the memory picture of a switching trial


def _switch_attempts_of_env(seed: int, episodes_per_trial: int) -> list[int]:
    """Attempts whose info said ``task_switched``, in a trial the env plays from ``reset(seed=seed)``."""
    env = make_env("point-nav", split="test", episodes_per_trial=episodes_per_trial, task_switches=1)
    _, info = env.reset(seed=seed)
    switched = set()
    while True:
        _, _, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
        if info["task_switched"]:
            switched.add(int(info["attempt"]))
        if info["trial_end"]:
            return sorted(switched)
        if terminated or truncated:
            _, info = env.reset()


def _forget_memory_agent() -> Agent:
    env = make_env("point-nav")
    torch.manual_seed(0)
    config = AgentConfig("forget-memory", 16, encoder_sizes=[32])
    return Agent(policy=make_policy(config, env.observation_space.shape[0], env.action_space.shape[0]))


def test_memory_picture_marks_the_switch_at_the_attempt_the_env_switched(tmp_path, monkeypatch) -> None:
    drawn = []
    real = matplotlib.axes.Axes.axvline

    def spy(self, x=0, *args, **kwargs):
        drawn.append((x, kwargs.get("color"), kwargs.get("label", "")))
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", spy)
    agent, k, steps = _forget_memory_agent(), 5, 20  # point-nav: 20 steps per attempt
    seen = set()
    for seed in range(4):
        (attempt,) = _switch_attempts_of_env(seed, k)
        seen.add(attempt)
        memory = trace_memory(agent, "point-nav", seed=seed, episodes_per_trial=k, task_switches=1)
        assert memory["switch_steps"].tolist() == [(attempt - 1) * steps]  # the switched attempt's first step
        assert switch_marks(memory) == [((attempt - 1) * steps, attempt)]
        drawn.clear()
        plot_memory(memory, tmp_path / f"memory_{seed}.png")
        red = [(x, label) for x, colour, label in drawn if colour == "red"]
        assert red == [((attempt - 1) * steps - 0.5, f"task switched (attempt {attempt})")] * 3  # every panel
    assert len(seen) > 1  # the seeds switch at different attempts: the mark follows the env


def test_stationary_trace_has_no_switch(tmp_path) -> None:
    memory = trace_memory(_forget_memory_agent(), "point-nav", episodes_per_trial=3)
    assert "switch_steps" not in memory and switch_marks(memory) == []


def test_plot_task_switches_on_a_run_draws_recovery_and_the_marked_memory_picture(tmp_path, saved_figures,
                                                                                  capsys) -> None:
    from metarl.config import load_config
    from metarl.train import train

    run = tmp_path / "fm"
    train(load_config(None, ["env.benchmark=point-nav", "env.num_envs=2", "env.episodes_per_trial=3",
                             "env.max_episode_steps=20", "env.task_switches=1", "agent.cell=forget-memory",
                             "agent.hidden_size=16", "total_steps=120", "progress=false", "tensorboard=false",
                             "device=cpu", "seed=3"]), run)
    out = tmp_path / "plots"
    assert cli.main(["plot", str(run), "--out", str(out), "--task-switches", "1"]) == 0
    captured = capsys.readouterr()
    names = sorted(Path(p).name for p in captured.out.split())
    assert names == ["adaptation.png", "learning_curves.png", "memory_fm_point-nav_switch.png",
                     "recovery_point-nav.png"]
    assert "evaluating" in captured.err and "--task-switches 1" in captured.err  # no eval_test.json: played here
    assert sorted(p.name for p in out.iterdir()) == names  # PNGs only
    recovery = next(f for f in saved_figures if "Recovery" in f.get_suptitle())
    (label,) = _lines(recovery)
    assert "forget-memory" in label and _lines(recovery)[label][0].tolist() == OFFSETS
    memory = next(f for f in saved_figures if "Memory" in f.get_suptitle())
    (attempt,) = _switch_attempts_of_env(0, 3)  # the trace's trial: held-out split, seed 0
    assert f"task switched at attempt {attempt}" in memory.get_suptitle()
