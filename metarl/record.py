"""``metarl record``: videos of a trained agent adapting to one task, attempt after attempt.

One video per trial: all K attempts back to back, upright frames from a fixed
camera, an overlay with task, attempt, step and success so far, and (for cells
with memory diagnostics) a side strip with the recent forget gates / read
weights as titled slots x time heatmaps with axes and a colour scale. The
per-step diagnostics of each trial are also saved as ``<video>.memory.npz``
for ``metarl plot``. After writing, each trial's success by attempt is printed.
The trial is played by ``metarl.trials.play_trials``; the drawing is ``metarl.video``'s.

Rendering is headless (EGL on a GPU; on CPU OSMesa, else Mesa's EGL, both in
software; see :mod:`metarl.render`). A software frame is slow, so by default
only every 4th step is rendered there (the policy still acts every step), and
the frame rate follows ``--every`` so that a video always shows 30 env steps a
second.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from metarl.checkpoint import load_agent, resolve_checkpoint
from metarl.diagnostics import History, keep_diagnostics, memory_arrays
from metarl.envs import make_env, tasks
from metarl.envs.metaworld_tasks import MetaWorldBenchmark
from metarl.envs.registry import check_split, get_benchmark
from metarl.evaluate import agent_env_kwargs, check_compatible, seeded_torch
from metarl.pretrained import is_pretrained
from metarl.render import (CAMERAS, FrameRenderer, RenderError, RenderSettings, check_camera, configure_gl,
                           default_every, mujoco_handles)
from metarl.trials import SingleEnvBatch, Step, play_trials
from metarl.video import memory_strip, overlay, write_video

VIDEO_SUFFIXES = (".mp4", ".gif")


@dataclass
class RecordSettings:
    """One recording; ``None`` fields come from the agent's training config."""

    task: str
    out: Path
    benchmark: str | None = None
    split: str = "test"
    trials: int = 1
    camera: str = "corner2"
    fps: int | None = None
    """Video frames per second; None: :func:`default_fps` (30 env steps per second of video)."""
    every: int | None = None
    """Render every N-th step of each attempt (the CLI default: :func:`metarl.render.default_every`)."""
    size: int = 480
    seed: int = 0
    deterministic: bool = False
    episodes_per_trial: int | None = None
    max_episode_steps: int | None = None
    diagnostics: bool = True
    progress: bool = True


# ----------------------------------------------------------------------- env and frames


def check_task(task: str, valid: list[str], benchmark: str, split: str) -> int:
    """Index of ``task`` among the split's classes, else ValueError with the closest names."""
    if task in valid:
        return valid.index(task)
    close = difflib.get_close_matches(task, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"task {task!r} is not in {benchmark} {split} split{hint} (valid: {', '.join(valid)})")


class _Frames:
    """Upright frames of a trial env: MuJoCo through FrameRenderer, else the env's own render()."""

    def __init__(self, env: Any, camera: str, size: int) -> None:
        self.size = size
        self.env = env
        try:
            model, data = mujoco_handles(env)
        except ValueError:
            self.renderer = None
        else:
            self.renderer = FrameRenderer(model, data, camera, RenderSettings(size=size))

    def __call__(self) -> np.ndarray:
        if self.renderer is not None:
            return self.renderer.render()
        frame = self.env.render()
        if frame is None:
            raise ValueError(f"benchmark {self.env.benchmark!r} has no renderer")
        return np.asarray(Image.fromarray(frame).resize((self.size, self.size), Image.NEAREST))

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()


def make_task_env(agent: Any, s: RecordSettings) -> Any:
    """A trial env that plays only class ``s.task`` (round-robin slot of that class)."""
    valid = tasks(s.benchmark, s.split)
    index = check_task(s.task, valid, s.benchmark, s.split)
    kwargs = agent_env_kwargs(agent)
    # env_index = class index and num_envs = #classes: trial k plays (index + k C) % C = index
    common = dict(split=s.split, episodes_per_trial=s.episodes_per_trial, max_episode_steps=s.max_episode_steps,
                  env_index=index, num_envs=len(valid), **kwargs)
    mujoco = isinstance(get_benchmark(s.benchmark), MetaWorldBenchmark)
    return make_env(s.benchmark, render_mode=None if mujoco else "rgb_array", camera=None, **common)


def frames_per_attempt(max_episode_steps: int, every: int) -> int:
    """Frames rendered per attempt: the states after 0, every, 2 every, ... < T steps."""
    return math.ceil(max_episode_steps / every)


