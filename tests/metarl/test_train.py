"""``metarl train`` end to end: resume equality, a short Meta-World run, errors, NaN stop."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metarl import train as train_mod
from metarl.checkpoint import load_agent, load_checkpoint
from metarl.cli import main
from metarl.config import load_config
from metarl.envs import TRIAL_START, make_vec
from metarl.ppo import NonFiniteError

ROOT = Path(__file__).resolve().parents[2]

# point-nav, 4 envs x one 40-step trial (2 attempts x 20 steps) = 160 env steps per update.
TOY = [
    "env.benchmark=point-nav", "env.num_envs=4", "env.episodes_per_trial=2", "env.max_episode_steps=20", "env.workers=0",
    "agent.cell=forget-memory", "agent.hidden_size=16", "agent.encoder_sizes=[16]",
    "ppo.bptt_len=20", "ppo.epochs=2", "eval_interval=2", "progress=false", "tensorboard=false",
    "device=cpu", "torch_threads=1",
]
STEPS = 160


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "metarl", "train", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_resume_in_new_process_gives_identical_parameters(tmp_path):
    full, half = tmp_path / "full", tmp_path / "half"
    base = TOY + ["ppo.lr_schedule=linear", f"total_steps={4 * STEPS}"]
    train_mod.train(load_config(None, base), full)  # 4 updates in one go
    # Same config stopped after 2 of 4 updates (max_updates is no part of any schedule) ...
    assert train_mod.train(load_config(None, base + ["max_updates=2"]), half).updates == 2
    assert load_checkpoint(half)["counters"]["update"] == 2
    # ... and resumed in a new process for the other 2.
    _cli("--resume", str(half), "--set", "max_updates=0")
    a, b = load_checkpoint(full), load_checkpoint(half)
    assert b["counters"]["update"] == 4 and b["counters"]["env_steps"] == 4 * STEPS
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["obs_normalizer"]["rms"]["mean"], b["obs_normalizer"]["rms"]["mean"])
    rows_a = (full / "metrics.csv").read_text().splitlines()
    rows_b = (half / "metrics.csv").read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 5
    losses = [i for i, c in enumerate(rows_a[0].split(",")) if c.startswith("losses/")]
    for ra, rb in zip(rows_a[1:], rows_b[1:]):
        assert [ra.split(",")[i] for i in losses] == [rb.split(",")[i] for i in losses]
    wall = [float(r.split(",")[2]) for r in rows_b[1:]]  # the wall clock continues across the resume
    assert wall == sorted(wall) and wall[2] > wall[1] > 0, wall


def test_short_ml1_reach_run_writes_all_outputs_and_its_agent_evaluates(tmp_path):
    cfg = load_config(None, [
        "env.benchmark=ML1/reach-v3", "env.num_envs=2", "env.episodes_per_trial=2", "env.max_episode_steps=50",
        "env.workers=0", "env.eval_num_envs=2", "agent.cell=gru", "agent.hidden_size=16", "agent.encoder_sizes=[16]",
        "ppo.bptt_len=50", "ppo.epochs=1", "ppo.num_minibatches=1", "total_steps=2000", "eval_interval=5",
        "save_interval=5", "progress=false", "device=cpu",
    ])
    result = train_mod.train(cfg, tmp_path)
    assert result.updates == 10 and result.env_steps == 2000 and not result.interrupted
    names = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert {"last.pt", "best.pt", "step_1000.pt", "step_2000.pt"} <= names
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert load_config(tmp_path / "config.yaml") == cfg
    header, *rows = (tmp_path / "metrics.csv").read_text().splitlines()
    cols = header.split(",")
    assert cols[:3] == ["env_steps", "update", "wall_time"] and len(rows) == 10
    for c in ["charts/success_attempt_2", "charts/return_attempt_1", "charts/sps", "losses/value_loss", "eval/success", "eval/return_attempt_2"]:
        assert c in cols, c
    ev = cols.index("eval/success")
    assert [r.split(",")[ev] != "" for r in rows] == [u % 5 == 0 for u in range(1, 11)]

    agent = load_agent(tmp_path)
    assert agent.config.env.benchmark == "ML1/reach-v3"
    envs = make_vec("ML1/reach-v3", split="test", num_envs=2, episodes_per_trial=2, max_episode_steps=50, workers=0)
    obs, _ = envs.reset(seed=0)
    state = agent.initial_state(2)
    for _ in range(envs.trial_length):
        action, state = agent.act(obs, state)
        assert action.shape == (2, 4) and np.abs(action).max() <= 1.0
        obs, *_ = envs.step(action)
    assert (obs[:, TRIAL_START] == 1).all()  # a new trial started after exactly one trial
    envs.close()


def _one_line_error(argv, capsys, needle):
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err
    return err


def test_cli_errors_are_one_line(tmp_path, capsys):
    _one_line_error(["--set", "env.num_env=3"], capsys, "'env.num_envs'")
    _one_line_error(["--set", "seed=x"], capsys, "seed")
    _one_line_error(["--set", "agent.cell=forget-memroy", "--run-dir", str(tmp_path / "a")], capsys, "forget-memory")
    _one_line_error(["--set", "env.benchmark=point-navv", "--run-dir", str(tmp_path / "b")], capsys, "point-nav")
    _one_line_error(["--resume", str(tmp_path / "missing")], capsys, "not found")
    (tmp_path / "foreign").mkdir()
    _one_line_error(["--resume", str(tmp_path / "foreign")], capsys, "not a metarl run directory")
    _one_line_error([str(tmp_path / "nope.yaml")], capsys, "nope.yaml")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


class _NanReward:
    """A vector env that returns a NaN reward at one step of its second trial."""

    def __init__(self, envs, at: int):
        self.envs, self.at, self.calls = envs, at, 0

    def __getattr__(self, name):
        return getattr(self.envs, name)

    def step(self, actions):
        obs, r, term, trunc, info = self.envs.step(actions)
        self.calls += 1
        if self.calls == self.at:
            r = r.copy()
            r[1] = np.nan
        return obs, r, term, trunc, info


def test_nan_reward_stops_with_source_and_step_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    real = train_mod._make_envs_deferring_sigint
    monkeypatch.setattr(train_mod, "_make_envs_deferring_sigint", lambda c, s, n, **kw: _NanReward(real(c, s, n, **kw), at=45))
    cfg = load_config(None, TOY + [f"total_steps={4 * STEPS}", "eval_interval=0"])
    with pytest.raises(NonFiniteError, match=r"non-finite reward at env step 176 \(env 1\)"):
        train_mod.train(cfg, tmp_path)
    state = load_checkpoint(tmp_path)  # written after update 1, still intact
    assert state["counters"]["update"] == 1
    assert load_agent(tmp_path).config.env.benchmark == "point-nav"


@pytest.mark.slow  # two process starts and a wait for the first update: ~1 min on 2 loaded cores
def test_ctrl_c_saves_a_checkpoint_exits_cleanly_and_resume_continues(tmp_path):
    import signal
    import time

    sets = [x for s in TOY + [f"total_steps={200 * STEPS}"] for x in ("--set", s)]
    proc = subprocess.Popen([sys.executable, "-m", "metarl", "train", *sets, "--run-dir", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "metrics.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:  # one update done
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in out
    done = load_checkpoint(tmp_path)["counters"]["update"]
    assert 1 <= done < 200
    _cli("--resume", str(tmp_path), "--set", f"max_updates={done + 1}")
    assert load_checkpoint(tmp_path)["counters"]["update"] == done + 1
    assert len(metrics.read_text().splitlines()) == done + 2  # header + one row per update, none duplicated


def test_ctrl_c_while_envs_are_built_is_delivered_afterwards(monkeypatch):
    """Building envs blocks SIGINT (their workers must not get it); a Ctrl-C meanwhile still stops the run."""
    import signal
    import threading

    def build(*args):
        # "Ctrl-C" in the middle of the build, aimed at this thread: a signal sent to the
        # process may land on any other thread (torch's, gloo's) that does not block it
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        return "envs"

    monkeypatch.setattr(train_mod, "make_envs", build)
    stop = train_mod.StopFlag()
    stop.install()
    try:
        assert train_mod._make_envs_deferring_sigint(None, "train", 2) == "envs"
        assert stop(), "the Ctrl-C during the build was lost"
    finally:
        stop.uninstall()


def test_pipelined_collection_trains_like_sequential(tmp_path, monkeypatch):
    """``env.collect_groups=2`` reaches ``collect`` and gives the same run up to matmul rounding."""
    seen = []
    real_collect = train_mod.collect

    def spy(*args, **kwargs):
        seen.append(kwargs.get("groups", 1))
        return real_collect(*args, **kwargs)

    monkeypatch.setattr(train_mod, "collect", spy)
    base = TOY + [f"total_steps={2 * STEPS}"]
    train_mod.train(load_config(None, base), tmp_path / "seq")
    train_mod.train(load_config(None, base + ["env.collect_groups=2"]), tmp_path / "pipe")
    assert seen == [1, 1, 2, 2]
    a, b = load_checkpoint(tmp_path / "seq"), load_checkpoint(tmp_path / "pipe")
    assert b["config"]["env"]["collect_groups"] == 2
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5, msg=k)


def test_training_envs_start_no_trial_that_collect_would_discard(tmp_path, monkeypatch):
    """The trainer's envs wait for collect's reset at each trial end; evaluation's autoreset (several trials)."""
    seen = []
    real = train_mod.make_envs

    def spy(env_cfg, split, num_envs, **kwargs):
        envs = real(env_cfg, split, num_envs, **kwargs)
        seen.append((split, envs.trial_autoreset))
        return envs

    monkeypatch.setattr(train_mod, "make_envs", spy)
    train_mod.train(load_config(None, TOY + [f"total_steps={2 * STEPS}"]), tmp_path / "run")
    assert seen == [("train", False), ("test", True)]


