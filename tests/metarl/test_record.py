"""`metarl record`: frame counts and sizes, memory strip and .npz, overlay, errors, CPU speed.

Meta-World recordings run in a subprocess: the GL backend must be chosen before
mujoco is imported, and this pytest process may have imported it already.
Point-nav draws its own frames (no GL), so it is recorded in-process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from metarl.record import RecordSettings, default_fps, frames_per_attempt, record
from metarl.render import choose_backend, default_every
from metarl.video import STRIP_WIDTH, memory_strip, overlay

from _gl import needs_gl  # tests/metarl is on sys.path (pytest rootdir import mode)
from _tiny_runs import tiny_run


@pytest.fixture(scope="session")
def reach_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.getbasetemp(), "reach")


def _metarl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    # the environment passes through: MUJOCO_GL=egl (or osmesa) forces that backend, unset picks one
    return subprocess.run([sys.executable, "-m", "metarl", *args], capture_output=True, text=True, timeout=timeout)


def _video_frames(path: Path) -> list[np.ndarray]:
    import imageio.v2 as imageio

    return [np.asarray(f) for f in imageio.mimread(path, memtest=False)]


@needs_gl
def test_mp4_has_one_frame_per_every_steps_and_the_requested_size(reach_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "reach.mp4"
    proc = _metarl("record", str(reach_run), "--task", "reach-v3", "--every", "7", "--size", "96",
                   "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames = _video_frames(out)
    # the run's trials: 2 attempts of 30 steps; states after 0, 7, 14, 21, 28 steps of each
    assert len(frames) == 2 * frames_per_attempt(30, 7) == 10
    assert frames[0].shape == (96, 96, 3)  # gru: no memory diagnostics, so no side strip
    assert np.std(frames[3]) > 10  # a real picture, not a blank frame
    memory = np.load(out.with_suffix(".memory.npz"))
    assert memory["successes"].shape == (2,) and memory["episode_starts"].tolist() == [0, 30]


def test_gif_with_memory_strip_and_diagnostics_file(tmp_path: Path) -> None:
    from metarl.agent import Agent
    from metarl.agents import AgentConfig, make_policy
    from metarl.envs import make_env

    env = make_env("point-nav")
    torch.manual_seed(0)
    agent = Agent(policy=make_policy(AgentConfig("forget-memory", 16, encoder_sizes=[256, 256]),
                                     env.observation_space.shape[0], env.action_space.shape[0]))
    out = tmp_path / "pn.gif"
    paths = record(agent, RecordSettings(task="point-nav", out=out, benchmark="point-nav", every=5, size=64,
                                         episodes_per_trial=2, trials=2, progress=False))
    assert paths == [tmp_path / "pn_trial1.gif", tmp_path / "pn_trial2.gif"]  # one video per trial
    from PIL import Image

    gif = Image.open(paths[0])
    assert gif.n_frames == 2 * frames_per_attempt(20, 5) == 8
    assert gif.size == (64 + STRIP_WIDTH, 64)  # frame + memory strip
    assert default_fps(5) == 6 and abs(gif.info["duration"] - 1000 / 6) <= 10  # 6 fps (GIF: 10 ms steps)
    gif.seek(0)
    strip = np.asarray(gif.convert("RGB"))[:, 64:]
    assert strip.std() > 5  # frame 0 already shows the first step's memory, not a blank panel
    memory = np.load(paths[0].with_suffix(".memory.npz"))
    assert memory["forget"].shape[0] == 2 * 20 and memory["forget"].ndim == 2
    assert np.all((memory["forget"] >= 0) & (memory["forget"] <= 1))
    assert str(memory["task"]) == "point-nav"


def test_memory_strip_has_titles_axes_and_a_colour_scale_from_the_first_step() -> None:
    rng = np.random.default_rng(0)
    first = {"forget": [rng.random(8)], "read_weights": [rng.dirichlet(np.ones(8), size=2)]}
    strip = memory_strip(first, 480)
    assert strip.shape == (480, STRIP_WIDTH, 3)
    background = np.all(strip == 24, axis=-1)
    for top in (0, 240):  # each panel: a title row of text, then the heatmap with a colour bar beside it
        assert not background[top + 2 : top + 14, :60].all(), "title text"
        green = strip[top + 30 : top + 200, -40:, 1].astype(int)  # (rows, columns) at the right edge
        ramps = [c for c in range(40) if np.all(np.diff(green[:, c]) <= 0) and green[0, c] - green[-1, c] > 100]
        assert ramps, "a colour scale: a column that darkens steadily from top to bottom (viridis 1 -> 0)"
        heatmap = strip[top + 30 : top + 200, 40 : STRIP_WIDTH - 40 + ramps[0] - 2]  # left of the colour bar
        assert not np.all(heatmap == 24), "the one step so far is drawn"
    assert memory_strip({}, 480).std() == 0  # no diagnostics: a plain dark strip


def test_default_fps_shows_thirty_env_steps_a_second_whatever_every() -> None:
    assert [default_fps(e) for e in (1, 2, 4, 7, 60)] == [30, 15, 8, 4, 1]
    # the default preset's 2 x 100-step trial on CPU (every 4th step): 50 frames at 8 fps, about 6 s
    assert 2 * frames_per_attempt(100, 4) / default_fps(4) > 6


def test_record_prints_where_it_wrote_and_success_by_attempt(tmp_path: Path, capsys) -> None:
    from metarl import cli

    run = tiny_run(tmp_path, "point-nav")
    out = tmp_path / "v.gif"
    assert cli.main(["record", str(run), "--task", "point-nav", "--every", "5", "--size", "64", "--no-progress",
                     "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {out} (8 frames at 6 fps, 1.3 s) and {out.with_suffix('.memory.npz')}"
    assert lines[1].startswith("  point-nav (test split): attempt 1 ") and ", attempt 2 " in lines[1]
    assert lines[1].endswith("/2 attempts solved")


def test_record_help_shows_the_defaults(capsys) -> None:
    from metarl import cli

    with pytest.raises(SystemExit):
        cli.main(["record", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 30 / every, rounded", "8 fps at --every 4)", "(default: 480)", "(default: corner2)",
                    "(default: test, held out)", "(default: 1 with EGL on a GPU, else 4"):
        assert default in text, default


def test_overlay_draws_text_in_a_top_band_only() -> None:
    frame = np.full((160, 160, 3), 200, dtype=np.uint8)
    out = overlay(frame, ["reach-v3", "attempt 1/2  step 0/500"], success=None)
    changed = np.any(out != frame, axis=-1)  # (H, W)
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.min() == 0 and rows.max() < 40  # band at the top, the scene below untouched
    assert np.asarray(out)[5:30].std() > 10  # text visible on the band
    framed = overlay(frame, ["x"], success=True)
    assert tuple(framed[-1, 80]) != (200, 200, 200)  # success border drawn at the bottom edge too


@needs_gl
def test_bad_task_name_gives_a_one_line_error(reach_run: Path, tmp_path: Path) -> None:
    proc = _metarl("record", str(reach_run), "--task", "reach-v4", "--out", str(tmp_path / "x.mp4"))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "did you mean 'reach-v3'" in err and "\n" not in err and not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["{run}", "--task", "reach-v3", "--camera", "top"], "valid cameras: corner"),
        (["{missing}", "--task", "reach-v3"], "no such run directory or checkpoint"),
        (["{run}", "--task", "reach-v3", "--out", "{tmp}/video.avi"], "must end in .mp4 or .gif"),
    ],
)
def test_bad_camera_path_or_suffix_fail_before_any_rendering(args, message, tmp_path: Path, capsys) -> None:
    from metarl import cli

    (tmp_path / "run").mkdir()
    fill = {"{run}": str(tmp_path / "run"), "{missing}": str(tmp_path / "missing"), "{tmp}": str(tmp_path)}
    argv = ["record"] + [fill.get(a, a.replace("{tmp}", str(tmp_path))) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "x.mp4")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.slow
@needs_gl
def test_default_cpu_recording_of_a_two_attempt_trial_takes_under_a_minute(reach_run: Path, tmp_path: Path) -> None:
    """CPU seconds of the recording process (wall time also bounded, loosely: tests share the CPUs)."""
    import resource

    out = tmp_path / "full.mp4"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = _metarl("record", str(reach_run), "--task", "reach-v3", "--max-episode-steps", "500",
                   "--no-progress", "--out", str(out))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0, proc.stderr[-2000:]
    every = default_every(choose_backend())
    assert len(_video_frames(out)) == 2 * frames_per_attempt(500, every)
    assert cpu < 60, f"default recording used {cpu:.1f} CPU seconds (wall {wall:.1f} s)"
    assert wall < 180, f"default recording took {wall:.1f} s wall"


def test_without_any_gl_library_meta_world_recording_says_what_to_install(reach_run: Path, tmp_path: Path) -> None:
    code = (
        "import ctypes.util, sys; ctypes.util.find_library = lambda name: None\n"
        "from metarl import cli; sys.exit(cli.main(sys.argv[1:]))"
    )
    proc = subprocess.run([sys.executable, "-c", code, "record", str(reach_run), "--task", "reach-v3",
                           "--out", str(tmp_path / "x.mp4")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "apt-get install libosmesa6" in err and "\n" not in err
