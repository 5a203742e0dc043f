"""CPU cost of one env step for every Meta-World v3 class, with scipy's and our quaternions.

For each of the 50 classes (ML45 train + test), one env steps random actions
in alternating rounds: with Meta-World's own ``scipy`` ``Rotation`` and with
``metarl.envs.fast_rotation`` (bit-identical quaternions). Prints the median
ms per step of each and their ratio, then the ``STEP_COST_MS`` table that
``envs/metaworld_tasks.py`` uses to balance vector-env workers (fast column).

    python bench/step_costs.py [--steps 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from scipy.spatial.transform import Rotation as ScipyRotation

from metarl.envs import make_env, tasks
from metarl.envs.fast_rotation import Rotation, install


def time_steps(env, name: str, module, rotation, steps: int, rng: np.random.Generator) -> float:
    """ms per step over one ``steps``-step episode of class ``name`` with ``rotation`` in its module."""
    env.reset(options={"task": (name, 0)})
    had = module.__dict__.get("Rotation")
    if had is not None:
        module.Rotation = rotation
    actions = rng.uniform(-1, 1, (steps, 4)).astype(np.float32)
    try:
        t0 = time.perf_counter()
        for a in actions:
            env.step(a)
        return (time.perf_counter() - t0) / steps * 1e3
    finally:
        if had is not None:
            module.Rotation = had


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3, help="rounds per variant (median)")
    a = p.parse_args(argv)
    install()
    rng = np.random.default_rng(0)
    fast_costs: dict[str, float] = {}
    ratios = []
    print(f"{'class':30s} {'scipy ms':>9s} {'fast ms':>8s} {'ratio':>6s}")
    for split in ("train", "test"):
        env = make_env("ML45", split=split, max_episode_steps=a.steps, seed=0)
        for name in tasks("ML45", split):
            env.reset(options={"task": (name, 0)})  # builds the class's env
            module = sys.modules[type(env._core.env).__module__]
            slow, fast = [], []
            for _ in range(a.rounds):  # alternate, so drifts in machine load hit both
                slow.append(time_steps(env, name, module, ScipyRotation, a.steps, rng))
                fast.append(time_steps(env, name, module, Rotation, a.steps, rng))
            s, f = statistics.median(slow), statistics.median(fast)
            fast_costs[name] = f
            uses = module.__dict__.get("Rotation") is Rotation
            ratios.append(s / f) if uses else None
            print(f"{name:30s} {s:9.3f} {f:8.3f} {s / f:6.2f}{'' if uses else '   (no Rotation)'}")
        env.close()
    print(f"median ratio over the {len(ratios)} classes that use Rotation: {statistics.median(ratios):.2f}")
    print("\nSTEP_COST_MS: dict[str, float] = {")
    items = [f'"{k}": {v:.2f}' for k, v in sorted(fast_costs.items())]
    line = "   "
    for item in items:
        if len(line) + len(item) + 2 > 110:
            print(line)
            line = "   "
        line += " " + item + ","
    print(line + "\n}")
    return fast_costs


if __name__ == "__main__":
    main()
