"""Headless rendering: frames are upright and un-mirrored for every supported camera.

The rendering runs in a subprocess (tests/metarl/_upright_probe.py) because the GL
backend must be chosen before mujoco is imported, and other test modules in this
pytest process may already have imported it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metarl import render
from metarl.render import CAMERAS, RenderError

from _gl import skip_without_gl  # tests/metarl is on sys.path (pytest rootdir import mode)

PROBE = Path(__file__).with_name("_upright_probe.py")


@pytest.fixture(scope="module")
def probe() -> dict:
    skip_without_gl()
    # the environment passes through: MUJOCO_GL=egl (or osmesa) forces that backend, unset picks one
    proc = subprocess.run([sys.executable, str(PROBE), "160"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _screen(point: list[float]) -> np.ndarray:
    """(row, col) in the image -> (x right, y up) screen coordinates."""
    return np.array([point[1], -point[0]])


@pytest.mark.parametrize("camera", [c for c in CAMERAS if c != "topview"])
def test_lifted_gripper_appears_higher_in_frame(probe: dict, camera: str) -> None:
    got = probe[camera]
    assert got["base"] is not None and got["up"] is not None, f"gripper not visible from {camera}"
    assert probe["hand"]["up"][2] > probe["hand"]["base"][2] + 0.1  # the hand really went up in the world
    # a smaller row index is higher in the picture
    assert got["up"][0] < got["base"][0] - 3, f"{camera}: lifting the gripper moved it down in the frame"


@pytest.mark.parametrize("camera", list(CAMERAS))
def test_frames_are_not_mirrored(probe: dict, camera: str) -> None:
    """Projected world x and y moves keep the handedness a real camera gives.

    For an un-mirrored view, cross2d(proj(x), proj(y)) = -(x cross y) . forward = -forward_z.
    A mirror (e.g. a flip instead of a rotation) reverses this sign.
    """
    got = probe[camera]
    base = _screen(got["base"])
    a, b = _screen(got["x"]) - base, _screen(got["y"]) - base
    cross = a[0] * b[1] - a[1] * b[0]
    expected = -probe[camera]["forward"][2]
    assert abs(cross) > 20, f"{camera}: gripper moves barely visible ({a}, {b})"
    assert np.sign(cross) == np.sign(expected), f"{camera}: frame is mirrored"


def test_topview_shows_the_table_beyond_the_robot_at_the_top(probe: dict) -> None:
    got = probe["topview"]
    assert got["y"][0] < got["base"][0] - 3  # moving away from the robot (+y) goes up the frame


def test_upright_rotates_corner_cameras_by_half_a_turn() -> None:
    frame = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    assert np.array_equal(render.upright(frame, "corner"), frame[::-1, ::-1])
    assert np.array_equal(render.upright(frame, "topview"), frame)


def test_unknown_camera_error_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="did you mean 'corner2'.*valid cameras: corner"):
        render.check_camera("corner22")


def test_missing_gl_libraries_give_one_line_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(render.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(RenderError) as info:
        render.configure_gl()
    message = str(info.value)
    assert "\n" not in message and "libosmesa6" in message and "EGL" in message
