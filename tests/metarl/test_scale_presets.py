"""The ML10 and ML45 presets hold at their scale (slow: builds 15 and 50 task classes).

Each preset trains one short update with its own batch (40 envs over ML10's 10
training classes, 45 over ML45's 45: every class in one batch) and its own
learner (forget-memory 128, 4 epochs), only with short attempts, then its final
checkpoint is evaluated on the 5 held-out classes and on the training classes.
"""

from pathlib import Path

import numpy as np
import pytest

from metarl.checkpoint import load_agent
from metarl.config import load_config
from metarl.envs import tasks
from metarl.evaluate import evaluate_agent
from metarl.runs import read_metrics
from metarl.train import train

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHORT = ["progress=false", "tensorboard=false", "device=cpu", "eval_interval=0", "env.workers=0",
         "env.episodes_per_trial=2", "env.max_episode_steps=10"]


@pytest.mark.parametrize("preset, classes", [("ml10", 10), ("ml45", 45)])
def test_preset_trains_one_update_on_every_class_and_evaluates_held_out(tmp_path: Path, preset: str,
                                                                        classes: int) -> None:
    base = load_config(CONFIGS / f"{preset}.yaml")
    per_update = base.env.num_envs * 2 * 10
    cfg = load_config(CONFIGS / f"{preset}.yaml", SHORT + [f"total_steps={per_update}"])
    assert cfg.env.num_envs >= classes and cfg.agent.cell == "forget-memory"
    train(cfg, tmp_path / preset)

    metrics = read_metrics(tmp_path / preset / "metrics.csv")
    assert metrics["env_steps"].tolist() == [per_update]
    assert np.isfinite(metrics["losses/policy_loss"]).all()

    agent = load_agent(tmp_path / preset)
    held_out = evaluate_agent(agent, split="test", trials=5, deterministic=True, workers=0)
    assert set(held_out["tasks"]) == set(tasks(cfg.env.benchmark, "test"))
    assert len(held_out["tasks"]) == 5
    assert not set(held_out["tasks"]) & set(tasks(cfg.env.benchmark, "train"))
    assert all(0.0 <= t["success_by_attempt"][-1] <= 1.0 for t in held_out["tasks"].values())

    trained_on = evaluate_agent(agent, split="train", trials=classes, deterministic=True, workers=0)
    assert set(trained_on["tasks"]) == set(tasks(cfg.env.benchmark, "train"))
    assert len(trained_on["tasks"]) == classes
