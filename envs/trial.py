"""``TrialEnv``: one gymnasium env that plays RL² trials of a benchmark.

A *trial* holds one task (class + goal) for ``episodes_per_trial`` attempts;
one gymnasium *episode* is one attempt and ends with ``truncated=True`` after
``max_episode_steps`` steps (``terminated`` is always False, so every trial
has the same length). Layout of the observation: ``metarl.envs.obs_layout``
(``env.obs_layout``), [env obs | clock | previous action | previous reward |
episode-start flag | trial-start flag].

The clock (``clock=True``) is the share of the attempt and of the trial still
to come, ``(1 - t / max_episode_steps, 1 - steps so far / trial_length)``:
attempts end at a time limit the env observation does not show, so without
it neither a value function nor a memoryless policy can tell a step just
before an attempt's reset from one in the middle (AMAGO feeds time likewise).

Reset rules:
- ``reset(seed=s)`` starts a new trial and reseeds the task sequence: same
  seed, same tasks (and same first observations).
- ``reset()`` after an unfinished trial starts its next attempt (same task;
  previous action/reward carried over); after the trial's last attempt, or
  with ``options={"new_trial": True}``, it draws a new task.
- ``reset(options={"task": (cls, goal)})`` starts a new trial of that task
  (``cls`` a class name or index into the split's classes, ``goal`` an index
  into that class's goals; with ``seed`` too, the seed still reseeds). A
  pinned trial draws no goal from the env's generator but counts in the
  round-robin below. An unknown class or an out-of-range goal is a one-line
  ``ValueError`` naming what is valid. Evaluation pins tasks to play each
  held-out goal once; without the option the draws are unchanged.

Task choice: the class is round-robin, ``classes[(env_index + k * num_envs) %
C]`` for the env's k-th trial since seeding, so N envs together cover all
classes evenly even when N < C; the goal is drawn uniformly from the class's
goals with the env's own seeded generator (``self.np_random``).

Non-stationary trials (``task_switches=S`` > 0): each trial changes its
hidden task S times, without warning, at attempt boundaries. When the trial
starts, its generator draws S distinct switch attempts from 2..K
(``episodes_per_trial``; S <= K - 1), and the attempt that starts at each
of them plays a new task: another goal of the same class (a different goal
index, drawn uniformly), or with ``switch_class=True`` another class of the
split (drawn uniformly among the others) and a drawn goal of it, where the
split has more than one class. The task then holds until the next switch or
the trial's end. Nothing in the observation announces a switch: the attempt
starts as any later attempt does (episode-start flag 1, trial-start flag 0,
previous action/reward carried over). A pinned trial (``options={"task":
...}``) switches too, from the pinned task, with switches and new tasks
drawn from the env's generator. With S = 0 (default) nothing is drawn: the
random stream and every rollout are exactly those of an env built without
the argument.

``info`` (every step and reset): ``task`` (class name), ``task_id`` (index
into the split's classes), ``goal`` (index into the class's goals),
``attempt`` (1-based), ``success`` (this step), ``trial_end`` (last step of
the trial), ``episode_success`` / ``episode_return`` (at an attempt's last
step: any-step success and raw return; else False / 0.0), ``task_switched``
(True in the reset's info that starts an attempt whose task was just
switched and in the info of that attempt's first step, the first step's
info being what the vector env reports; else False; ``task_id``/``goal``
already name the new task there).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.checks import check_positive, check_task_switches
from metarl.envs.core import BenchmarkSpec, Core, TaskSet, resolve_task
from metarl.envs.obs_layout import CLOCK_DIMS, ObsLayout
from metarl.envs.registry import check_split, get_benchmark


class TrialEnv(gym.Env):
    """RL² trials of one benchmark split (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(
        self,
        benchmark: str | BenchmarkSpec,
        *,
        split: str = "train",
        episodes_per_trial: int | None = None,
        max_episode_steps: int | None = None,
        reward_scale: float | None = None,
        seed: int | None = None,
        render_mode: str | None = None,
        camera: str | None = None,
        env_index: int = 0,
        num_envs: int = 1,
        task_set: TaskSet | None = None,
        clock: bool = False,
        task_switches: int = 0,
        switch_class: bool = False,
    ) -> None:
        spec: BenchmarkSpec = get_benchmark(benchmark)
        self.benchmark = spec.name
        self.split = check_split(split)
        self.benchmark_spec = spec
        self.episodes_per_trial = check_positive(
            "episodes_per_trial",
            spec.default_episodes_per_trial if episodes_per_trial is None else episodes_per_trial,
        )
        self.max_episode_steps = check_positive(
            "max_episode_steps",
            spec.default_max_episode_steps if max_episode_steps is None else max_episode_steps,
        )
        limit = spec.max_episode_steps_limit
        if limit is not None and self.max_episode_steps > limit:
            raise ValueError(f"max_episode_steps={self.max_episode_steps} exceeds {spec.name}'s limit of {limit}")
        self.trial_length = self.episodes_per_trial * self.max_episode_steps
        self.reward_scale = float(
            spec.default_reward_scale if reward_scale is None else reward_scale
        )
        self.num_envs = check_positive("num_envs", num_envs)
        if not 0 <= env_index < num_envs:
            raise ValueError(f"env_index must be in [0, {num_envs}), got {env_index}")
        self.env_index = int(env_index)
        self.render_mode = render_mode
        self.camera = camera
        self.task_set = task_set if task_set is not None else spec.task_set(self.split)
        self.task_names = list(self.task_set.classes)

        core_space, self.action_space = spec.observation_space(), spec.action_space()
        self._core_low, self._core_high = core_space.low, core_space.high
        if not isinstance(clock, bool):
            raise ValueError(f"clock must be True or False, got {clock!r}")
        self.clock = clock
        self.task_switches = check_task_switches("task_switches", task_switches, self.episodes_per_trial)
        if not isinstance(switch_class, bool):
            raise ValueError(f"switch_class must be True or False, got {switch_class!r}")
        self.switch_class = switch_class
        if self.task_switches and not self._can_switch_class():
            few = [c for c in self.task_names if len(self.task_set.goals[c]) < 2]
            if few:
                raise ValueError(f"task_switches needs another goal to switch to, but class {few[0]!r} of "
                                 f"{self.task_set.benchmark}/{self.split} has only one")
        self.obs_layout = ObsLayout(core_space.shape[0], self.action_space.shape[0], clock)
        inf = np.array([np.inf], dtype=np.float32)
        flags = np.zeros(2, dtype=np.float32)
        hands = np.zeros(CLOCK_DIMS if clock else 0, dtype=np.float32)
        self.observation_space = gym.spaces.Box(
            np.concatenate([core_space.low, hands, self.action_space.low, -inf, flags]),
            np.concatenate([core_space.high, hands + 1, self.action_space.high, inf, flags + 1]),
            dtype=np.float32,
        )
        self._obs = np.zeros(self.observation_space.shape, dtype=np.float32)

        self._pending_seed = seed  # used by the first reset() without a seed
        self._cores: dict[str, Core] = {}  # rendering envs keep every core alive
        self._core: Core | None = None
        self._class_name = ""
        self._task_id = 0
        self._goal = 0
        self._trial = 0  # trials started since the last seeding
        self._attempt = 0  # 0: no trial in progress
        self._switch_attempts: frozenset[int] = frozenset()  # attempts of this trial that switch the task
        self._switched = False  # this attempt's task was just switched (until its first step)
        self._t = 0
        self._return = 0.0
        self._success = False
        self._needs_reset = True

    @property
    def task(self) -> tuple[str, int]:
        """(class name, goal index) of the current trial ("" before the first reset)."""
        return self._class_name, self._goal

    @property
    def core(self) -> Core | None:
        """The core env of the current task class (None before the first reset): what renderers unwrap."""
        return self._core

    # ---------------------------------------------------------------- tasks

    def _use_class(self, name: str) -> Core:
        """The core of class ``name``; one live core unless rendering."""
        if name in self._cores:
            return self._cores[name]
        if self.render_mode is None:
            # Keep memory flat: close the old class's MuJoCo env first.
            for core in self._cores.values():
                core.close()
            self._cores.clear()
        core = self.benchmark_spec.make_core(
            name,
            max_episode_steps=self.max_episode_steps,
            render_mode=self.render_mode,
            camera=self.camera,
        )
        self._cores[name] = core
        return core

    def _can_switch_class(self) -> bool:
        return self.switch_class and len(self.task_set.classes) > 1

    def _set_task(self, task_id: int, goal: int) -> None:
        """Play goal ``goal`` of class ``task_id`` from the next core reset on."""
        self._task_id, self._goal = task_id, goal
        self._class_name = self.task_set.classes[task_id]
        self._core = self._use_class(self._class_name)
        self._core.set_goal(self.task_set.goals[self._class_name][goal])

    def _switch_task(self) -> None:
        """Switch to another task (module docstring), drawn with the env's generator."""
        rng, classes = self.np_random, self.task_set.classes
        task_id = self._task_id
        if self._can_switch_class():
            other = int(rng.integers(len(classes) - 1))
            task_id = other + (other >= task_id)  # uniform over the other classes
            goal = int(rng.integers(len(self.task_set.goals[classes[task_id]])))
        else:
            other = int(rng.integers(len(self.task_set.goals[classes[task_id]]) - 1))
            goal = other + (other >= self._goal)  # uniform over the other goals
        self._set_task(task_id, goal)

    def _start_trial(self, task: tuple[int, int] | None = None) -> None:
        """Start a trial of ``task`` (class index, goal index), or of the next round-robin class and a drawn goal."""
        classes = self.task_set.classes
        if task is None:
            self._task_id = (self.env_index + self._trial * self.num_envs) % len(classes)
        else:
            self._task_id = task[0]
        self._trial += 1
        self._class_name = classes[self._task_id]
        goals = self.task_set.goals[self._class_name]
        self._goal = int(self.np_random.integers(len(goals))) if task is None else task[1]
        self._core = self._use_class(self._class_name)
        self._core.set_goal(goals[self._goal])
        self._attempt = 1
        if self.task_switches:  # drawn only here and only then: S = 0 leaves the random stream as it was
            drawn = self.np_random.choice(np.arange(2, self.episodes_per_trial + 1), self.task_switches, replace=False)
            self._switch_attempts = frozenset(int(a) for a in drawn)
        self._obs[self.obs_layout.env.stop :] = 0.0  # no clock, previous action/reward or flags yet

    # ------------------------------------------------------------ gym API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        options = options or {}
        task = options.get("task")
        if task is not None:
            task = resolve_task(self.task_set, task)  # validate before changing any state
        if seed is None and self._pending_seed is not None:
            seed = self._pending_seed
        self._pending_seed = None
        super().reset(seed=seed)
        new_trial = (
            seed is not None
            or task is not None
            or self._attempt == 0
            or self._attempt >= self.episodes_per_trial
            or bool(options.get("new_trial", False))
        )
        if seed is not None:
            self._trial = 0
        self._switched = False
        if new_trial:
            self._start_trial(task)
        else:
            self._attempt += 1
            if self._attempt in self._switch_attempts:
                self._switch_task()
                self._switched = True
        core_obs = self._core.reset(self.np_random)
        self._t, self._return, self._success = 0, 0.0, False
        self._needs_reset = False
        self._write_obs(core_obs)
        self._obs[self.obs_layout.episode_start] = 1.0
        self._obs[self.obs_layout.trial_start] = 1.0 if new_trial else 0.0
        return self._obs.copy(), self._info(False, False, False, self._switched)

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("step() called after the attempt ended: call reset() first")
        act = np.clip(np.asarray(action, dtype=np.float32).reshape(self.action_space.shape), -1.0, 1.0)
        core_obs, reward, success = self._core.step(act)
        self._t += 1
        self._return += reward
        self._success |= success
        truncated = self._t >= self.max_episode_steps
        trial_end = truncated and self._attempt >= self.episodes_per_trial
        self._needs_reset = truncated
        switched, self._switched = self._switched, False  # marks only the attempt's first step
        self._write_obs(core_obs)
        layout = self.obs_layout
        self._obs[layout.action] = act
        self._obs[layout.reward] = reward * self.reward_scale
        self._obs[layout.flags] = 0.0
        return self._obs.copy(), reward, False, truncated, self._info(success, truncated, trial_end, switched)

    def _write_obs(self, core_obs: np.ndarray) -> None:
        # float64 -> float32, then clip so rounding never leaves the space.
        np.clip(core_obs, self._core_low, self._core_high, out=self._obs[self.obs_layout.env], casting="unsafe")
        if self.clock:
            done = (self._attempt - 1) * self.max_episode_steps + self._t  # steps of the trial so far
            self._obs[self.obs_layout.clock_dims] = (1.0 - self._t / self.max_episode_steps,
                                                     1.0 - done / self.trial_length)

    def _info(self, success: bool, episode_end: bool, trial_end: bool, switched: bool = False) -> dict[str, Any]:
        return {
            "task": self._class_name,
            "task_id": self._task_id,
            "goal": self._goal,
            "attempt": self._attempt,
            "success": bool(success),
            "trial_end": bool(trial_end),
            "episode_success": bool(self._success) if episode_end else False,
            "episode_return": float(self._return) if episode_end else 0.0,
            "task_switched": bool(switched),
        }

    def render(self) -> np.ndarray | None:
        """The current frame (``render_mode="rgb_array"``), upright for every camera."""
        return None if self._core is None else self._core.render()

    def close(self) -> None:
        for core in self._cores.values():
            core.close()
        self._cores.clear()
        self._core = None
        super().close()


def make_env(
    benchmark: str,
    *,
    split: str = "train",
    episodes_per_trial: int | None = None,
    seed: int | None = None,
    render_mode: str | None = None,
    camera: str | None = None,
    max_episode_steps: int | None = None,
    reward_scale: float | None = None,
    env_index: int = 0,
    num_envs: int = 1,
    clock: bool = False,
    task_switches: int = 0,
    switch_class: bool = False,
) -> TrialEnv:
    """One RL² trial env of ``benchmark``'s ``split``.

    ``None`` picks the benchmark's default: ``episodes_per_trial`` (Meta-World
    10, point-nav 4, bandit 10), ``max_episode_steps`` (Meta-World 500,
    point-nav 20, bandit 1; shorter Meta-World episodes for quick runs),
    ``reward_scale`` (reward input scaling: Meta-World 0.1, toys 1.0).
    ``seed`` seeds the first ``reset()``. ``env_index``/``num_envs`` place the
    env in a round-robin over the classes (what ``make_vec`` uses).
    ``clock=True`` adds the trial's clock to the observation (module docstring).
    ``task_switches=S`` changes each trial's hidden task S times at attempt
    boundaries drawn from 2..``episodes_per_trial``, unannounced (another goal
    of the class; with ``switch_class=True`` another class where the split
    has several; module docstring); 0 = stationary trials, exactly as without it.
    """
    return TrialEnv(
        benchmark,
        split=split,
        episodes_per_trial=episodes_per_trial,
        max_episode_steps=max_episode_steps,
        reward_scale=reward_scale,
        seed=seed,
        render_mode=render_mode,
        camera=camera,
        env_index=env_index,
        num_envs=num_envs,
        clock=clock,
        task_switches=task_switches,
        switch_class=switch_class,
    )
