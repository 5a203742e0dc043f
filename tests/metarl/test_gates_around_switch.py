"""experiments/gates_around_switch.py: forget gates by attempt, aligned to the switch, on tiny real runs."""

import sys
from pathlib import Path

import pytest

from metarl.config import load_config
from metarl.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import gates_around_switch  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    run = tmp_path / name
    # max_episode_steps left at the benchmark's default (None in the config): point-nav's 20
    train(load_config(None, ["env.benchmark=point-nav", "env.num_envs=2", "env.episodes_per_trial=3",
                             "agent.hidden_size=16", "total_steps=120",
                             "progress=false", "tensorboard=false", "device=cpu", "seed=3", *extra]), run)
    return run


def test_gates_are_aligned_to_the_switch_and_the_ablation_never_closes_one(tmp_path):
    trials = 4
    learned = _run(tmp_path, "fm", "agent.cell=forget-memory")
    switch = gates_around_switch.gates_by_attempt(learned, trials, task_switches=1)
    stationary = gates_around_switch.gates_by_attempt(learned, trials, task_switches=0)
    assert list(stationary) == [0, 1, 2] and all(v["trials"] == trials for v in stationary.values())
    # every trial has an attempt 0 (the first on the new task) and, as the switch is never before
    # attempt 2, an attempt -1; 3 attempts per trial in all
    assert switch[0]["trials"] == switch[-1]["trials"] == trials
    assert sum(v["trials"] for v in switch.values()) == 3 * trials and set(switch) <= {-2, -1, 0, 1}
    assert all(0.0 < v["mean_gate"] < 1.0 and 0.0 <= v["closed"] <= 1.0 for v in switch.values())

    fixed = _run(tmp_path, "noforget", "agent.cell=forget-memory", "agent.cell_options.forget-memory.learn_forget=false")
    for v in gates_around_switch.gates_by_attempt(fixed, trials, task_switches=1).values():
        assert v["mean_gate"] == pytest.approx(1.0) and v["closed"] == 0.0


def test_a_cell_without_forget_gates_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="reports no forget gates"):
        gates_around_switch.gates_by_attempt(_run(tmp_path, "gru", "agent.cell=gru"), 1, task_switches=1)


def test_one_pull_attempts_keep_their_one_step(tmp_path):
    run = tmp_path / "bandit"
    train(load_config(None, ["env.benchmark=bandit-onehot", "env.num_envs=2", "env.episodes_per_trial=4",
                             "agent.cell=forget-memory", "agent.hidden_size=16", "total_steps=16",
                             "progress=false", "tensorboard=false", "device=cpu", "seed=3"]), run)
    table = gates_around_switch.gates_by_attempt(run, 3, task_switches=1)
    assert sum(v["trials"] for v in table.values()) == 4 * 3
    assert all(0.0 < v["mean_gate"] < 1.0 for v in table.values())  # not the NaN of an empty slice