class _TrialFilm:
    """The callbacks that film one trial for :func:`record_trial`: a frame with its overlay (and
    memory strip) every ``s.every`` steps of each attempt, from the state the agent just acted in."""

    def __init__(self, frames: _Frames, s: RecordSettings, trial: int, k: int, t_max: int, bar: Any) -> None:
        self.frames, self.s, self.trial, self.k, self.t_max, self.bar = frames, s, trial, k, t_max, bar
        self.history: History = {}
        self.video: list[np.ndarray] = []
        self.strips: list[np.ndarray | None] = []  # None: the agent has no memory diagnostics
        self.success = False  # this attempt's, so far
        self.solved = 0  # attempts solved before this one

    def on_act(self, step: Step) -> None:
        # the agent acted first, so each frame's strip includes the memory it reads at that frame's state
        if step.diagnostics:
            keep_diagnostics(self.history, step.diagnostics)
        i, attempt = step.t % self.t_max, int(step.ended[0]) + 1  # attempts are t_max steps each
        if i % self.s.every:
            return
        lines = [
            f"{step.infos['task'][0]}  ({self.s.split} split)  trial {self.trial + 1}",
            f"attempt {attempt}/{self.k}  step {i}/{self.t_max}",
            f"success this attempt: {'yes' if self.success else 'no'}   "
            f"attempts solved: {self.solved + int(self.success)}/{attempt}",
        ]
        self.video.append(overlay(self.frames(), lines, self.success))
        self.bar.update(1)
        self.strips.append(memory_strip(self.history, self.video[-1].shape[0], episode_length=self.t_max)
                           if self.history else None)

    def on_step(self, step: Step, infos: dict[str, np.ndarray], done: np.ndarray) -> None:
        self.success |= bool(infos["success"][0])
        if done[0]:
            self.solved += int(self.success)
            self.success = False


