"""Toy meta-RL tasks for fast CPU work: ``point-nav`` and ``bandit`` (and their variants).

Both play RL² trials through the same ``TrialEnv`` as Meta-World, step in
microseconds (they run in-process in ``make_vec``), and reward memory: the
task is hidden, so only a policy that remembers earlier attempts of the
trial can do better on later ones.

point-nav
    A point robot starts each attempt at the origin; the goal lies on the
    upper half of the unit circle at a hidden angle. Observation: position
    (2,). Action (2,) in [-1, 1] moves the point by ``0.1 * action``. Reward
    ``-distance`` to the goal (dense); success while within 0.15 of it.
    Episodes last 20 steps; 10 steps reach the circle from the origin.
    Splits: 50 train and 50 test goal angles, uniform on [0, pi], drawn with
    different fixed seeds (unseen goals from the same distribution, like
    Meta-World's ML1). An earlier version put train and test goals in
    alternating sectors of the half circle; agents then learned the four
    train sectors and walked away from test goals on later attempts.
    Caveat of any dense distance reward: (position, previous reward) pins
    the goal to two points, so a memoryless
    policy could still home in within an attempt; what it cannot do is start
    later attempts any better than the first.

point-nav-sparse
    point-nav with a sparse reward: 1 while within 0.2 of the goal, else 0
    (success the same), and 40-step attempts, long enough to reach the circle
    (10 steps) and sweep most of the half circle along it. Nothing tells the
    policy where the goal is until it gets there, so a memory of where the
    reward was is worth more here, and after an unannounced goal switch the
    remembered goal misleads for a whole fruitless visit, not only for the
    first steps of an attempt as with the dense reward.

point-reach
    Meta-World reach-v3's task on a point: a 3-D "hand" starts each attempt
    at reach's ``hand_init_pos`` (0, 0.6, 0.2); the hidden goal lies in
    reach's goal box x -0.1..0.1, y 0.8..0.9, z 0.05..0.3. Action (3,) in
    [-1, 1] moves the hand by ``0.01 * action`` (Meta-World's mocap scale,
    without its lag), clipped to reach's hand bounds. Reward: reach-v3's v2
    reward, ``10 * tolerance(distance, (0, 0.05), margin=|start - goal|,
    long_tail)``, in [0, 10]; success within 0.05. Observation: the hand
    position (3,); ``point-reach-visible`` appends the goal (6,), the bound
    an agent that infers the goal can approach (like ``MT1/reach-v3`` for
    ``ML1/reach-v3``). Attempts of 500 steps, 10 per trial, like ML1. It has
    no physics and steps many times faster (README, "Measured"), so learning
    problems of ML1/reach-v3 that are not about physics show up here cheaply.

bandit
    A 5-armed Bernoulli bandit with hidden arm probabilities. One pull per
    attempt by default (``max_episode_steps=1``), so a trial is
    ``episodes_per_trial`` pulls. Observation: a constant 0 (1,). Action (5,)
    in [-1, 1]: the pulled arm is its argmax. Reward 1 with the arm's
    probability; success when the best arm is pulled. Splits: 50 train and
    50 test tasks, arm probabilities uniform in [0, 1], drawn with different
    fixed seeds (unseen tasks, same distribution, like ML1).

bandit-onehot
    The bandit with one good arm: it pays with probability 0.9, the other four
    with 0.1; each task is which arm is good (the 50 tasks of a split repeat
    the 5 arm choices, each 10 times, in an order drawn per split: held out
    means unseen draws, not unseen arms). Finding the good arm takes a few
    pulls and one missing reward is strong evidence that it stopped being
    good, so after an unannounced switch a memory that keeps pulling the
    remembered arm loses every pull until it lets the old evidence go. (With ``bandit``'s uniform
    probabilities even an agent told of the switch gains almost nothing by
    forgetting: ``experiments/bandit_ceiling.py``.)
"""

from __future__ import annotations

import abc
import math
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.core import BenchmarkSpec, Core, TaskSet

NUM_GOALS = 50  # per split, as in Meta-World


class _ToyBenchmark(BenchmarkSpec):
    """Shared parts: one class named after the benchmark, goals from fixed seeds."""

    default_reward_scale = 1.0
    in_process = True

    def classes(self, split: str) -> tuple[str, ...]:
        return (self.name,)

    def task_set(self, split: str) -> TaskSet:
        rng = np.random.default_rng({"train": 0, "test": 1}[split])
        return TaskSet(self.name, split, (self.name,), {self.name: self._goals(split, rng)})

    @abc.abstractmethod
    def _goals(self, split: str, rng: np.random.Generator) -> list[Any]:
        """The split's goals, drawn with ``rng`` (seeded per split)."""


# ---------------------------------------------------------------- point-nav


