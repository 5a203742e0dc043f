"""Meta-World v3 benchmarks (ML1/<task>, ML10, ML25, ML45) as benchmark specs.

Splits come straight from Meta-World's own benchmark objects, built with a
fixed ``BENCHMARK_SEED`` so every run sees the same 50 goals per class:
``train`` = ``benchmark.train_tasks``, ``test`` = ``benchmark.test_tasks``
(for ML1 the test goals are drawn with seed + 1 by Meta-World itself; we do
not use the ``Meta-World/ML1-train`` gym id, which hands out the test goals).

Building a benchmark object draws 50 goals per class (ML10 ~20 s, ML45
~60 s), so the task lists are pickled to a disk cache, keyed by benchmark,
seed and Meta-World version, and written atomically. Set ``METARL_CACHE``
to move the cache (default ``~/.cache/metarl``).
"""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.core import BenchmarkSpec, Core, TaskSet
from metarl.envs.fast_metaworld import install

# ``metaworld`` is imported inside functions: it is slow to import, and it must come after
# any ``MUJOCO_GL`` choice (``metarl.render.configure_gl``), which rendering code makes first.

ML_BENCHMARKS = ("ML10", "ML25", "ML45")
BENCHMARK_SEED = 0  # seed of Meta-World's goal sampling: fixes the 50 goals per class
EPISODE_STEPS = 500  # Meta-World's episode length (max_path_length)
# The object slots of Meta-World's 39-dim observation, current frame then previous frame
# ([hand 3 | gripper 1 | objects 14] x 2 | goal 3): for ``agent.ignore_obs`` on tasks whose
# objects carry nothing the task needs (reach) but tell its 50 training tasks apart.
OBJECT_DIMS: tuple[int, ...] = (*range(4, 18), *range(22, 36))
# CPU ms per step with random actions (`python bench/step_costs.py --rounds 5
# --steps 300`, with fast_metaworld's stand-ins, on a shared 2-core x86 VM; only
# the ratios matter). Used to balance vector workers: a step waits for the
# slowest worker, and classes differ in cost (README, "Measured").
STEP_COST_MS: dict[str, float] = {
    "assembly-v3": 0.68, "basketball-v3": 0.72, "bin-picking-v3": 0.50, "box-close-v3": 0.76,
    "button-press-topdown-v3": 0.45, "button-press-topdown-wall-v3": 0.50, "button-press-v3": 0.42,
    "button-press-wall-v3": 0.46, "coffee-button-v3": 0.54, "coffee-pull-v3": 0.81, "coffee-push-v3": 0.69,
    "dial-turn-v3": 0.35, "disassemble-v3": 0.61, "door-close-v3": 0.40, "door-lock-v3": 0.37,
    "door-open-v3": 0.59, "door-unlock-v3": 0.44, "drawer-close-v3": 0.54, "drawer-open-v3": 0.44,
    "faucet-close-v3": 0.44, "faucet-open-v3": 0.51, "hammer-v3": 0.85, "hand-insert-v3": 0.59,
    "handle-press-side-v3": 0.49, "handle-press-v3": 0.44, "handle-pull-side-v3": 0.62,
    "handle-pull-v3": 0.60, "lever-pull-v3": 0.44, "peg-insert-side-v3": 0.57, "peg-unplug-side-v3": 0.72,
    "pick-out-of-hole-v3": 0.64, "pick-place-v3": 0.64, "pick-place-wall-v3": 0.79,
    "plate-slide-back-side-v3": 0.43, "plate-slide-back-v3": 0.49, "plate-slide-side-v3": 0.50,
    "plate-slide-v3": 0.39, "push-back-v3": 0.67, "push-v3": 0.60, "push-wall-v3": 0.70, "reach-v3": 0.50,
    "reach-wall-v3": 0.50, "shelf-place-v3": 0.60, "soccer-v3": 0.69, "stick-pull-v3": 0.82,
    "stick-push-v3": 0.71, "sweep-into-v3": 0.81, "sweep-v3": 0.74, "window-close-v3": 0.41,
    "window-open-v3": 0.49,
}
# Fixed cameras whose frames MuJoCo returns upside down (see notes/metaworld.md).
_ROTATED_CAMERAS = ("corner", "corner2", "corner3", "corner4")