def record_trial(agent: Any, env: Any, frames: _Frames, s: RecordSettings, trial: int, bar: Any) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Play one trial; return its video frames and its per-step memory diagnostics."""
    k, t_max = env.episodes_per_trial, env.max_episode_steps
    film = _TrialFilm(frames, s, trial, k, t_max, bar)
    played = play_trials(agent, SingleEnvBatch(env), env.trial_length, seed=s.seed + trial,
                         deterministic=s.deterministic, diagnostics=s.diagnostics,
                         on_act=film.on_act, on_step=film.on_step)
    out = film.video
    if any(strip is not None for strip in film.strips):  # the cell has memory: every frame gets its strip
        out = [np.concatenate([f, x], axis=1) for f, x in zip(out, film.strips)]
    return out, memory_arrays(film.history, k, t_max, played.success[0], str(played.infos["task"][0]))


STEPS_PER_SECOND = 30  # env steps per second of video by default, whatever --every


def default_fps(every: int) -> int:
    """Frames per second that show STEPS_PER_SECOND env steps a second: rendering every 4th step
    gives 8 fps, so a 2 x 100-step trial lasts about 7 s instead of 1.7 s at 30 fps."""
    return max(1, round(STEPS_PER_SECOND / every))


def trial_path(out: Path, trial: int, trials: int) -> Path:
    """``out`` for a single trial, else ``<stem>_trial<n><suffix>``."""
    return out if trials == 1 else out.with_name(f"{out.stem}_trial{trial + 1}{out.suffix}")


def record(agent: Any, s: RecordSettings) -> list[Path]:
    """Record ``s.trials`` trials of ``s.task``; returns the video paths written."""
    if s.out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out must end in .mp4 or .gif, got {s.out.name!r}")
    for name, value in (("trials", s.trials), ("fps", s.fps), ("every", s.every), ("size", s.size)):
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be >= 1, got {value}")
    if s.size % 16:
        raise ValueError(f"--size must be a multiple of 16 (video codec blocks), got {s.size}")
    env = make_task_env(agent, s)
    paths = []
    frames = None
    try:
        check_compatible(agent, env.observation_space.shape[0], env.action_space.shape[0], s.benchmark)
        env.reset(seed=s.seed)
        frames = _Frames(env, s.camera, s.size)
        total = s.trials * env.episodes_per_trial * frames_per_attempt(env.max_episode_steps, s.every)
        bar = _bar(total, s.progress)
        with seeded_torch(agent, s.seed):
            for trial in range(s.trials):
                video, memory = record_trial(agent, env, frames, s, trial, bar)
                path = trial_path(s.out, trial, s.trials)
                fps = s.fps or default_fps(s.every)
                write_video(video, path, fps)
                memory.update(frames=np.array(len(video)), fps=np.array(fps))
                np.savez_compressed(path.with_suffix(".memory.npz"), **memory)
                paths.append(path)
        bar.close()
    finally:
        if frames is not None:
            frames.close()
        env.close()
    return paths


def _bar(total: int, enabled: bool) -> Any:
    return tqdm(total=total, unit="frame", desc="record", file=sys.stderr, disable=not enabled, dynamic_ncols=True)


# ----------------------------------------------------------------------- CLI


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "record",
        help="video of an agent's attempts on one task",
        description="Record one video per trial: all attempts back to back, with overlay and memory strip.",
    )
    p.add_argument("source", metavar="RUN_DIR|CHECKPOINT", help="run directory, checkpoint file or shipped agent (pretrained:NAME)")
    p.add_argument("--task", required=True,
                   help="task class of the run's benchmark, e.g. reach-v3 for the default run (see `metarl envs`)")
    p.add_argument("--benchmark", default=None, help="benchmark (default: the run's)")
    p.add_argument("--split", default="test", help="train or test (default: test, held out)")
    p.add_argument("--trials", type=int, default=1, help="trials, one video each (default: 1)")
    p.add_argument("--camera", default="corner2", help=f"camera: {', '.join(CAMERAS)} (default: corner2)")
    p.add_argument("--every", type=int, default=None,
                   help="render every N-th step (default: 1 with EGL on a GPU, else 4: software rendering is slow)")
    p.add_argument("--fps", type=int, default=None,
                   help=f"video frames per second (default: {STEPS_PER_SECOND} / every, rounded: "
                        f"{STEPS_PER_SECOND} env steps per second of video, 8 fps at --every 4)")
    p.add_argument("--size", type=int, default=480, help="frame height and width in pixels, a multiple of 16 (default: 480)")
    p.add_argument("--seed", type=int, default=0, help="seed of the task's goal and of action sampling (default: 0)")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=False,
                   help="act with the policy mean (default: sampled actions)")
    p.add_argument("--episodes-per-trial", type=int, default=None, help="attempts per trial (default: the run's)")
    p.add_argument("--max-episode-steps", type=int, default=None, help="steps per attempt (default: the run's)")
    p.add_argument("--diagnostics", action=argparse.BooleanOptionalAction, default=True,
                   help="memory side strip and <out>.memory.npz, for cells with memory diagnostics (default: on)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar on stderr (default: on)")
    p.add_argument("--out", required=True, type=Path, help="output video, .mp4 or .gif")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    check_camera(args.camera)
    if Path(args.out).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out must end in .mp4 or .gif, got {Path(args.out).name!r}")
    if is_pretrained(args.source):
        resolve_checkpoint(args.source)  # an unknown name fails here, listing the shipped ones
    elif not Path(args.source).exists():
        raise FileNotFoundError(f"no such run directory or checkpoint: {args.source}")
    try:
        backend, no_gl = configure_gl(), None  # before anything imports mujoco/metaworld
    except RenderError as exc:  # fatal only for MuJoCo scenes: toy tasks draw their own frames
        backend, no_gl = "none", exc
    check_split(args.split)
    torch.set_num_threads(1)
    agent = load_agent(args.source, device="cpu")
    env_cfg = getattr(agent.config, "env", None)
    if no_gl is not None:
        if isinstance(get_benchmark(args.benchmark or env_cfg.benchmark), MetaWorldBenchmark):
            raise no_gl
    s = RecordSettings(
        task=args.task, out=Path(args.out), benchmark=args.benchmark or env_cfg.benchmark, split=args.split,
        trials=args.trials, camera=args.camera, fps=args.fps,
        every=args.every or default_every(backend), size=args.size, seed=args.seed,
        deterministic=args.deterministic,
        episodes_per_trial=args.episodes_per_trial or getattr(env_cfg, "episodes_per_trial", None),
        max_episode_steps=args.max_episode_steps or getattr(env_cfg, "max_episode_steps", None),
        diagnostics=args.diagnostics, progress=args.progress,
    )
    for path in record(agent, s):
        print(describe_recording(path, s), flush=True)
    return 0


def describe_recording(path: Path, s: RecordSettings) -> str:
    """'wrote PATH (F frames at N fps, S s) and PATH.memory.npz' and the trial's success by attempt."""
    memory = np.load(path.with_suffix(".memory.npz"))
    successes = [bool(v) for v in memory["successes"]]
    frames, fps = int(memory["frames"]), int(memory["fps"])
    attempts = ", ".join(f"attempt {a} {'solved' if ok else 'not solved'}" for a, ok in enumerate(successes, start=1))
    return (f"wrote {path} ({frames} frames at {fps} fps, {frames / fps:.1f} s) and {path.with_suffix('.memory.npz')}\n"
            f"  {memory['task']} ({s.split} split): {attempts}; {sum(successes)}/{len(successes)} attempts solved")
