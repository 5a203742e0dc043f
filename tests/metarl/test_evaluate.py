"""`metarl evaluate`: held-out evaluation of tiny real runs, the Meta-World protocol, stats, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from metarl import cli, stats
from metarl.protocol import MetaWorldProtocolAgent, per_env_success
from metarl.evaluate import EvalSettings, evaluate_agent, goal_order, resolve_settings, run_trials
from metarl.results import TrialRecord, aggregate_runs, header, markdown_table, summarize

from _tiny_runs import tiny_run  # tests/metarl is on sys.path (pytest rootdir import mode)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="session")
def point_nav_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.getbasetemp(), "point-nav")


@pytest.fixture(scope="session")
def reach_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.getbasetemp(), "reach")


def _check_result(result: dict, benchmark: str, split: str, k: int, trials: int) -> None:
    from metarl.envs import tasks

    assert result["benchmark"] == benchmark and result["split"] == split
    assert result["episodes_per_trial"] == k and result["trials"] == trials
    assert list(result["tasks"]) == sorted(tasks(benchmark, split))  # held-out classes, sorted order
    for t in result["tasks"].values():
        assert len(t["success_by_attempt"]) == k and len(t["return_by_attempt"]) == k
        assert all(0.0 <= s <= 1.0 for s in t["success_by_attempt"])
        assert all(np.isfinite(t["return_by_attempt"]))
        assert t["trials"] == trials
    assert len(result["success_by_attempt"]) == k
    fin = result["final_success"]
    assert 0.0 <= fin["low"] <= fin["mean"] <= fin["high"] <= 1.0
    assert fin["mean"] == pytest.approx(result["success_by_attempt"][-1])


def test_point_nav_run_cli_writes_table_json_and_csv(point_nav_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ev.json"
    rc = cli.main(["evaluate", str(point_nav_run), "--trials", "6", "--seed", "3", "--no-progress", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| task | success@1 | success@2 | mean return |" in printed and "| point-nav |" in printed
    result = json.loads(out.read_text())
    _check_result(result, "point-nav", "test", k=2, trials=6)
    assert all(r < 0 for r in result["return_by_attempt"])  # point-nav reward is -distance
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert [(r["task"], r["attempt"]) for r in rows] == [("point-nav", "1"), ("point-nav", "2")]
    assert float(rows[0]["success"]) == pytest.approx(result["tasks"]["point-nav"]["success_by_attempt"][0])


def test_default_output_goes_into_the_run_dir(point_nav_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(point_nav_run, run)
    assert cli.main(["evaluate", str(run), "--trials", "2", "--split", "train", "--no-progress"]) == 0
    result = json.loads((run / "eval_train.json").read_text())
    assert result["split"] == "train" and (run / "eval_train.csv").is_file()


def test_reach_run_on_held_out_goals(reach_run: Path) -> None:
    from metarl.checkpoint import load_agent

    agent = load_agent(reach_run)
    result = evaluate_agent(agent, trials=2, seed=0, workers=0)
    _check_result(result, "ML1/reach-v3", "test", k=2, trials=2)
    assert result["max_episode_steps"] == 30  # the run's episode length, from its config
    assert all(r > 0 for r in result["return_by_attempt"])  # reach rewards are positive
    from metarl.envs.registry import task_set

    n_goals = len(task_set("ML1/reach-v3", "test").goals["reach-v3"])
    assert all(0 <= g < n_goals for g in result["tasks"]["reach-v3"]["goals"])  # indices into the test goals


def test_goal_order_covers_goals_without_replacement() -> None:
    assert goal_order(50, 50, np.random.default_rng(0)) == list(range(50))  # every goal exactly once
    subset = goal_order(50, 7, np.random.default_rng(3))
    assert len(set(subset)) == 7 and all(0 <= g < 50 for g in subset)
    assert subset == goal_order(50, 7, np.random.default_rng(3))  # seeded
    assert subset != goal_order(50, 7, np.random.default_rng(4))
    counts = np.bincount(goal_order(50, 120, np.random.default_rng(0)), minlength=50)
    assert counts.sum() == 120 and counts.min() == 2 and counts.max() == 3  # two full passes, then 20 distinct


def _check_goal_counts(goals: list[int], num_goals: int, trials: int) -> None:
    """Each goal played floor(trials / num_goals) times, ``trials % num_goals`` of them once more."""
    counts = np.bincount(goals, minlength=num_goals)
    passes, rest = divmod(trials, num_goals)
    assert len(goals) == trials and len(counts) == num_goals
    assert counts.min() >= passes and counts.max() <= passes + 1 and int((counts > passes).sum()) == rest


@pytest.mark.parametrize("trials, num_envs", [(None, None), (None, 8), (7, None), (60, 16)])
def test_point_nav_evaluation_plays_goals_without_replacement(point_nav_run: Path, trials, num_envs) -> None:
    from metarl.checkpoint import load_agent

    agent = load_agent(point_nav_run)
    s = resolve_settings(agent, EvalSettings(trials=trials, num_envs=num_envs, seed=2))
    records, meta = run_trials(agent, s)  # 8 envs: 7 rounds, 56 slots for 50 trials
    assert meta["trials"] == (trials or 50)
    assert {r.task for r in records} == {"point-nav"}
    _check_goal_counts([r.goal for r in records], 50, meta["trials"])


def test_default_evaluation_lists_every_held_out_goal(point_nav_run: Path) -> None:
    from metarl.checkpoint import load_agent

    result = evaluate_agent(load_agent(point_nav_run), seed=1)
    assert result["trials"] == 50 and result["tasks"]["point-nav"]["trials"] == 50
    assert result["tasks"]["point-nav"]["goals"] == list(range(50))


@pytest.mark.parametrize("trials, workers", [(None, 2), (3, 0)])
def test_reach_evaluation_plays_held_out_goals_without_replacement(reach_run: Path, trials, workers: int) -> None:
    from metarl.checkpoint import load_agent
    from metarl.envs.registry import task_set

    agent = load_agent(reach_run)
    s = resolve_settings(agent, EvalSettings(trials=trials, num_envs=10 if trials is None else 3, seed=4,
                                             episodes_per_trial=1, max_episode_steps=10, workers=workers))
    records, meta = run_trials(agent, s)
    n_goals = len(task_set("ML1/reach-v3", "test").goals["reach-v3"])
    assert meta["trials"] == (trials or n_goals)
    _check_goal_counts([r.goal for r in records], n_goals, meta["trials"])


def test_ml10_test_split_plays_only_held_out_classes(reach_run: Path) -> None:
    from metarl.checkpoint import load_agent
    from metarl.envs import tasks

    agent = load_agent(reach_run)  # same observation layout as every Meta-World benchmark
    result = evaluate_agent(agent, benchmark="ML10", trials=1, episodes_per_trial=1, max_episode_steps=3, workers=0)
    assert set(result["tasks"]) == set(tasks("ML10", "test"))
    assert not set(result["tasks"]) & set(tasks("ML10", "train"))
    assert "drawer-open-v3" in result["tasks"]


def test_same_seed_same_numbers_other_seed_other_numbers(point_nav_run: Path) -> None:
    from metarl.checkpoint import load_agent

    agent = load_agent(point_nav_run)
    a = evaluate_agent(agent, trials=4, seed=5)
    b = evaluate_agent(agent, trials=4, seed=5)
    c = evaluate_agent(agent, trials=4, seed=6)
    assert a == b
    assert a["return_by_attempt"] != c["return_by_attempt"]


def test_explore_attempts_sample_the_first_attempts_then_act_on_the_mean(point_nav_run: Path) -> None:
    """Attempt 1 is played exactly as a sampled evaluation plays it (same seed, same draws);
    attempt 2 as a deterministic one would from that memory, so it differs from the sampled one."""
    from metarl.checkpoint import load_agent

    agent = load_agent(point_nav_run)
    sampled = evaluate_agent(agent, trials=6, seed=3)
    mixed = evaluate_agent(agent, trials=6, seed=3, deterministic=True, explore_attempts=1)
    assert mixed["explore_attempts"] == 1 and sampled["explore_attempts"] == 0
    assert mixed["return_by_attempt"][0] == sampled["return_by_attempt"][0]
    assert mixed["return_by_attempt"][1] != sampled["return_by_attempt"][1]
    assert "sampled actions in attempt 1, deterministic" in header(mixed, "test")


def test_several_runs_give_mean_and_spread(point_nav_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "agg.json"
    best = point_nav_run / "checkpoints" / "best.pt"
    rc = cli.main(["evaluate", str(point_nav_run), str(best), "--trials", "3", "--no-progress", "--out", str(out)])
    assert rc == 0
    agg = json.loads(out.read_text())
    assert agg["num_runs"] == 2 and len(agg["per_run"]) == 2
    assert len(agg["success_by_attempt_std"]) == 2
    per_run = [r["return_by_attempt"][0] for r in agg["per_run"]]
    assert agg["return_by_attempt"][0] == pytest.approx(np.mean(per_run))
    assert agg["tasks"]["point-nav"]["return_by_attempt_std"][0] == pytest.approx(np.std(per_run, ddof=1))
    assert "±" in capsys.readouterr().out


def test_metaworld_protocol_runs_on_short_ml10(reach_run: Path, tmp_path: Path) -> None:
    from metarl.envs import tasks

    out = tmp_path / "mw.json"
    rc = cli.main([
        "evaluate", str(reach_run), "--protocol", "metaworld", "--benchmark", "ML10", "--num-evals", "1",
        "--adaptation-episodes", "1", "--evaluation-episodes", "1", "--meta-batch-size", "5",
        "--max-episode-steps", "10", "--no-progress", "--out", str(out),
    ])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "metaworld" and result["split"] == "test"
    assert list(result["tasks"]) == sorted(tasks("ML10", "test"))
    assert all(0.0 <= t["success"] <= 1.0 for t in result["tasks"].values())
    assert np.isfinite(result["mean_return"]) and result["mean_return"] > 0
    # one env per class and one evaluation episode: no room for bias, the two figures agree
    assert all(t["success_per_env"] == t["success"] for t in result["tasks"].values())
    assert result["success_per_env"] == result["success"]


class _CountingAgent:
    """Fake agent: records the observations it sees; its state counts steps per env."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def initial_state(self, n: int):
        return (torch.zeros(n, 1),)

    def act(self, obs, state, deterministic=True):
        self.seen.append(obs.copy())
        reset = torch.as_tensor(obs[:, -1] > 0.5)[:, None]
        count = torch.where(reset, torch.zeros_like(state[0]), state[0]) + 1
        return np.full((obs.shape[0], 2), 0.5, dtype=np.float32) * np.arange(1, obs.shape[0] + 1)[:, None] / 2, (count,)


