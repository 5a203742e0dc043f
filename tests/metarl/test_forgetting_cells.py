"""Each cell variant of experiments/forgetting.py resolves to the cell and options it is named for."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from metarl.agents import make_policy
from metarl.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import forgetting  # noqa: E402

EXPECTED = {
    "forget-memory": ("forget-memory", {"write_mode": "input", "learn_forget": True}),
    "forget-memory-noforget": ("forget-memory", {"write_mode": "input", "learn_forget": False}),
    "forget-memory-controller": ("forget-memory", {"write_mode": "controller", "learn_forget": True}),
    "forget-memory-delta": ("forget-memory", {"head_input": "delta", "learn_forget": True}),
    "forget-memory-noforget-delta": ("forget-memory", {"head_input": "delta", "learn_forget": False}),
    "forget-memory-surprise": ("forget-memory", {"surprise": True, "learn_forget": True}),
}


def _build(variant: str):
    """The point-nav config the script would train for this variant, and its cell (built by the policy,
    as training builds it: surprise gates take their action width from it)."""
    preset = forgetting.TASKS["point-nav"].preset
    cfg = load_config(preset, forgetting._overrides("point-nav", variant, seed=1, steps=1000, smoke=True))
    return cfg, make_policy(cfg.agent, obs_dim=9, action_dim=2).cell


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_variant_builds_the_cell_with_its_options(variant):
    cfg, cell = _build(variant)
    name, attrs = EXPECTED[variant]
    assert cfg.agent.cell == name and cfg.env.task_switches == 1
    assert {k: getattr(cell, k) for k in attrs} == attrs


@pytest.mark.parametrize("variant", list(forgetting.CELLS))
def test_every_variant_names_a_known_cell(variant):
    _build(variant)


def test_the_ml1_task_trains_its_best_learner_on_switching_trials_with_its_task_head():
    task = forgetting.TASKS["ml1-reach"]
    cfg = load_config(task.preset, forgetting._overrides("ml1-reach", "forget-memory-noforget", seed=2, steps=1000, smoke=False))
    assert (cfg.env.benchmark, cfg.env.task_switches, cfg.env.episodes_per_trial) == ("ML1/reach-v3", 1, 4)
    assert cfg.ppo.lr_schedule == "linear" and cfg.agent.init_log_std == -1.2 and cfg.ppo.task_coef > 0
    assert cfg.agent.cell_options["forget-memory"]["learn_forget"] is False and cfg.seed == 2
    assert set(task.cells) <= set(forgetting.CELLS) and task.seeds == 3


def test_the_sparse_point_nav_task_trains_point_navs_preset_on_the_sparse_benchmark():
    task = forgetting.TASKS["point-nav-sparse"]
    cfg = load_config(task.preset, forgetting._overrides("point-nav-sparse", "forget-memory", seed=1, steps=1000, smoke=False))
    assert (cfg.env.benchmark, cfg.env.task_switches, cfg.env.episodes_per_trial) == ("point-nav-sparse", 1, 8)
    assert task.cells == forgetting.COMPARED and task.seeds == 5 and set(task.cells) <= set(forgetting.CELLS)


def test_the_onehot_bandit_task_trains_the_bandit_preset_with_ten_pulls_on_the_onehot_benchmark():
    task = forgetting.TASKS["bandit-onehot"]
    cfg = load_config(task.preset, forgetting._overrides("bandit-onehot", "mann", seed=4, steps=1000, smoke=False))
    assert (cfg.env.benchmark, cfg.env.task_switches, cfg.env.episodes_per_trial) == ("bandit-onehot", 1, 10)
    assert cfg.agent.cell == "mann" and cfg.seed == 4 and task.figure == "success" and task.seeds == 5


def test_collect_counts_a_run_with_only_its_committed_evaluation_as_finished(tmp_path):
    """The raw files committed under docs/results/ (no checkpoints) are collected as finished runs,
    and give back the table that was committed beside them."""
    committed = Path(__file__).resolve().parents[2] / "docs" / "results" / "2026-12-03-forgetting-ml1-reach"
    for cell_dir in committed.iterdir():
        if cell_dir.is_dir():
            shutil.copytree(cell_dir, tmp_path / "ml1-reach" / cell_dir.name)
    (tmp_path / "ml1-reach" / "gru" / "seed9").mkdir()  # a run that never finished: skipped
    results = forgetting.collect(tmp_path)
    expected = json.loads((committed / "results.json").read_text())
    assert set(results["ml1-reach"]) == set(expected["ml1-reach"])
    for cell, r in results["ml1-reach"].items():
        assert r["per_seed"] == expected["ml1-reach"][cell]["per_seed"]
        assert [run["run"] for run in r["runs"]] == ["seed1", "seed2", "seed3"]


def _table(values: list[float]) -> dict:
    return {"offsets": [-1, 0, 1], "success": values, "return": values}


def test_paired_differences_match_seeds_by_name_and_take_a_t_interval():
    cells = {
        "forget-memory": {"per_seed": [_table([0.8, 0.6, 0.9]), _table([0.7, 0.5, 0.8]), _table([0.9, 0.4, 0.7])],
                          "runs": [{"run": "seed1"}, {"run": "seed2"}, {"run": "seed3"}]},
        # seed order differs and seed3 is missing: pairs are matched by the run's name
        "gru": {"per_seed": [_table([0.6, 0.5, 0.5]), _table([0.6, 0.4, 0.6])],
                "runs": [{"run": "seed2"}, {"run": "seed1"}]},
    }
    pairs = forgetting.paired({"ml1-reach": cells})
    r = pairs["ml1-reach"]["gru"]
    assert r["seeds"] == ["seed2", "seed1"] and r["figure"] == "success" and r["offsets"] == [-1, 0, 1]
    assert r["return"] == r["success"]  # the hand-made tables hold the same values for both
    at_plus1 = r["success"][2]  # differences 0.3 (seed2) and 0.3 (seed1): no spread
    assert at_plus1["mean"] == pytest.approx(0.3) and at_plus1["low"] == pytest.approx(0.3)
    at_minus1 = r["success"][0]  # 0.1 and 0.2: mean 0.15, t(0.975, 1) = 12.71 times sd/sqrt(2) = 0.05
    assert at_minus1["mean"] == pytest.approx(0.15)
    assert at_minus1["high"] - at_minus1["mean"] == pytest.approx(12.706 * 0.05, rel=1e-3)
    assert "gru | 2 | +0.15" in forgetting.paired_markdown(pairs)
    assert forgetting.paired({"ml1-reach": {"gru": cells["gru"]}}) == {}  # no forget-memory: nothing paired


def test_an_evaluation_of_another_trial_count_is_replaced_while_the_checkpoint_is_there(tmp_path):
    from metarl.train import train

    run = tmp_path / "seed1"
    train(load_config(None, ["env.benchmark=bandit-onehot", "env.num_envs=2", "env.episodes_per_trial=4",
                             "env.task_switches=1", "agent.cell=gru", "agent.hidden_size=8", "total_steps=16",
                             "progress=false", "tensorboard=false", "device=cpu", "seed=1"]), run)
    cached = run / "eval_test_switch.json"
    trials = lambda: json.loads(cached.read_text())["trials"]  # noqa: E731
    forgetting.evaluate_run(run, trials=20)
    assert trials() == 20
    forgetting.evaluate_run(run)  # None: whatever is cached
    assert trials() == 20
    table = forgetting.evaluate_run(run, trials=30)
    assert trials() == 30
    assert json.dumps(table) == json.dumps(json.loads(cached.read_text())["around_switch"])  # NaN-safe
    shutil.rmtree(run / "checkpoints")  # committed raw files: the cache is all there is
    forgetting.evaluate_run(run, trials=40)
    assert trials() == 30