def test_env_spin_reaches_the_vector_env(monkeypatch):
    import metarl.envs
    from metarl.rollout import make_envs

    seen = {}
    monkeypatch.setattr(metarl.envs, "make_vec", lambda benchmark, **kw: seen.update(kw))
    make_envs(load_config(None, ["env.spin=0.01"]).env, "train", 2)
    assert seen["spin"] == 0.01


def test_cuda_graph_flag_reaches_collect_and_trains_identically_on_cpu(tmp_path, monkeypatch):
    """``cuda_graph=true`` routes steps through a PolicyStepper (eager on CPU): same parameters."""
    seen = []
    real_collect = train_mod.collect

    def spy(*args, **kwargs):
        seen.append(type(kwargs.get("stepper")).__name__)
        return real_collect(*args, **kwargs)

    monkeypatch.setattr(train_mod, "collect", spy)
    base = TOY + [f"total_steps={2 * STEPS}"]
    train_mod.train(load_config(None, base), tmp_path / "plain")
    train_mod.train(load_config(None, base + ["cuda_graph=true"]), tmp_path / "graph")
    assert seen == ["NoneType", "NoneType", "PolicyStepper", "PolicyStepper"]
    a, b = load_checkpoint(tmp_path / "plain"), load_checkpoint(tmp_path / "graph")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


