"""`metarl plot` on switching trials: the memory picture with the switch marked where the env said so."""

from __future__ import annotations

import matplotlib.axes
import numpy as np
import pytest
import torch

from metarl.agent import Agent
from metarl.agents import AgentConfig, make_policy
from metarl.diagnostics import trace_memory
from metarl.envs import make_env
from metarl.plot import plot_memory, switch_marks

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------- the memory picture of a switching trial


def _switch_attempts_of_env(seed: int, episodes_per_trial: int) -> list[int]:
    """Attempts whose info said ``task_switched``, in a trial the env plays from ``reset(seed=seed)``."""
    env = make_env("point-nav", split="test", episodes_per_trial=episodes_per_trial, task_switches=1)
    obs, info = env.reset(seed=seed)
    switched = set()
    while True:
        obs, _, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
        if info["task_switched"]:
            switched.add(int(info["attempt"]))
        if info["trial_end"]:
            return sorted(switched)
        if terminated or truncated:
            obs, info = env.reset()


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