def test_metaworld_adapter_builds_our_observation_layout_and_restores_memory() -> None:
    from metaworld.evaluation import Timestep

    fake = _CountingAgent()
    d_env, a_dim = 3, 2
    adapter = MetaWorldProtocolAgent(fake, -np.ones(d_env), np.ones(d_env), a_dim, reward_scale=0.1, deterministic=True)
    raw = np.zeros((2, d_env + a_dim + 2))  # (N, obs | action | reward | done) as Meta-World hands it
    adapter.init()
    actions, _ = adapter.adapt_action(raw)
    first = fake.seen[-1]
    assert first.shape == (2, d_env + a_dim + 3)
    assert np.all(first[:, -1] == 1) and np.all(first[:, -2] == 1) and np.all(first[:, d_env:-2] == 0)
    adapter.step(Timestep(raw, actions, np.array([5.0, 7.0]), np.array([False, False]), np.array([False, True]), {}))
    adapter.adapt_action(raw)
    second = fake.seen[-1]
    assert np.all(second[:, -1] == 0)  # no new trial within adaptation
    assert second[:, -2].tolist() == [0.0, 1.0]  # env 1 started its next episode
    assert second[:, d_env + a_dim].tolist() == pytest.approx([0.5, 0.7])  # previous reward * 0.1
    assert np.allclose(second[:, d_env : d_env + a_dim], actions)
    adapter.adapt()  # snapshot: 2 steps in memory
    raw_eval = raw.copy()
    raw_eval[:, d_env + a_dim] = [3.0, 4.0]
    adapter.reset(np.array([True, True]))
    adapter.eval_action(raw_eval)
    adapter.eval_action(raw_eval)
    assert adapter.state[0][:, 0].tolist() == [4.0, 4.0]
    restored = fake.seen[-2]
    assert restored[:, -2].tolist() == [1.0, 1.0] and restored[:, -1].tolist() == [0.0, 0.0]
    assert restored[:, d_env + a_dim].tolist() == pytest.approx([0.5, 0.7])  # last adaptation reward
    assert fake.seen[-1][:, d_env + a_dim].tolist() == pytest.approx([0.3, 0.4])  # from the obs within an episode
    adapter.reset(np.array([False, True]))  # env 1's evaluation episode ended: back to the snapshot
    adapter.eval_action(raw_eval)
    assert adapter.state[0][:, 0].tolist() == [5.0, 3.0]


