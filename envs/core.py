"""What a benchmark provides to the trial env: task sets and per-class cores.

A *core* is one plain environment of one task class whose goal can be set:
``set_goal(goal)``, ``reset() -> obs``, ``step(action) -> (obs, reward,
success)``. It knows nothing about trials; ``metarl.envs.trial.TrialEnv``
adds attempts, flags and task sampling on top. Keeping cores this small lets
Meta-World and the toy tasks share all trial and vector logic.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class TaskSet:
    """The tasks of one benchmark split.

    ``classes[task_id]`` is a class name; ``goals[name]`` the list of that
    class's goals (Meta-World ``Task`` objects or toy parameters). A task is
    a (class, goal) pair. Picklable, so vector workers get it with their
    arguments instead of rebuilding the benchmark.
    """

    benchmark: str
    split: str
    classes: tuple[str, ...]
    goals: dict[str, list[Any]]


class Core(abc.ABC):
    """One environment of one task class; the goal is set from outside."""

    observation_space: gym.spaces.Box
    action_space: gym.spaces.Box

    @abc.abstractmethod
    def set_goal(self, goal: Any) -> None:
        """Use ``goal`` from the next ``reset`` on."""

    @abc.abstractmethod
    def reset(self, rng: np.random.Generator) -> np.ndarray:
        """Start an episode; ``rng`` is the trial env's own generator."""

    @abc.abstractmethod
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Advance one step: (observation, reward, success at this step)."""

    def render(self) -> np.ndarray | None:
        return None

    def close(self) -> None:
        pass


class BenchmarkSpec(abc.ABC):
    """A named benchmark: its splits' classes, goals and per-class cores."""

    name: str
    default_episodes_per_trial: int
    default_max_episode_steps: int
    default_reward_scale: float
    max_episode_steps_limit: int | None = None  # longest episode the cores support
    # Toy cores step in microseconds: worker IPC would cost more than it saves.
    in_process: bool = False

    @abc.abstractmethod
    def classes(self, split: str) -> tuple[str, ...]:
        """Class names of ``split`` (cheap: builds no goals)."""

    @abc.abstractmethod
    def task_set(self, split: str) -> TaskSet:
        """Classes and goals of ``split``."""

    @abc.abstractmethod
    def observation_space(self) -> gym.spaces.Box:
        """The core observation space, the same for every class of the benchmark."""

    @abc.abstractmethod
    def action_space(self) -> gym.spaces.Box:
        """The action space, the same for every class."""

    def task_vector(self, class_name: str, goal: Any) -> np.ndarray:
        """The hidden parameters of one goal as a float vector (for task-inference losses).

        Training may use it as a target; the policy never sees it."""
        raise ValueError(f"benchmark {self.name!r} defines no task vectors")

    def step_cost(self, class_name: str) -> float:
        """Relative cost of one step of ``class_name`` (balances vector workers)."""
        return 1.0

    @abc.abstractmethod
    def make_core(
        self,
        class_name: str,
        *,
        max_episode_steps: int,
        render_mode: str | None = None,
        camera: str | None = None,
    ) -> Core:
        """Build the core environment of one class."""


def resolve_task(task_set: TaskSet, task: Any) -> tuple[int, int]:
    """(class index, goal index) of ``task`` = (class name or index, goal index); one-line ValueError if invalid."""
    classes = task_set.classes
    if not isinstance(task, (tuple, list)) or len(task) != 2:
        raise ValueError(f"task must be a (class, goal index) pair, got {task!r}")
    cls, goal = task
    if isinstance(cls, str):
        if cls not in classes:
            raise ValueError(f"unknown task class {cls!r} in {task_set.benchmark}/{task_set.split}; "
                             f"valid: {', '.join(classes)}")
        c = classes.index(cls)
    elif isinstance(cls, (int, np.integer)) and not isinstance(cls, bool) and 0 <= cls < len(classes):
        c = int(cls)
    else:
        raise ValueError(f"task class must be a name or an index in [0, {len(classes)}), got {cls!r}; "
                         f"valid: {', '.join(classes)}")
    n = len(task_set.goals[classes[c]])
    if isinstance(goal, bool) or not isinstance(goal, (int, np.integer)) or not 0 <= goal < n:
        raise ValueError(f"goal index must be an integer in [0, {n}) for class {classes[c]!r}, got {goal!r}")
    return c, int(goal)
