"""Exact, faster stand-ins for the slowest pure-Python parts of a Meta-World step.

A Meta-World v3 step spends as much time in Python as in MuJoCo or more
(``bench/step_costs.py``; figures in README, "Measured"). Three calls stand out:

- ``Rotation.from_matrix(xmat).as_quat()`` (scipy), which 22 classes call
  every step for an object's orientation in the observation; its cost is
  mostly array-API dispatch. :class:`Rotation` computes
  the same quaternion on plain floats, with scipy's formulas
  in scipy's order (Markley's method on the largest of the diagonal and the
  trace, then normalisation), so the result is scipy's bit for bit.
- ``SawyerXYZEnv.touching_object`` (the grasp test in 14 classes' rewards),
  which walks ``data.contact`` in Python twice.
  :func:`touching_object` selects the same contacts from MuJoCo's contact
  arrays and sums their forces in the same order, so it returns the same value.
- ``SawyerXYZEnv._get_curr_obs_combined_no_goal`` (every class, every step),
  which splits and re-stacks small arrays: :func:`curr_obs_no_goal` writes
  the same values straight into one array.

:func:`install` puts them in place (the trial envs call it before building a
Meta-World env); :func:`originals` puts Meta-World's own back for a block,
which is how the tests compare whole episodes of every class bit for bit
(``tests/envs/test_fast_metaworld.py``). Anything our Rotation does not
handle exactly (a stack of matrices, a matrix scipy would re-orthogonalise
or reject, other arguments) goes to scipy itself.
``METARL_FAST_METAWORLD=0`` keeps Meta-World as it is.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from typing import Any, Iterator

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


def touching_object(self: Any, object_geom_id: int) -> bool:
    """``SawyerXYZEnv.touching_object`` on MuJoCo's contact arrays: both finger pads push on the object."""
    data = self.data
    contact = data.contact
    g1, g2 = contact.geom1, contact.geom2  # (ncon,) each
    on_object = (g1 == object_geom_id) | (g2 == object_geom_id)
    forces = []
    for pad in ("leftpad_geom", "rightpad_geom"):
        pad_id = data.geom(pad).id
        total = 0  # summed in contact order from int 0, as Meta-World's ``sum`` does
        for address in contact.efc_address[((g1 == pad_id) | (g2 == pad_id)) & on_object].tolist():
            total = total + data.efc_force[address]
        forces.append(total)
    return 0 < forces[0] and 0 < forces[1]


def curr_obs_no_goal(self: Any) -> np.ndarray:
    """``SawyerXYZEnv._get_curr_obs_combined_no_goal`` without its array splitting and stacking:
    hand position, finger gap / 0.1 clipped to [0, 1], then (position, quaternion) per object,
    zero-padded to ``_obs_obj_max_len``; the same values written straight into one (18,) array."""
    pos_hand = self.get_endeff_pos()
    gap = np.linalg.norm(self.data.body("rightclaw").xpos - self.data.body("leftclaw").xpos) / 0.1
    if gap < 0.0:  # np.clip's result, NaN passing through
        gap = 0.0
    elif gap > 1.0:
        gap = 1.0
    obj_pos, obj_quat = self._get_pos_objects(), self._get_quat_objects()
    assert len(obj_pos) % 3 == 0 and len(obj_quat) % 4 == 0
    objects = len(obj_pos) // 3
    if objects != len(obj_quat) // 4:  # Meta-World's zip would drop the extras: let it decide
        return _theirs("_get_curr_obs_combined_no_goal")(self)
    out = np.zeros(4 + self._obs_obj_max_len)  # (18,)
    out[:3], out[3] = pos_hand, gap
    for k in range(objects):
        out[4 + 7 * k : 7 + 7 * k] = obj_pos[3 * k : 3 * k + 3]
        out[7 + 7 * k : 11 + 7 * k] = obj_quat[4 * k : 4 * k + 4]
    return out


_patched: list[tuple[Any, str, Any, Any]] = []  # (owner, attribute, Meta-World's, ours)


def _theirs(attr: str) -> Any:
    """Meta-World's own version of a patched attribute."""
    return next(theirs for _, name, theirs, _ in _patched if name == attr)


def install() -> list[str]:
    """Put the stand-ins in place; the names of what was patched. Idempotent.

    Off (patches nothing) when ``METARL_FAST_METAWORLD`` is "0".
    """
    if not _patched and os.environ.get("METARL_FAST_METAWORLD", "1") != "0":
        import metaworld.envs  # noqa: F401 - every v3 env module; slow, and only once a Meta-World env is built
        from metaworld.sawyer_xyz_env import SawyerXYZEnv

        for name, module in list(sys.modules.items()):
            if name.startswith("metaworld.") and getattr(module, "Rotation", None) is ScipyRotation:
                _patched.append((module, "Rotation", ScipyRotation, Rotation))
        _patched.append((SawyerXYZEnv, "touching_object", SawyerXYZEnv.touching_object, touching_object))
        _patched.append((SawyerXYZEnv, "_get_curr_obs_combined_no_goal",
                         SawyerXYZEnv._get_curr_obs_combined_no_goal, curr_obs_no_goal))
        for owner, attr, _, ours in _patched:
            setattr(owner, attr, ours)
    return [f"{getattr(owner, '__name__', owner)}.{attr}" for owner, attr, _, _ in _patched]


@contextlib.contextmanager
def originals() -> Iterator[None]:
    """Meta-World's own code for the duration of the block (for comparisons)."""
    for owner, attr, theirs, _ in _patched:
        setattr(owner, attr, theirs)
    try:
        yield
    finally:
        for owner, attr, _, ours in _patched:
            setattr(owner, attr, ours)