def test_metaworld_adapter_writes_the_clock_as_the_trial_env_does() -> None:
    """Attempts of 4 steps, 3 per trial: adaptation counts attempts, evaluation restarts the
    attempt after adaptation, and each episode's clock runs from its start."""
    from metaworld.evaluation import Timestep

    fake = _CountingAgent()
    d_env, a_dim = 3, 2
    adapter = MetaWorldProtocolAgent(fake, -np.ones(d_env), np.ones(d_env), a_dim, reward_scale=0.1,
                                     deterministic=True, clock=(4, 3))
    raw = np.zeros((2, d_env + a_dim + 2))
    adapter.init()
    clocks = []
    for t in range(5):  # env 1's first episode ends after 2 steps (success), env 0's after 4
        actions, _ = adapter.adapt_action(raw)
        clocks.append(fake.seen[-1][:, d_env : d_env + 2].copy())
        ended = np.array([t == 3, t == 1])
        adapter.step(Timestep(raw, actions, np.zeros(2), ended, np.zeros(2, bool), {}))
    assert fake.seen[-1].shape == (2, d_env + 2 + a_dim + 3)
    np.testing.assert_allclose([c[0] for c in clocks], [[1, 1], [0.75, 11 / 12], [0.5, 10 / 12], [0.25, 9 / 12], [1, 8 / 12]])
    np.testing.assert_allclose([c[1] for c in clocks], [[1, 1], [0.75, 11 / 12], [1, 8 / 12], [0.75, 7 / 12], [0.5, 6 / 12]])
    adapter.adapt()  # env 0 is in attempt 2, env 1 in attempt 2
    adapter.reset(np.array([True, True]))
    adapter.eval_action(raw)
    adapter.eval_action(raw)
    np.testing.assert_allclose(fake.seen[-2][:, d_env : d_env + 2], [[1, 8 / 12], [1, 8 / 12]])
    np.testing.assert_allclose(fake.seen[-1][:, d_env : d_env + 2], [[0.75, 7 / 12], [0.75, 7 / 12]])