@functools.lru_cache(maxsize=None)
def all_task_names() -> list[str]:
    """Every Meta-World v3 task class name (``reach-v3``, ...)."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return list(ALL_V3_ENVIRONMENTS)


def cache_dir() -> Path:
    """Where built task lists are cached (``$METARL_CACHE`` or ``~/.cache/metarl``)."""
    root = os.environ.get("METARL_CACHE") or os.path.join(Path.home(), ".cache", "metarl")
    return Path(root)


def _cache_path(name: str, seed: int) -> Path:
    import metaworld

    try:
        mw_version = version("metaworld")
    except Exception:  # source checkout without metadata
        mw_version = getattr(metaworld, "__version__", "unknown")
    safe = name.replace("/", "_")
    return cache_dir() / f"metaworld-{mw_version}" / f"{safe}-seed{seed}.pkl"


def build_benchmark(name: str, seed: int = BENCHMARK_SEED) -> Any:
    """The Meta-World benchmark object for ``name`` (slow: draws all goals)."""
    import metaworld

    if name.startswith("ML1/"):
        return metaworld.ML1(name[len("ML1/"):], seed=seed)
    return getattr(metaworld, name)(seed=seed)


@functools.lru_cache(maxsize=None)
def load_tasks(name: str, seed: int = BENCHMARK_SEED) -> dict[str, list[Any]]:
    """``{"train": [Task...], "test": [Task...]}`` of a benchmark, from cache or built."""
    path = _cache_path(name, seed)
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (FileNotFoundError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        pass
    bench = build_benchmark(name, seed)
    tasks = {"train": list(bench.train_tasks), "test": list(bench.test_tasks)}
    try:  # atomic: write a temp file in the same folder, then rename over
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(tasks, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is shareable
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home: still works, just not cached
    return tasks


class MetaWorldBenchmark(BenchmarkSpec):
    """ML1/<task>, ML10, ML25 or ML45 with Meta-World's own train/test splits.

    ``MT1/<task>`` is the goal-visible oracle of ``ML1/<task>``: the same train
    and test goals, with Meta-World's unmasked observation (the goal position
    in the last 3 dims, as in its multi-task MT benchmarks). It bounds what
    memory can add: a memoryless policy must solve it, or the learner is broken.
    """

    default_episodes_per_trial = 10
    default_max_episode_steps = EPISODE_STEPS
    default_reward_scale = 0.1  # Meta-World v2 rewards lie in [0, 10]
    max_episode_steps_limit = EPISODE_STEPS  # stepping past 500 raises inside Meta-World
    in_process = False

    def __init__(self, name: str, seed: int = BENCHMARK_SEED) -> None:
        self.name = name
        self.seed = seed
        self.goal_visible = name.startswith("MT1/")
        # MT1/<task> plays ML1/<task>'s goals (same cache entry).
        self.tasks_name = "ML1/" + name[len("MT1/"):] if self.goal_visible else name

    def classes(self, split: str) -> tuple[str, ...]:
        if self.tasks_name.startswith("ML1/"):
            return (self.tasks_name[len("ML1/"):],)
        from metaworld import env_dict

        return tuple(getattr(env_dict, f"{self.name}_V3")[split].keys())

    def task_set(self, split: str) -> TaskSet:
        tasks = load_tasks(self.tasks_name, self.seed)[split]
        classes = self.classes(split)
        goals: dict[str, list[Any]] = {c: [] for c in classes}
        for task in tasks:
            goals[task.env_name].append(task)
        return TaskSet(self.name, split, classes, goals)

    @functools.cache
    def observation_space(self) -> gym.spaces.Box:
        # Class-independent: hand space, gripper, unbounded object slots and a
        # zeroed goal (goal hidden in ML benchmarks), twice (current, previous).
        from metaworld.sawyer_xyz_env import SawyerXYZEnv

        hand = SawyerXYZEnv._HAND_SPACE
        obj = np.full(14, np.inf)
        half_low = np.hstack([hand.low, -1.0, -obj])
        half_high = np.hstack([hand.high, 1.0, obj])
        goal = np.full(3, np.inf) if self.goal_visible else np.zeros(3)
        low = np.hstack([half_low, half_low, -goal])
        high = np.hstack([half_high, half_high, goal])
        return gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def action_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)

    def task_vector(self, class_name: str, goal: Any) -> np.ndarray:
        # Meta-World's frozen random vector: object and/or goal positions (3 or 6 numbers).
        return np.asarray(pickle.loads(goal.data)["rand_vec"], dtype=np.float64)

    def step_cost(self, class_name: str) -> float:
        return STEP_COST_MS.get(class_name, 1.0)

    def make_core(
        self,
        class_name: str,
        *,
        max_episode_steps: int,
        render_mode: str | None = None,
        camera: str | None = None,
    ) -> Core:
        return MetaWorldCore(class_name, max_episode_steps, render_mode, camera, self.goal_visible)


class MetaWorldCore(Core):
    """One Meta-World env of one class; goals are Meta-World ``Task`` objects."""

    def __init__(
        self,
        class_name: str,
        max_episode_steps: int,
        render_mode: str | None = None,
        camera: str | None = None,
        goal_visible: bool = False,
    ) -> None:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        install()  # exact, faster stand-ins for Meta-World's slowest Python (fast_metaworld.py)
        self.class_name = class_name
        self.camera = camera
        self.env = ALL_V3_ENVIRONMENTS[class_name](render_mode=render_mode, camera_name=camera)
        # Instance attribute shadows the class's 500: shorter episodes for quick runs.
        self.env.max_path_length = max_episode_steps
        self.action_space = self.env.action_space
        self.goal_visible = goal_visible

    def set_goal(self, goal: Any) -> None:
        # ML tasks hide the goal (partially_observable=True). For MT1, show it after set_task,
        # dropping Meta-World's cached observation space (its goal bounds would clip the goal
        # to 0); before set_task, put back what the task says so set_task drops nothing itself.
        if self.goal_visible:
            self.env._partially_observable = True
            self.env.__dict__.pop("sawyer_observation_space", None)
        self.env.set_task(goal)
        if self.goal_visible:
            self.env._partially_observable = False
            self.env.__dict__.pop("sawyer_observation_space", None)

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        # Deterministic given the task: Meta-World freezes the goal's rand_vec.
        obs, _ = self.env.reset()
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        obs, reward, _, _, info = self.env.step(action)
        return obs, float(reward), bool(info["success"])

    def render(self) -> np.ndarray | None:
        frame = self.env.render()
        if frame is not None and self.camera in _ROTATED_CAMERAS:
            frame = np.ascontiguousarray(frame[::-1, ::-1])  # 180-degree turn
        return frame

    def close(self) -> None:
        self.env.close()
