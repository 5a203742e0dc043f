"""The fast quaternion stand-in equals scipy's ``Rotation.from_matrix(m).as_quat()`` bit for bit."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation as ScipyRotation

from metarl.envs import make_env, tasks
from metarl.envs.fast_rotation import Rotation, install, quat_from_matrix


def _matrices() -> np.ndarray:
    rots = ScipyRotation.random(5000, random_state=1).as_matrix()  # (5000, 3, 3)
    # Ties in scipy's argmax (identity, half turns) and near-degenerate traces.
    special = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    special += [ScipyRotation.from_rotvec([0.0, 0.0, np.pi - 1e-9]).as_matrix()]
    return np.concatenate([rots, np.stack(special)])


def test_quaternions_equal_scipy_bit_for_bit():
    for m in _matrices():
        assert np.array_equal(Rotation.from_matrix(m).as_quat(), ScipyRotation.from_matrix(m).as_quat()), m


def test_matrices_scipy_would_fix_or_reject_go_to_scipy():
    skewed = np.eye(3) + 1e-6  # not orthogonal: scipy projects it onto a rotation
    assert quat_from_matrix(skewed) is None
    assert np.array_equal(Rotation.from_matrix(skewed).as_quat(), ScipyRotation.from_matrix(skewed).as_quat())
    stack = _matrices()[:3]  # (3, 3, 3)
    assert np.array_equal(Rotation.from_matrix(stack).as_quat(), ScipyRotation.from_matrix(stack).as_quat())
    with pytest.raises(ValueError, match="determinant"):
        Rotation.from_matrix(np.diag([1.0, 1.0, -1.0]))  # left-handed: scipy's own error
    m = _matrices()[7]
    assert np.array_equal(Rotation.from_matrix(m).as_quat(scalar_first=True),
                          ScipyRotation.from_matrix(m).as_quat(scalar_first=True))


def test_metaworld_observations_unchanged_in_every_class():
    """Every ML45 class (train and test: all 50) steps with random actions; at every step the
    observation part computed with ``Rotation`` (object quaternions) is recomputed with scipy's."""
    patched = install()
    assert "metaworld.envs.sawyer_reach_v3" in patched
    rng = np.random.default_rng(0)
    checked = set()
    for split in ("train", "test"):
        env = make_env("ML45", split=split, max_episode_steps=40, seed=0)
        for name in tasks("ML45", split):
            env.reset(options={"task": (name, 0)})
            mw = env._core.env
            module = sys.modules[type(mw).__module__]
            if module.__dict__.get("Rotation") is not Rotation:
                continue
            for t in range(40):
                env.step(rng.uniform(-1, 1, 4).astype(np.float32))
                ours = mw._get_curr_obs_combined_no_goal()
                module.Rotation = ScipyRotation
                try:
                    theirs = mw._get_curr_obs_combined_no_goal()
                finally:
                    module.Rotation = Rotation
                assert np.array_equal(ours, theirs), (name, t)
            checked.add(module.__name__)
        env.close()
    assert checked == set(patched)  # every patched module belongs to a class that was checked
