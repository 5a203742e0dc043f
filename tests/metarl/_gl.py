"""Whether this machine renders headless (EGL or OSMesa), for the tests that need GL."""

from __future__ import annotations

import functools

import pytest

from metarl.render import RenderError, choose_backend

NO_GL = "no headless GL library (apt-get install libosmesa6)"


@functools.lru_cache(maxsize=1)
def gl_available() -> bool:
    try:
        choose_backend()
    except RenderError:
        return False
    return True


def skip_without_gl() -> None:
    """Skip the calling test (or fixture) where no GL backend can be chosen."""
    if not gl_available():
        pytest.skip(NO_GL)


needs_gl = pytest.mark.skipif(not gl_available(), reason=NO_GL)