class PointNavBenchmark(_ToyBenchmark):
    """2-D point robot, goal hidden on the upper half circle (see module doc)."""

    name = "point-nav"
    default_episodes_per_trial = 4
    default_max_episode_steps = 20

    def _goals(self, split: str, rng: np.random.Generator) -> list[Any]:
        return [float(a) for a in rng.uniform(0.0, math.pi, NUM_GOALS)]

    def task_vector(self, class_name: str, goal: Any) -> np.ndarray:
        return np.array([math.cos(goal), math.sin(goal)])  # the goal's position

    def observation_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-PointNavCore.BOUND, PointNavCore.BOUND, (2,), dtype=np.float32)

    def action_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def make_core(self, class_name, *, max_episode_steps, render_mode=None, camera=None) -> Core:
        return PointNavCore(render_mode)


class PointNavSparseBenchmark(PointNavBenchmark):
    """point-nav whose reward is 1 only near the goal (see module doc)."""

    name = "point-nav-sparse"
    default_max_episode_steps = 40

    def make_core(self, class_name, *, max_episode_steps, render_mode=None, camera=None) -> Core:
        return PointNavCore(render_mode, sparse=True)


class PointNavCore(Core):
    """The point robot; the goal is an angle on the unit half circle. Reward ``-distance``, or
    with ``sparse`` 1 within ``SPARSE_RADIUS`` of the goal and 0 elsewhere."""

    BOUND = 2.0
    STEP = 0.1
    SUCCESS_RADIUS = 0.15
    SPARSE_RADIUS = 0.2

    def __init__(self, render_mode: str | None = None, sparse: bool = False) -> None:
        self.render_mode = render_mode
        self.sparse = sparse
        self.goal = np.zeros(2)
        self.pos = np.zeros(2)

    def set_goal(self, goal: Any) -> None:
        self.goal = np.array([math.cos(goal), math.sin(goal)])

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        self.pos = np.zeros(2)
        return self.pos.copy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        self.pos = np.clip(self.pos + self.STEP * action[:2], -self.BOUND, self.BOUND)
        dist = float(np.hypot(*(self.pos - self.goal)))
        if self.sparse:
            near = dist < self.SPARSE_RADIUS
            return self.pos.copy(), float(near), near
        return self.pos.copy(), -dist, dist < self.SUCCESS_RADIUS

    def render(self) -> np.ndarray | None:
        """A 64x64 top view: goal green, point red (for quick videos)."""
        if self.render_mode != "rgb_array":
            return None
        img = np.full((64, 64, 3), 255, dtype=np.uint8)

        def pix(p: np.ndarray) -> tuple[int, int]:
            x = int((p[0] + 1.2) / 2.4 * 63)
            y = int((1.2 - p[1]) / 1.6 * 63)
            return min(max(y, 0), 63), min(max(x, 0), 63)

        for p, colour in ((self.goal, (0, 160, 0)), (self.pos, (220, 0, 0))):
            r, c = pix(p)
            img[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3] = colour
        return img


# -------------------------------------------------------------- point-reach


def long_tail_tolerance(x: float, lower: float, upper: float, margin: float, value_at_margin: float = 0.1) -> float:
    """Meta-World's ``reward_utils.tolerance`` with ``sigmoid="long_tail"``: 1 inside
    [lower, upper], then ``1 / ((d * s)^2 + 1)`` for the distance d outside in units of
    ``margin``, with s chosen so the value at one margin is ``value_at_margin``."""
    if lower <= x <= upper:
        return 1.0
    d = (lower - x if x < lower else x - upper) / margin
    scale = math.sqrt(1.0 / value_at_margin - 1.0)
    return 1.0 / ((d * scale) ** 2 + 1.0)


class PointReachBenchmark(_ToyBenchmark):
    """Meta-World reach-v3's goal box and reward on a point robot (see module doc)."""

    name = "point-reach"
    goal_visible = False
    with_puck = False
    default_episodes_per_trial = 10
    default_max_episode_steps = 500
    default_reward_scale = 0.1  # as for Meta-World: the reward input is reward / 10
    GOAL_LOW = (-0.1, 0.8, 0.05)
    GOAL_HIGH = (0.1, 0.9, 0.3)

    def _goals(self, split: str, rng: np.random.Generator) -> list[Any]:
        return [rng.uniform(self.GOAL_LOW, self.GOAL_HIGH) for _ in range(NUM_GOALS)]

    def task_vector(self, class_name: str, goal: Any) -> np.ndarray:
        return np.asarray(goal, dtype=np.float64)  # the goal position

    def observation_space(self) -> gym.spaces.Box:
        low, high = (np.array(b, dtype=np.float32) for b in (PointReachCore.HAND_LOW, PointReachCore.HAND_HIGH))
        if self.goal_visible:
            low, high = np.concatenate([low, low]), np.concatenate([high, high])
        if self.with_puck:
            low, high = np.concatenate([low, PointReachCore.PUCK_LOW]), np.concatenate([high, PointReachCore.PUCK_HIGH])
        return gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def action_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)

    def make_core(self, class_name, *, max_episode_steps, render_mode=None, camera=None) -> Core:
        return PointReachCore(self.goal_visible, self.with_puck)


