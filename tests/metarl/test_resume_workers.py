"""Resuming on another machine: a run stopped with one env-worker count continues with another.

Every update plays whole fresh trials (tasks from the checkpointed sampler, resets seeded per
trial), so nothing of the env processes' state crosses an update: the resumed run equals the
uninterrupted one bit for bit, whatever the number of workers on either side.
"""

from __future__ import annotations

import csv

import pytest
import torch

from metarl import train as train_mod
from metarl.checkpoint import load_checkpoint
from metarl.config import load_config
from metarl.train import resume_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ML1/reach-v3, 2 envs x (2 attempts x 20 steps) = 80 env steps per update.
ML1 = [
    "env.benchmark=ML1/reach-v3", "env.num_envs=2", "env.episodes_per_trial=2", "env.max_episode_steps=20",
    "env.eval_num_envs=2", "agent.cell=gru", "agent.hidden_size=16", "agent.encoder_sizes=[16]",
    "ppo.bptt_len=20", "ppo.epochs=1", "ppo.num_minibatches=1", "ppo.lr_schedule=linear", "total_steps=320",
    "eval_interval=2", "progress=false", "tensorboard=false", "device=cpu", "torch_threads=1",
]


def _rows(run) -> list[dict]:
    return list(csv.DictReader(open(run / "metrics.csv")))


def test_resume_with_another_worker_count_continues_the_same_run_bit_for_bit(tmp_path):
    full, moved = tmp_path / "full", tmp_path / "moved"
    train_mod.train(load_config(None, ML1 + ["env.workers=2"]), full)  # 4 updates, 2 worker processes
    # The same run stopped after 2 updates on a "machine" with 2 workers ...
    assert train_mod.train(load_config(None, ML1 + ["env.workers=2", "max_updates=2"]), moved).updates == 2
    # ... and continued on one that steps its envs in-process.
    cfg = resume_config(moved, ["env.workers=0", "max_updates=0"])
    assert cfg.env.workers == 0
    train_mod.train(cfg, moved, resume=True)
    a, b = load_checkpoint(full), load_checkpoint(moved)
    assert a["counters"]["update"] == b["counters"]["update"] == 4
    assert a["counters"]["env_steps"] == b["counters"]["env_steps"] == 320
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["obs_normalizer"]["rms"]["mean"], b["obs_normalizer"]["rms"]["mean"])
    ra, rb = _rows(full), _rows(moved)
    assert [r["update"] for r in rb] == ["1", "2", "3", "4"]  # rows continue, none repeated
    same = [c for c in ra[0] if c.startswith(("losses/", "charts/success", "charts/return", "eval/"))]
    for x, y in zip(ra, rb):
        assert [x[c] for c in same] == [y[c] for c in same]
    assert b["config"]["env"]["workers"] == 0  # the checkpoint records the machine it last ran on