def test_summary_is_per_attempt_mean_in_sorted_task_order() -> None:
    records = [
        TrialRecord("b-task", [False, True], [1.0, 3.0]),
        TrialRecord("a-task", [False, False], [0.0, 0.0]),
        TrialRecord("b-task", [True, True], [2.0, 5.0]),
    ]
    s = summarize(records, 2)
    assert list(s["tasks"]) == ["a-task", "b-task"]
    assert s["tasks"]["b-task"]["success_by_attempt"] == [0.5, 1.0]
    assert s["tasks"]["b-task"]["return_by_attempt"] == [1.5, 4.0]
    assert s["success_by_attempt"] == [0.25, 0.5]  # mean over tasks, not over trials
    table = markdown_table({"episodes_per_trial": 2, **s})
    assert table.index("a-task") < table.index("b-task")


def test_aggregate_refuses_runs_of_different_benchmarks() -> None:
    base = {"split": "test", "episodes_per_trial": 1, "tasks": {"t": {"success_by_attempt": [1.0],
            "return_by_attempt": [1.0], "mean_return": 1.0}}, "success_by_attempt": [1.0],
            "return_by_attempt": [1.0], "mean_return": 1.0}
    with pytest.raises(ValueError, match="differ in benchmark"):
        aggregate_runs([{**base, "benchmark": "A"}, {**base, "benchmark": "B"}])


