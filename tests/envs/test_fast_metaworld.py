"""metarl's Meta-World speed-ups change nothing: scipy's quaternions and whole episodes, bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation as ScipyRotation

from metarl.envs import make_env, tasks
from metarl.envs.fast_metaworld import Rotation, install, originals, quat_from_matrix


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


def _touching(env) -> bool | None:
    """``touching_main_object``, or None where Meta-World's own main-object lookup is broken."""
    try:
        return env.touching_main_object
    except (AttributeError, KeyError):  # e.g. assembly-v3 calls a MuJoCo API that no longer exists
        return None


@pytest.mark.filterwarnings("ignore:Constant")  # the scripted policies' gain warning
def test_every_class_steps_identically_with_and_without_the_speedups():
    """All 50 classes (ML45 train and test), two envs in lockstep on the same task and actions:
    one steps with Meta-World's own code, one with ours. Actions come from Meta-World's scripted
    policies plus noise, so grippers close on objects (the contact test's True branch runs)."""
    from metaworld.policies import ENV_POLICY_MAP

    patched = install()
    assert "SawyerXYZEnv.touching_object" in patched and "metaworld.envs.sawyer_reach_v3.Rotation" in patched
    rng = np.random.default_rng(0)
    steps, grasped, classes = 60, 0, 0
    for split in ("train", "test"):
        theirs_env, ours_env = (make_env("ML45", split=split, max_episode_steps=steps, seed=0) for _ in range(2))
        for name in tasks("ML45", split):
            with originals():
                theirs_env.reset(options={"task": (name, 0)})
            obs, _ = ours_env.reset(options={"task": (name, 0)})
            theirs, ours = theirs_env._core.env, ours_env._core.env
            expert = ENV_POLICY_MAP[name]()
            for t in range(steps):
                action = expert.get_action(obs[:39].astype(np.float64)) + rng.normal(0.0, 0.3, 4)  # env obs part
                action = np.clip(action, -1, 1).astype(np.float32)
                with originals():
                    want = theirs_env.step(action)
                    want_touch = _touching(theirs)
                got = ours_env.step(action)
                obs = got[0]
                assert np.array_equal(ours._last_stable_obs, theirs._last_stable_obs), (name, t)
                assert np.array_equal(got[0], want[0]) and got[1:4] == want[1:4], (name, t)
                assert got[4].keys() == want[4].keys(), (name, t)
                for key, value in want[4].items():
                    assert np.array_equal(got[4][key], value), (name, t, key)
                assert _touching(ours) == want_touch, (name, t)
                grasped += bool(want_touch)
            classes += 1
        theirs_env.close()
        ours_env.close()
    assert classes == 50
    assert grasped > 0  # the contact test returned True somewhere, and ours agreed


@pytest.mark.parametrize("flag", ["1", "0"])
def test_trial_envs_use_the_speedups_unless_switched_off(flag):
    """A fresh process: building a Meta-World trial env installs the stand-ins; METARL_FAST_METAWORLD=0 keeps
    Meta-World's code."""
    code = (
        "from metarl.envs import make_env\n"
        "from metaworld.sawyer_xyz_env import SawyerXYZEnv\n"
        "from metarl.envs import fast_metaworld\n"
        "make_env('ML1/push-v3', seed=0).reset(seed=0)\n"
        "print(SawyerXYZEnv.touching_object is fast_metaworld.touching_object)\n"
    )
    env = dict(os.environ, METARL_FAST_METAWORLD=flag)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == ("True" if flag == "1" else "False")
