"""Data-parallel training: 2 gloo processes under torchrun keep identical parameters and resume exactly."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metarl.checkpoint import load_agent, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SETS = [
    "env.benchmark=bandit", "env.num_envs=4", "env.episodes_per_trial=10", "env.max_episode_steps=1",
    "env.workers=0", "agent.cell=forget-memory", "agent.hidden_size=16", "agent.encoder_sizes=[16]",
    "ppo.bptt_len=0", "ppo.epochs=2", "total_steps=240", "eval_interval=0", "progress=false",
    "tensorboard=false", "device=cpu", "torch_threads=1",
]


def _torchrun(*args: str) -> None:
    """``torchrun --nproc_per_node 2 -m metarl train ARGS`` (gloo on CPU)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "metarl", "train", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "terminate called without an active exception" in proc.stderr:
        # Known, rare (1 of 5 CI-like runs, 2026-12-01): a rank aborts in C++ teardown after a
        # max_updates stop. Not understood yet; the launch is repeated once (a fresh run from a clean
        # run dir; a resume from its last checkpoint) so the assertions below still test the resume.
        if "--run-dir" in args:
            shutil.rmtree(Path(args[args.index("--run-dir") + 1]), ignore_errors=True)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _sets(extra: tuple[str, ...] = ()) -> list[str]:
    return [x for s in [*SETS, *extra] for x in ("--set", s)]


def test_two_gloo_ranks_train_and_keep_parameters_identical(tmp_path):
    _torchrun(*_sets(), "--run-dir", str(tmp_path))
    state = load_checkpoint(tmp_path)
    c = state["counters"]
    # 2 ranks x 4 envs x 10-step trials = 80 env steps per update.
    assert c["update"] == 3 and c["env_steps"] == 240
    assert c["rank_param_max_diff"] == 0.0
    assert len(state["rng"]) == 2  # every rank's RNG is saved for an exact resume
    assert not state["rng"][0]["torch"].equal(state["rng"][1]["torch"])  # ranks sample independently
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4  # only rank 0 writes: header + one row per update
    load_agent(tmp_path)  # strict load: the checkpoint holds the plain policy's keys, not DDP's "module."


@pytest.mark.slow  # three torchrun launches: ~1 min on 2 loaded cores
def test_two_gloo_ranks_resume_exactly(tmp_path):
    """A run stopped after 1 of 3 updates and resumed under torchrun ends with the uninterrupted run's parameters."""
    full, half = tmp_path / "full", tmp_path / "half"
    _torchrun(*_sets(), "--run-dir", str(full))
    _torchrun(*_sets(("max_updates=1",)), "--run-dir", str(half))
    assert load_checkpoint(half)["counters"]["update"] == 1
    _torchrun("--resume", str(half), "--set", "max_updates=0")
    a, b = load_checkpoint(full), load_checkpoint(half)
    assert b["counters"]["update"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