def test_bootstrap_ci_covers_the_mean_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(0)
    small = stats.bootstrap_ci(rng.random(10) < 0.5)
    large = stats.bootstrap_ci(rng.random(1000) < 0.5)
    assert small.low <= small.mean <= small.high
    assert (large.high - large.low) < (small.high - small.low) / 3
    assert stats.bootstrap_ci([1.0, 1.0]).low == 1.0
    strat = stats.stratified_bootstrap_ci([[0, 0, 0, 0], [1, 1, 0, 1]])
    assert strat.mean == pytest.approx(0.375) and 0.0 <= strat.low < 0.375 < strat.high <= 0.5
    with pytest.raises(ValueError):
        stats.bootstrap_ci([])


def test_t_ci_is_wider_than_the_range_bootstrap_for_three_seeds() -> None:
    ci = stats.t_ci([0.2, 0.3, 0.4])  # mean 0.3, sd 0.1, t(0.975, 2) = 4.303
    assert ci.mean == pytest.approx(0.3)
    assert (ci.low, ci.high) == pytest.approx((0.3 - 0.4303 / 3**0.5, 0.3 + 0.4303 / 3**0.5), abs=1e-4)
    boot = stats.bootstrap_ci([0.2, 0.3, 0.4])
    assert ci.low < boot.low and boot.high < ci.high
    one = stats.t_ci([0.5])
    assert one.mean == 0.5 and np.isnan(one.low) and np.isnan(one.high)
    with pytest.raises(ValueError, match="at least one"):
        stats.t_ci([])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "/no/such/run"], "no such run directory or checkpoint: /no/such/run"),
        (["evaluate", "{run}", "--benchmark", "ML1/rech-v3"], "did you mean 'ML1/reach-v3'"),
        (["evaluate", "{run}", "--split", "tset"], "invalid split 'tset'"),
        (["evaluate", "{run}", "--trials", "0"], "trials must be >= 1"),
        (["evaluate", "{run}", "--explore-attempts", "1"], "needs --deterministic"),
        (["evaluate", "{run}", "--deterministic", "--explore-attempts", "2"], "must be < episodes-per-trial (2)"),
        (["evaluate", "{run}", "--protocol", "metaworld"], "needs a Meta-World benchmark"),
        (["evaluate", "{run}", "--benchmark", "ML10", "--workers", "0"], "trained on observations of size 7"),
    ],
)
def test_bad_inputs_give_one_line_errors(argv, message, point_nav_run: Path, capsys) -> None:
    argv = [a.replace("{run}", str(point_nav_run)) for a in argv]
    assert cli.main(argv + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_per_env_success_is_unbiased_where_metaworlds_count_favours_early_successes() -> None:
    """4 envs of one class, per-goal success 1/4: env 0 succeeds at once in every episode,
    the others time out. Meta-World counts the first 3 episodes to finish per class: env 0's
    three quick successes, so 1.0; every env's own first 3 episodes give (1 + 0 + 0 + 0) / 4."""
    ended = [(0, 0, True), (0, 0, True), (0, 0, True)]  # env 0's short episodes end first
    ended += [(0, i, False) for i in (1, 2, 3)] + [(0, 0, True)]  # then the time-outs
    ended += [(0, i, False) for i in (1, 2, 3)] * 2
    names = ["reach-v3"] * 4
    assert per_env_success(ended, names, episodes=3) == {"reach-v3": 0.25}
    metaworld_count = sum(s for _, _, s in ended[:3]) / 3  # what metalearning_evaluation reports here
    assert metaworld_count == 1.0
    # two rounds, two classes: per env, averaged over rounds, then over the class's envs
    two = [(0, 0, True), (0, 1, False), (1, 0, False), (1, 1, False), (0, 2, True), (1, 2, True)]
    assert per_env_success(two, ["a", "a", "b"], episodes=1) == {"a": 0.25, "b": 1.0}


def test_per_env_figure_plays_every_env_to_its_own_evaluation_episodes(monkeypatch) -> None:
    """Meta-World's loop stops a round once the class has 3 finished episodes over its 4 envs:
    with an agent that often succeeds early (the shipped reach agent), some envs are cut off.
    The per-env figure must still see 3 episodes of every env in every round."""
    import metarl.protocol as protocol
    from metarl.checkpoint import load_agent

    seen: list = []
    real = protocol.per_env_success
    monkeypatch.setattr(protocol, "per_env_success", lambda ended, *a: seen.append(list(ended)) or real(ended, *a))
    agent = load_agent("pretrained:ml1-reach")
    result = protocol.metaworld_evaluate(agent, split="test", deterministic=True, num_evals=2, meta_batch_size=4)
    counts: dict = {}
    for rnd, env, _ in seen[0]:
        counts[rnd, env] = counts.get((rnd, env), 0) + 1
    assert sorted(counts) == [(r, e) for r in range(2) for e in range(4)]
    assert min(counts.values()) >= 3
    assert result["per_env_steps_played_on"] > 0  # Meta-World's loop had cut some envs off
    assert 0.0 <= result["success_per_env"] <= result["success"] <= 1.0


def test_switch_aligned_table_matches_the_trials_it_came_from(point_nav_run: Path, tmp_path: Path, capsys) -> None:
    """With --task-switches 1 every trial records its switch attempt, and the table around the
    switch is the mean of those trials' attempts at each offset, with its trial counts."""
    from metarl.checkpoint import load_agent
    from metarl.evaluate import resolve_settings, run_trials
    from metarl.results import SWITCH_OFFSETS, around_switch

    agent = load_agent(point_nav_run)
    s = resolve_settings(agent, EvalSettings(trials=20, episodes_per_trial=4, task_switches=1, deterministic=True))
    records, _ = run_trials(agent, s)
    assert all(len(r.switches) == 1 and 2 <= r.switches[0] <= 4 for r in records)
    assert len({r.switches[0] for r in records}) > 1  # drawn per trial
    table = around_switch(records)
    assert table["offsets"] == list(SWITCH_OFFSETS)
    for j, off in enumerate(SWITCH_OFFSETS):
        rows = [r.returns[r.switches[0] + off - 1] for r in records if 1 <= r.switches[0] + off <= 4]
        assert table["trials"][j] == len(rows)
        if rows:
            assert table["return"][j] == pytest.approx(np.mean(rows))
    plain, _ = run_trials(agent, resolve_settings(agent, EvalSettings(trials=20, episodes_per_trial=4, deterministic=True)))
    assert all(r.switches == [] for r in plain)
    out = tmp_path / "sw.json"
    assert cli.main(["evaluate", str(point_nav_run), "--trials", "8", "--episodes-per-trial", "4", "--task-switches", "1",
                     "--no-progress", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["around_switch"]["offsets"] == list(SWITCH_OFFSETS) and sum(result["around_switch"]["trials"]) > 0
    assert "around the first unannounced task switch" in capsys.readouterr().out


def test_evaluate_says_which_checkpoint_how_many_trials_and_which_actions(point_nav_run: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["evaluate", str(point_nav_run), "--trials", "6", "--deterministic", "--no-progress",
                     "--out", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert f"evaluating {(point_nav_run / 'checkpoints' / 'last.pt').resolve()} (update " in out
    assert "protocol rl2: 6 trials per task class of 2 attempts" in out
    assert "deterministic actions (the policy mean)" in out
    assert cli.main(["evaluate", str(point_nav_run), "--trials", "6", "--no-progress", "--out", str(tmp_path / "s.json")]) == 0
    assert "sampled actions" in capsys.readouterr().out
