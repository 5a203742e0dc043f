"""``metarl record``: videos of a trained agent adapting to one task, attempt after attempt.

One video per trial: all K attempts back to back, upright frames from a fixed
camera, an overlay with task, attempt, step and success so far, and (for cells
with memory diagnostics) a side strip with the recent forget gates / read
weights as titled slots x time heatmaps with axes and a colour scale. The
per-step diagnostics of each trial are also saved as ``<video>.memory.npz``
for ``metarl plot``. After writing, each trial's success by attempt is printed.

Rendering is headless (EGL on a GPU; on CPU OSMesa, else Mesa's EGL, both in
software; see :mod:`metarl.render`). A software frame is slow, so by default
only every 4th step is rendered there (the policy still acts every step), and
the frame rate follows ``--every`` so that a video always shows 30 env steps a
second.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metarl.diagnostics import History, keep_diagnostics, memory_arrays
from metarl.render import CAMERAS
from metarl.trials import SingleEnvBatch, Step, play_trials

STRIP_WIDTH = 192  # pixels of the memory side strip (a multiple of 16 keeps H.264 happy)
STRIP_HISTORY = 100  # env steps shown in the side strip
STRIP_KEYS = ("forget", "read_weights", "write_weights", "usage")  # panel order, first two present are drawn
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


# ----------------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed
    except TypeError:  # Pillow < 10.1: the built-in bitmap font
        return ImageFont.load_default()


def overlay(frame: np.ndarray, lines: list[str], success: bool | None = None) -> np.ndarray:
    """Draw text lines on a dark band at the top; a green/grey border says success so far."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    h = img.height
    font_size = max(10, h // 30)
    draw = ImageDraw.Draw(img, "RGBA")
    band = (font_size + 4) * len(lines) + 6
    draw.rectangle([0, 0, img.width, band], fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        draw.text((6, 3 + i * (font_size + 4)), line, fill=(255, 255, 255, 255), font=_font(font_size))
    if success is not None:
        width = max(2, h // 120)
        colour = (40, 200, 60, 255) if success else (160, 160, 160, 255)
        draw.rectangle([0, 0, img.width - 1, h - 1], outline=colour, width=width)
    return np.asarray(img)


def _heat(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """(slots, time) values in [0, 1] -> (height, width, 3) uint8 heatmap (viridis), NEAREST-scaled."""
    from matplotlib import colormaps
    from PIL import Image

    rgb = (colormaps["viridis"](np.clip(values, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)  # (N, T, 3)
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.NEAREST))


_STRIP_TITLES = {"forget": "forget gates", "read_weights": "read weights", "write_weights": "write weights",
                 "usage": "slot usage"}


def memory_strip(history: dict[str, list[np.ndarray]], height: int, width: int = STRIP_WIDTH,
                 episode_length: int | None = None) -> np.ndarray:
    """Side strip: up to two titled panels (memory slots x the last STRIP_HISTORY steps, newest on the
    right), each with a slot axis, a time axis and a colour scale.

    Forget gates are drawn on the absolute scale [0, 1]; weights and usage relative to their
    maximum in the window (a soft weighting over N slots is ~1/N everywhere). Attempt starts
    inside the window are white vertical lines. Empty history: a dark strip.
    """
    from PIL import Image, ImageDraw

    keys = [k for k in STRIP_KEYS if history.get(k)][:2]
    img = Image.new("RGB", (width, height), (24, 24, 24))
    if not keys:
        return np.asarray(img)
    draw = ImageDraw.Draw(img)
    fs = max(8, min(14, height // 36))
    font = _font(fs)
    left, right, bar = 3 * fs // 2 + 4, 2 * fs + 12, max(4, fs // 2)  # slot-axis labels | heatmap | colour bar, labels
    panel_h = height // len(keys)
    for p, key in enumerate(keys):
        steps = np.stack(history[key][-STRIP_HISTORY:])  # (t, N) or (t, heads, N)
        if steps.ndim == 3:
            steps = steps.mean(axis=1)  # average read heads -> (t, N)
        values = steps.T[::-1]  # (N, t): slots x time, slot 0 at the bottom
        top_value = 1.0 if key == "forget" else float(values.max())
        if key != "forget" and top_value > 0:
            values = values / top_value
        if values.shape[1] < STRIP_HISTORY:  # left-pad so time runs at a fixed speed
            pad = np.full((values.shape[0], STRIP_HISTORY - values.shape[1]), np.nan)
            values = np.concatenate([pad, values], axis=1)
        y0 = p * panel_h
        top, bottom = y0 + fs + 5, y0 + panel_h - fs - 6  # heatmap rows: below the title, above the time axis
        x1 = width - right
        if bottom - top < 4 or x1 - left < 8:
            continue
        heat = _heat(np.nan_to_num(values, nan=0.0), bottom - top, x1 - left).copy()
        heat[:, : max(0, (STRIP_HISTORY - len(history[key])) * (x1 - left) // STRIP_HISTORY)] = 24  # no steps yet
        img.paste(Image.fromarray(heat), (left, top))
        n = len(history[key])
        if episode_length:
            for start in range(0, n, episode_length):
                col = left + (STRIP_HISTORY - (n - start)) * (x1 - left) // STRIP_HISTORY
                if left <= col < x1:
                    draw.line([(col, top), (col, bottom - 1)], fill=(255, 255, 255))
        scale = "0-1" if key == "forget" else "/ max"
        draw.text((2, y0 + 2), f"{_STRIP_TITLES.get(key, key)} ({scale})", fill=(255, 255, 255), font=font)
        slots = values.shape[0]
        draw.text((2, top), str(slots - 1), fill=(200, 200, 200), font=font)  # slot axis: top and bottom slot
        draw.text((2, bottom - fs), "0", fill=(200, 200, 200), font=font)
        draw.text((2, (top + bottom) // 2 - fs // 2), "slot", fill=(150, 150, 150), font=_font(max(7, fs - 3)))
        draw.text((left, bottom + 2), f"-{STRIP_HISTORY}", fill=(200, 200, 200), font=font)  # time axis
        draw.text((x1 - 3 * fs // 2 - 4, bottom + 2), "now", fill=(200, 200, 200), font=font)
        ramp = _heat(np.linspace(1.0, 0.0, bottom - top)[:, None], bottom - top, bar)  # colour bar, high at the top
        img.paste(Image.fromarray(ramp), (x1 + 2, top))
        hi = "1" if key == "forget" else f"{top_value:.2f}"
        draw.text((x1 + bar + 4, top), hi, fill=(200, 200, 200), font=_font(max(7, fs - 2)))
        draw.text((x1 + bar + 4, bottom - fs), "0", fill=(200, 200, 200), font=_font(max(7, fs - 2)))
    return np.asarray(img)


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
        from metarl.render import FrameRenderer, RenderSettings, mujoco_handles

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
        from PIL import Image

        return np.asarray(Image.fromarray(frame).resize((self.size, self.size), Image.NEAREST))

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()


def make_task_env(agent: Any, s: RecordSettings) -> Any:
    """A trial env that plays only class ``s.task`` (round-robin slot of that class)."""
    from metarl.envs import make_env, tasks

    from metarl.evaluate import agent_env_kwargs

    valid = tasks(s.benchmark, s.split)
    index = check_task(s.task, valid, s.benchmark, s.split)
    kwargs = agent_env_kwargs(agent)
    # env_index = class index and num_envs = #classes: trial k plays (index + k C) % C = index
    common = dict(split=s.split, episodes_per_trial=s.episodes_per_trial, max_episode_steps=s.max_episode_steps,
                  env_index=index, num_envs=len(valid), **kwargs)
    from metarl.envs.registry import get_benchmark
    from metarl.envs.metaworld_tasks import MetaWorldBenchmark

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


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """MP4 via imageio-ffmpeg (H.264) or GIF via Pillow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0)
        return
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=16,
                            ffmpeg_log_level="error") as writer:
        for f in frames:
            writer.append_data(f)


def trial_path(out: Path, trial: int, trials: int) -> Path:
    """``out`` for a single trial, else ``<stem>_trial<n><suffix>``."""
    return out if trials == 1 else out.with_name(f"{out.stem}_trial{trial + 1}{out.suffix}")


def record(agent: Any, s: RecordSettings) -> list[Path]:
    """Record ``s.trials`` trials of ``s.task``; returns the video paths written."""
    from metarl.evaluate import check_compatible, seeded_torch

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
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="record", file=sys.stderr, disable=not enabled, dynamic_ncols=True)


# ----------------------------------------------------------------------- CLI


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "record",
        help="video of an agent's attempts on one task",
        description="Record one video per trial: all attempts back to back, with overlay and memory strip.",
    )
    p.add_argument("source", metavar="RUN_DIR|CHECKPOINT", help="run directory or checkpoint file")
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
    from metarl.render import check_camera, configure_gl, default_every

    check_camera(args.camera)
    if Path(args.out).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out must end in .mp4 or .gif, got {Path(args.out).name!r}")
    if not Path(args.source).exists():
        raise FileNotFoundError(f"no such run directory or checkpoint: {args.source}")
    from metarl.render import RenderError

    try:
        backend, no_gl = configure_gl(), None  # before anything imports mujoco/metaworld
    except RenderError as exc:  # fatal only for MuJoCo scenes: toy tasks draw their own frames
        backend, no_gl = "none", exc
    import torch

    from metarl.checkpoint import load_agent
    from metarl.envs.registry import check_split

    check_split(args.split)
    torch.set_num_threads(1)
    agent = load_agent(args.source, device="cpu")
    env_cfg = getattr(agent.config, "env", None)
    if no_gl is not None:
        from metarl.envs.metaworld_tasks import MetaWorldBenchmark
        from metarl.envs.registry import get_benchmark

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
