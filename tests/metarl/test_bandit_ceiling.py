"""experiments/bandit_ceiling.py: Thompson samplers read the trial observation, the oracle forgets at the switch."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from metarl.evaluate import evaluate_agent

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import bandit_ceiling  # noqa: E402


def _obs(agent, rows):
    """Trial observations: (trial_start, arm pulled last, its reward) per row."""
    obs = np.zeros((len(rows), agent.layout.dim), dtype=np.float32)
    for i, (start, arm, reward) in enumerate(rows):
        obs[i, agent.layout.trial_start] = float(start)
        if not start:
            obs[i, agent.layout.action] = -1.0
            obs[i, agent.layout.action.start + arm] = 1.0
            obs[i, agent.layout.reward] = reward * agent.reward_scale
    return obs


def test_the_posterior_books_the_previous_pull_and_the_oracle_drops_what_came_before():
    agent = bandit_ceiling.make_agent("oracle", decay=0.7, seed=0)
    state = agent.initial_state(3)
    action, state = agent.act(_obs(agent, [(True, 0, 0), (False, 2, 1), (False, 4, 0)]), state)
    assert action.shape == (3, 5) and np.all((action == 1.0).sum(axis=1) == 1)
    assert np.all(state[0] == 1.0)
    assert state[1, 0, 2] == 2.0 and state[1, 1].sum() == 5.0
    assert state[2, 1, 4] == 2.0 and state[2, 0].sum() == 5.0
    agent.on_step(None, {"task_switched": np.array([False, True, False])}, np.ones(3, dtype=bool))
    _, state = agent.act(_obs(agent, [(False, 1, 1), (False, 0, 1), (False, 4, 0)]), state)
    assert state[1, 0, 0] == 2.0 and state[1, 0, 2] == 1.0 and agent.forgets == 1  # the old arm's success dropped
    assert state[2, 1, 4] == 3.0  # not switched: kept (the oracle variant keeps everything else)


def test_decay_shrinks_old_evidence_toward_the_prior():
    agent = bandit_ceiling.make_agent("decay", decay=0.5, seed=0)
    state = agent.initial_state(1)
    state[0, 0, 2] = 3.0
    _, state = agent.act(_obs(agent, [(False, 1, 0)]), state)
    assert state[0, 0, 2] == 2.0 and state[0, 1, 1] == 2.0


def test_the_one_good_arm_posterior_stays_on_a_paying_arm_and_leaves_one_that_missed():
    agent = bandit_ceiling.make_agent("keep", decay=1.0, seed=0, benchmark="bandit-onehot", model="onegood")
    state = agent.initial_state(2)
    action, state = agent.act(_obs(agent, [(False, 2, 1), (False, 2, 0)]), state)
    np.testing.assert_allclose(state[0], np.log([0.1, 0.1, 0.9, 0.1, 0.1]))
    np.testing.assert_allclose(state[1], np.log([0.9, 0.9, 0.1, 0.9, 0.9]))
    assert np.argmax(action[0]) == 2 and np.argmax(action[1]) != 2
    with pytest.raises(ValueError, match="assumes bandit-onehot's one good arm"):
        bandit_ceiling.make_agent("keep", 1.0, 0, benchmark="bandit", model="onegood")


def test_the_oracle_hears_of_every_switch_it_can_still_use():
    agent = bandit_ceiling.make_agent("oracle", decay=1.0, seed=1)
    # 50 envs: one round, every env's trial recorded (a last round's unrecorded envs would switch too)
    result = evaluate_agent(agent, benchmark="bandit", split="test", trials=50, episodes_per_trial=4, seed=1,
                            num_envs=50, task_switches=1, on_step=agent.on_step)
    (table,) = [t["around_switch"] for t in result["tasks"].values()]
    # every trial switches once, at attempt 2..4; a switch at the last attempt leaves no pull to use it for
    assert table["trials"][table["offsets"].index(0)] == 50
    assert agent.forgets == table["trials"][table["offsets"].index(1)] > 0


def test_thompson_sampling_finds_the_best_arm_in_stationary_trials():
    agent = bandit_ceiling.make_agent("keep", decay=1.0, seed=0)
    result = evaluate_agent(agent, benchmark="bandit", split="test", trials=500, episodes_per_trial=10, seed=0)
    (success,) = [t["success_by_attempt"] for t in result["tasks"].values()]
    assert success[0] == pytest.approx(0.2, abs=0.06)  # the first pull is a guess among 5 arms
    assert success[-1] > 0.27


def test_main_writes_every_variant_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "ceiling.json"
    assert bandit_ceiling.main(["--out", str(out), "--trials", "20", "--seeds", "2"]) == 0
    data = json.loads(out.read_text())
    assert set(data["variants"]) == set(bandit_ceiling.VARIANTS)
    for entry in data["variants"].values():
        assert len(entry["per_seed"]) == 2 and len(entry["success"]) == len(entry["offsets"])
    with pytest.raises(SystemExit, match="model onegood assumes"):
        bandit_ceiling.main(["--out", str(out), "--model", "onegood"])
    with pytest.raises(SystemExit, match="--decay must be in"):
        bandit_ceiling.main(["--out", str(out), "--decay", "1.5"])
    with pytest.raises(ValueError, match="valid: keep, decay, oracle"):
        bandit_ceiling.make_agent("forget", 0.5, 0)
