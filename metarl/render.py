"""Headless rendering of Meta-World scenes: GL backend choice, cheap settings, upright frames.

Why this module exists (see /work/shared/notes/metaworld.md):
- MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when it is first imported,
  so :func:`configure_gl` must run before ``mujoco``/``metaworld`` are imported
  (it can still repair the choice afterwards if PyOpenGL has not been loaded).
- Software rendering (OSMesa) is slow with shadows and multisampling; with
  shadows/reflections off, ``shadowsize = 0`` and ``offsamples = 0`` it is
  several times cheaper (figures: README, "Measured").
- Meta-World's fixed ``corner*`` cameras are rolled by 180 degrees: their frames
  must be rotated (not mirrored) to come out upright.
- Freeing one GL context can black out other live ones in the same process, so a
  :class:`FrameRenderer` is closed only when the caller is done with all frames.
"""

from __future__ import annotations

import ctypes.util
import difflib
import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl.errors import CLIError

# camera name -> number of quarter turns (np.rot90 k) that make its frames upright.
# Only fixed cameras: the gripper-mounted ones (behindGripper, gripperPOV) move
# with the hand, so "upright" has no fixed meaning for them.
CAMERAS: dict[str, int] = {
    "corner": 2,
    "corner2": 2,
    "corner3": 2,
    "corner4": 2,
    "topview": 0,
}

_INSTALL_HINT = (
    "no headless OpenGL backend found: install OSMesa for CPU rendering "
    "(apt-get install libosmesa6) or EGL for GPU rendering (NVIDIA driver with libEGL, "
    "or apt-get install libegl1)"
)


class RenderError(CLIError):
    """Rendering is impossible here; the message is one line saying what to install (the CLI prints it)."""


def check_camera(name: str) -> str:
    """Return ``name`` if it is a supported camera, else raise ValueError listing valid names."""
    if name in CAMERAS:
        return name
    close = difflib.get_close_matches(name, list(CAMERAS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown camera {name!r}{hint}; valid cameras: {', '.join(CAMERAS)}")


def _has_lib(name: str) -> bool:
    return ctypes.util.find_library(name) is not None


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def default_every(backend: str) -> int:
    """Render every step with EGL on a GPU; every 4th in software, several times slower a frame (README, "Measured")."""
    return 1 if backend == "egl" and _gpu_present() else 4


def choose_backend() -> str:
    """The GL backend to use: ``MUJOCO_GL`` if set, else EGL on a GPU, else OSMesa, else EGL."""
    current = os.environ.get("MUJOCO_GL", "").strip().lower()
    if current in ("egl", "osmesa"):
        return current
    if _gpu_present() and _has_lib("EGL"):
        return "egl"
    if _has_lib("OSMesa"):
        return "osmesa"
    if _has_lib("EGL"):
        return "egl"
    raise RenderError(_INSTALL_HINT)


def configure_gl(backend: str | None = None) -> str:
    """Select a headless GL backend for MuJoCo and return its name ('egl' or 'osmesa').

    Call before importing mujoco/metaworld in processes that render. If mujoco is
    already imported with another backend, its context class is swapped, which
    works as long as PyOpenGL has not been bound to a different platform yet.
    Only rendering code paths should call this (not library import paths).
    """
    backend = (backend or choose_backend()).lower()
    if backend not in ("egl", "osmesa"):
        raise ValueError(f"unknown GL backend {backend!r}; valid: egl, osmesa")
    lib = "EGL" if backend == "egl" else "OSMesa"
    if not _has_lib(lib):
        raise RenderError(_INSTALL_HINT)
    platform = os.environ.get("PYOPENGL_PLATFORM")
    if "OpenGL.platform" in sys.modules and platform and platform != backend:
        raise RenderError(
            f"PyOpenGL is already bound to {platform!r} in this process; "
            f"set MUJOCO_GL={backend} PYOPENGL_PLATFORM={backend} before starting Python"
        )
    os.environ["MUJOCO_GL"] = backend
    os.environ["PYOPENGL_PLATFORM"] = backend
    if "mujoco" in sys.modules:
        from mujoco import gl_context  # only when mujoco is already loaded: importing it picks the backend

        if getattr(gl_context, "_MUJOCO_GL", "") != backend:
            module = importlib.import_module(f"mujoco.{backend}")
            gl_context.GLContext = module.GLContext
            gl_context._MUJOCO_GL = backend
    return backend


def upright(frame: np.ndarray, camera: str) -> np.ndarray:
    """Turn a raw frame (H, W, C) from ``camera`` so that world-up points up in the image."""
    k = CAMERAS[check_camera(camera)]
    return np.ascontiguousarray(np.rot90(frame, k)) if k else frame


@dataclass
class RenderSettings:
    """Cheap-but-readable render settings (shadows/reflections/multisampling are costly on CPU)."""

    size: int = 480
    shadows: bool = False
    reflections: bool = False


class FrameRenderer:
    """Renders upright RGB frames of a MuJoCo model/data pair from a named fixed camera.

    Uses ``mujoco.Renderer`` directly (independent of the env's ``render_mode``).
    Keep it alive while any frame is still to be rendered in this process.
    """

    def __init__(self, model: Any, data: Any, camera: str = "corner2", settings: RenderSettings | None = None):
        import mujoco  # after configure_gl: MuJoCo reads MUJOCO_GL when first imported

        self.settings = settings or RenderSettings()
        self.camera = check_camera(camera)
        self.model, self.data = model, data
        size = int(self.settings.size)
        if size < 16:
            raise ValueError(f"render size must be at least 16 pixels, got {size}")
        # the offscreen buffer must hold the frame; quality knobs only act before the context exists
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), size)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), size)
        if not self.settings.shadows:
            model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0
        try:
            self._renderer = mujoco.Renderer(model, height=size, width=size)
        except Exception as exc:  # GL context creation failed: say what to install, in one line
            raise RenderError(f"{_INSTALL_HINT} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(self.settings.shadows)
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(self.settings.reflections)

    def render(self) -> np.ndarray:
        """One upright frame (size, size, 3) uint8 of the current simulation state."""
        self._renderer.update_scene(self.data, camera=self.camera)
        return upright(self._renderer.render(), self.camera)

    def close(self) -> None:
        self._renderer.close()


def mujoco_handles(env: Any) -> tuple[Any, Any]:
    """Find the MuJoCo (model, data) of a (wrapped) env.

    Walks gymnasium wrappers (``.env``), ``.unwrapped`` and a trial env's current
    core (``TrialEnv.core``: call after ``reset``).
    """
    seen = 0
    cur = env
    while cur is not None and seen < 32:
        model, data = getattr(cur, "model", None), getattr(cur, "data", None)
        if model is not None and data is not None and hasattr(model, "vis"):
            return model, data
        unwrapped = getattr(cur, "unwrapped", None)
        nxt = getattr(cur, "env", None) or getattr(cur, "core", None)
        if nxt is None and unwrapped is not cur:
            nxt = unwrapped
        cur, seen = nxt, seen + 1
    raise ValueError(f"{type(env).__name__} has no MuJoCo model to render (not a Meta-World env?)")