class PointReachVisibleBenchmark(PointReachBenchmark):
    """``point-reach`` with the goal appended to the observation: the oracle bound."""

    name = "point-reach-visible"
    goal_visible = True


class PointReachPuckBenchmark(PointReachBenchmark):
    """``point-reach`` plus a task-irrelevant "puck" position in the observation, drawn once per
    goal like the object of ML1/reach-v3 (whose ``rand_vec`` sets puck and goal together): with
    50 training goals, the puck identifies the task, a shortcut around inferring the goal."""

    name = "point-reach-puck"
    with_puck = True


class PointReachCore(Core):
    """The point hand; the goal is a 3-D position."""

    HAND_INIT = (0.0, 0.6, 0.2)
    HAND_LOW = (-0.5, 0.40, 0.05)
    HAND_HIGH = (0.5, 1.0, 0.5)
    STEP = 0.01
    RADIUS = 0.05

    PUCK_LOW = (-0.1, 0.6)
    PUCK_HIGH = (0.1, 0.7)

    def __init__(self, goal_visible: bool = False, with_puck: bool = False) -> None:
        self.goal_visible, self.with_puck = goal_visible, with_puck
        self.puck = np.zeros(2)
        self.goal = np.array(PointReachBenchmark.GOAL_LOW)
        self.pos = np.array(self.HAND_INIT)
        self.margin = 1.0

    def set_goal(self, goal: Any) -> None:
        self.goal = np.asarray(goal, dtype=np.float64)
        # one fixed puck per goal: seeded by the goal's bits, so train and test goals get their own
        seed = int(np.frombuffer(self.goal.astype(np.float64).tobytes(), dtype=np.uint32).sum())
        self.puck = np.random.default_rng(seed).uniform(self.PUCK_LOW, self.PUCK_HIGH)
        self.margin = float(np.linalg.norm(np.array(self.HAND_INIT) - self.goal))

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        self.pos = np.array(self.HAND_INIT)
        return self._obs()

    def _obs(self) -> np.ndarray:
        parts = [self.pos] + ([self.goal] if self.goal_visible else []) + ([self.puck] if self.with_puck else [])
        return np.concatenate(parts)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        self.pos = np.clip(self.pos + self.STEP * np.clip(action[:3], -1.0, 1.0), self.HAND_LOW, self.HAND_HIGH)
        dist = float(np.linalg.norm(self.pos - self.goal))
        reward = 10.0 * long_tail_tolerance(dist, 0.0, self.RADIUS, self.margin)
        return self._obs(), reward, dist <= self.RADIUS


# ------------------------------------------------------------------- bandit


class BanditBenchmark(_ToyBenchmark):
    """k-armed Bernoulli bandit with hidden arm probabilities (see module doc)."""

    name = "bandit"
    default_episodes_per_trial = 10
    default_max_episode_steps = 1
    ARMS = 5

    def _goals(self, split: str, rng: np.random.Generator) -> list[Any]:
        return [rng.uniform(0.0, 1.0, self.ARMS) for _ in range(NUM_GOALS)]

    def task_vector(self, class_name: str, goal: Any) -> np.ndarray:
        return np.asarray(goal, dtype=np.float64)  # the arms' success probabilities

    def observation_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, 0.0, (1,), dtype=np.float32)

    def action_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, (self.ARMS,), dtype=np.float32)

    def make_core(self, class_name, *, max_episode_steps, render_mode=None, camera=None) -> Core:
        return BanditCore(self.ARMS)


class BanditOneHotBenchmark(BanditBenchmark):
    """The bandit with one good arm (probability ``HIGH``) among ``LOW`` ones (see module doc)."""

    name = "bandit-onehot"
    HIGH, LOW = 0.9, 0.1

    def _goals(self, split: str, rng: np.random.Generator) -> list[Any]:
        goals = []
        for arm in rng.permutation(np.arange(NUM_GOALS) % self.ARMS):  # each arm good in a fifth of the tasks
            probs = np.full(self.ARMS, self.LOW)
            probs[arm] = self.HIGH
            goals.append(probs)
        return goals


class BanditCore(Core):
    """Pull ``argmax(action)``; reward 1 with that arm's hidden probability."""

    def __init__(self, arms: int) -> None:
        self.probs = np.full(arms, 0.5)
        self.rng = np.random.default_rng()
        self._obs = np.zeros(1)

    def set_goal(self, goal: Any) -> None:
        self.probs = np.asarray(goal, dtype=np.float64)

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        self.rng = rng  # the trial env's seeded generator: seeded reward draws
        return self._obs.copy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        arm = int(np.argmax(action))
        reward = float(self.rng.random() < self.probs[arm])
        return self._obs.copy(), reward, arm == int(np.argmax(self.probs))
