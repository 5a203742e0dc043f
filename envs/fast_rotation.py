"""An exact, fast stand-in for the one scipy call Meta-World makes every step.

22 of Meta-World's v3 envs build their observation with
``Rotation.from_matrix(xmat).as_quat()`` (an object's orientation as a
quaternion). For one 3x3 matrix scipy spends about 190 us on it, a quarter
of a whole env step, mostly on array-API dispatch. :class:`Rotation` here
computes the same quaternion in plain floats in about 2 us, with scipy's own
formulas in scipy's own order (Markley's method on the largest of the
diagonal and the trace, then normalisation), so the result is bit for bit
scipy's (``tests/envs/test_fast_rotation.py`` checks random rotations and
whole Meta-World episodes of every class against scipy).

Anything else (a stack of matrices, a matrix scipy would re-orthogonalise or
reject, any other method or argument) goes to scipy itself.

:func:`install` swaps it into the Meta-World env modules that import scipy's
``Rotation``; the trial envs call it before building a Meta-World env.
``METARL_SCIPY_ROTATION=1`` turns it off.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation as ScipyRotation

#: scipy's orthogonality test: ``isclose(M Mᵀ, I, atol=1e-12)`` with numpy's default rtol.
_ATOL, _RTOL = 1e-12, 1e-5


def _orthonormal(m: list[list[float]]) -> bool:
    """True when scipy would use ``m`` as is: positive determinant, M Mᵀ within isclose of I."""
    (a, b, c), (d, e, f), (g, h, i) = m
    if a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g) <= 0.0:
        return False
    for r in range(3):
        for s in range(r, 3):
            dot = m[r][0] * m[s][0] + m[r][1] * m[s][1] + m[r][2] * m[s][2]
            want = 1.0 if r == s else 0.0
            if not abs(dot - want) <= _ATOL + _RTOL * want:
                return False
    return True


def quat_from_matrix(matrix: Any) -> np.ndarray | None:
    """(x, y, z, w) of one proper 3x3 rotation matrix, as scipy computes it; None if scipy must decide."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3):
        return None
    rows = m.tolist()
    if not _orthonormal(rows):
        return None
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = rows
    trace = m00 + m11 + m22
    best = max(m00, m11, m22, trace)  # scipy's argmax: the first of equal maxima wins
    if m00 == best:
        q = (1 - trace + 2 * m00, m10 + m01, m20 + m02, m21 - m12)
    elif m11 == best:
        q = (m10 + m01, 1 - trace + 2 * m11, m21 + m12, m02 - m20)
    elif m22 == best:
        q = (m20 + m02, m21 + m12, 1 - trace + 2 * m22, m10 - m01)
    else:
        q = (m21 - m12, m02 - m20, m10 - m01, 1 + trace)
    x, y, z, w = q
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    return np.array([x / norm, y / norm, z / norm, w / norm])


class _Quat:
    """What ``Rotation.from_matrix(m)`` returns here: enough of a Rotation for ``as_quat()``."""

    __slots__ = ("_q",)

    def __init__(self, q: np.ndarray) -> None:
        self._q = q

    def as_quat(self, canonical: bool = False, *, scalar_first: bool = False) -> np.ndarray:
        if canonical or scalar_first:
            return ScipyRotation.from_quat(self._q).as_quat(canonical=canonical, scalar_first=scalar_first)
        return self._q.copy()


class Rotation(ScipyRotation):
    """scipy's ``Rotation`` with the fast single-matrix ``from_matrix`` (everything else inherited)."""

    @staticmethod
    def from_matrix(matrix: Any, *args: Any, **kwargs: Any) -> Any:
        q = None if (args or kwargs) else quat_from_matrix(matrix)
        return ScipyRotation.from_matrix(matrix, *args, **kwargs) if q is None else _Quat(q)


_installed: list[str] = []


def install() -> list[str]:
    """Put :class:`Rotation` into the Meta-World env modules that use scipy's; their names.

    Idempotent (the first call does the work). Off when ``METARL_SCIPY_ROTATION`` is set (not "0").
    """
    if os.environ.get("METARL_SCIPY_ROTATION", "0") != "0" or _installed:
        return _installed
    import metaworld.envs  # noqa: F401 - imports every v3 env module

    for name, module in list(sys.modules.items()):
        if name.startswith("metaworld.") and getattr(module, "Rotation", None) is ScipyRotation:
            module.Rotation = Rotation
            _installed.append(name)
    return _installed