# bandit, 4 envs x one trial of 10 one-step attempts = 40 env steps per update.
BANDIT = [
    "env.num_envs=4", "env.workers=0", "env.eval_num_envs=3", "env.eval_trials=2", "agent.hidden_size=16",
    "agent.encoder_sizes=[16]", "ppo.epochs=1", "eval_interval=2", "progress=false", "tensorboard=false",
    "device=cpu", "torch_threads=1",
]


def test_train_cli_banner_summary_and_next_commands(tmp_path, capsys, monkeypatch):
    import shlex

    from metarl.cli import build_parser
    from metarl.logger import Progress

    seen = []
    real_update = Progress.update

    def spy(self, steps, **kw):
        seen.append(kw)
        return real_update(self, steps, **kw)

    monkeypatch.setattr(Progress, "update", spy)
    run = tmp_path / "run"
    sets = [x for s in BANDIT + ["total_steps=2e2"] for x in ("--set", s)]  # 200 steps = 5 updates
    assert main(["train", "bandit", *sets, "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    banner, summary = out.split("\ndone: ")
    assert banner.startswith("metarl train: preset bandit (") and f"{ROOT / 'configs' / 'bandit.yaml'}" in banner
    assert "benchmark bandit, cell forget-memory (hidden 16), device cpu" in banner
    assert "4 envs x trial of 10 attempts x 1 step (benchmark default) = 40 env steps per update" in banner
    assert "total: 200 env steps = 5 updates" in banner
    assert "6 trials of the test split" in banner
    assert f"run dir: {run.resolve()}" in banner
    assert summary.startswith(f"{run.resolve()} (5 of 5 updates, 200 env steps)")
    assert "held-out (test split) success by attempt: 1: " in summary and "  10: " in summary
    assert "from 6 trials (3 envs x 2 trials) at update 5, deterministic actions" in summary
    commands = [line.strip() for line in summary.splitlines() if line.startswith("  metarl ")]
    q = shlex.quote(str(run.resolve()))
    assert commands == [f"metarl evaluate {q} --deterministic", f"metarl plot {q} --out {q}/plots"]
    assert "no `metarl record`: bandit has no renderer" in summary  # bandit draws no frames
    for command in commands:  # every printed command parses with the real flags
        build_parser().parse_args(shlex.split(command)[1:])
    assert main(shlex.split(commands[0])[1:] + ["--trials", "2", "--no-progress"]) == 0
    # the progress bar got the training success every update and the held-out one after the first eval
    assert [kw["held_out_success"] is None for kw in seen] == [True, False, False, False, False]
    assert all(isinstance(kw["train_success"], float) for kw in seen)

    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--set", "total_steps=240"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"metarl train: resuming {run.resolve()} with --set total_steps=240")
    assert "resuming at update 5 (200 env steps)" in out and f"done: {run.resolve()} (6 of 6 updates" in out


def test_summary_offers_a_recording_with_a_valid_task_and_a_resume_when_stopped(tmp_path):
    import shlex

    from metarl.cli import build_parser
    from metarl.train_cli import summary

    cfg = load_config(None, TOY + [f"total_steps={4 * STEPS}", "max_updates=2"])
    text = summary(train_mod.TrainResult(tmp_path, 2, 2 * STEPS, False, {}), cfg)
    q = shlex.quote(str(tmp_path.resolve()))
    assert text.startswith(f"stopped: {tmp_path.resolve()} (2 of 4 updates, 320 env steps)")
    assert "no evaluation" in text
    commands = [line.strip() for line in text.splitlines() if line.startswith("  metarl ")]
    assert commands[0] == f"metarl train --resume {q} --set max_updates=0"
    assert commands[-1] == f"metarl record {q} --task point-nav --out {q}/trial.mp4"
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])


def test_banner_uses_benchmark_defaults_and_rounds_up_to_whole_updates(tmp_path):
    from metarl.train_cli import banner

    cfg = load_config(None, ["env.benchmark=ML1/reach-v3", "env.num_envs=2", "total_steps=15000", "device=cpu"])
    text = banner(cfg, "config x.yaml", tmp_path)
    assert "2 envs x trial of 10 attempts x 500 steps (benchmark defaults) = 10,000 env steps per update" in text
    assert "total: 2 updates = 20,000 env steps (total_steps 15,000 rounded up to whole updates)" in text
    assert "held-out eval every 10 updates and at the end: 2 trials of the test split" in text


def test_train_presets_by_name_and_their_errors(capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ["bandit", "ml1_reach", "ml10", "point_nav"]:
        assert name in help_text
    assert "agent.kind=KIND picks the learner (metarl, sb3-ppo, sb3-recurrent-ppo; default metarl)" in help_text
    err = _one_line_error(["ml1_rech"], capsys, "did you mean preset 'ml1_reach'?")
    assert "presets: bandit, ml10, ml1_pick_place" in err
    # a preset name is found from any working directory: it loads (then the typo'd cell stops it)
    monkeypatch.chdir(tmp_path)
    _one_line_error(["ml1_reach", "--set", "agent.cell=forget-memroy"], capsys, "forget-memory")
    assert not (tmp_path / "runs").exists()


def test_progress_bar_shows_one_labelled_speed_eta_and_both_successes():
    import io

    from metarl.logger import Progress

    p = Progress(1000, file=io.StringIO())
    p.update(100, train_success=0.5, held_out_success=None)
    text = str(p.bar)
    assert "100/1.00k env steps" in text and "ETA" in text and "train success 0.50" in text
    assert "held-out" not in text and "sps" not in text and "step/s" not in text.replace("env steps/s", "")
    assert text.count("/s") == 1 and "env steps/s" in text
    p.update(100, train_success=0.25, held_out_success=0.75)
    assert "train success 0.25, held-out success 0.75" in str(p.bar)
    p.close()


def test_config_yaml_says_the_episodes_per_trial_played_and_old_run_dirs_still_load(tmp_path):
    """``env.episodes_per_trial: null`` (benchmark default) is written as the number the envs
    play; the checkpoint keeps the config as given, so resume is unchanged; a run dir written
    before (null in config.yaml) still loads, resumes and plots as a seed of the same config."""
    import shutil

    import yaml

    from metarl.runs import group_runs, load_run

    sets = ["env.benchmark=bandit", "env.num_envs=2", "env.workers=0", "agent.hidden_size=8", "agent.encoder_sizes=[8]",
            "total_steps=40", "progress=false", "tensorboard=false", "device=cpu", "torch_threads=1"]
    cfg = load_config(None, sets)
    assert cfg.env.episodes_per_trial is None
    new = tmp_path / "new"
    train_mod.train(cfg, new)
    assert yaml.safe_load((new / "config.yaml").read_text())["env"]["episodes_per_trial"] == 10  # bandit's default
    assert load_checkpoint(new)["config"]["env"]["episodes_per_trial"] is None
    old = tmp_path / "old"  # the same run as an older version wrote it, and seed 2 of it
    shutil.copytree(new, old)
    text = (new / "config.yaml").read_text().replace("episodes_per_trial: 10\n", "episodes_per_trial: null\n")
    (old / "config.yaml").write_text(text.replace("seed: 1\n", "seed: 2\n", 1))
    assert load_config(old / "config.yaml").env.episodes_per_trial is None
    assert load_agent(old).config.env.episodes_per_trial is None
    assert len(group_runs([load_run(new), load_run(old)])) == 1  # seeds of one config
    result = train_mod.train(train_mod.resume_config(old, ["total_steps=80"]), old, resume=True)
    assert result.updates == 4 and yaml.safe_load((old / "config.yaml").read_text())["env"]["episodes_per_trial"] == 10
