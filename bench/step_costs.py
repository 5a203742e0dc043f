"""CPU cost of one env step for every Meta-World v3 class, with Meta-World's code and ours.

For each of the 50 classes (ML45 train + test), one env steps random actions
in alternating rounds: with Meta-World's own code and with the exact
stand-ins of ``metarl.envs.fast_metaworld`` (bit-identical episodes). Prints
the median ms per step of each and their ratio, then the ``STEP_COST_MS``
table that ``envs/metaworld_tasks.py`` uses to balance vector-env workers
(the fast column).

    python bench/step_costs.py [--steps 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np

from metarl.envs import make_env, tasks
from metarl.envs.fast_metaworld import install, originals


def time_steps(env, name: str, fast: bool, steps: int, rng: np.random.Generator) -> float:
    """ms per step over one ``steps``-step episode of class ``name``, with our stand-ins or without."""
    env.reset(options={"task": (name, 0)})
    actions = rng.uniform(-1, 1, (steps, 4)).astype(np.float32)
    with contextlib.nullcontext() if fast else originals():
        t0 = time.perf_counter()
        for a in actions:
            env.step(a)
        return (time.perf_counter() - t0) / steps * 1e3


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3, help="rounds per variant (median)")
    a = p.parse_args(argv)
    patched = install()
    rotations = [p for p in patched if p.endswith(".Rotation")]
    others = [p for p in patched if not p.endswith(".Rotation")]
    print(f"stand-ins: {len(rotations)} modules' Rotation, {', '.join(others)}" if patched
          else "stand-ins: none (METARL_FAST_METAWORLD=0)")
    rng = np.random.default_rng(0)
    fast_costs: dict[str, float] = {}
    slow_costs: dict[str, float] = {}
    ratios = []
    print(f"{'class':30s} {'MW ms':>9s} {'ours ms':>8s} {'ratio':>6s}")
    for split in ("train", "test"):
        env = make_env("ML45", split=split, max_episode_steps=a.steps, seed=0)
        for name in tasks("ML45", split):
            slow, fast = [], []
            for _ in range(a.rounds):  # alternate, so drifts in machine load hit both
                slow.append(time_steps(env, name, False, a.steps, rng))
                fast.append(time_steps(env, name, True, a.steps, rng))
            s, f = statistics.median(slow), statistics.median(fast)
            fast_costs[name], slow_costs[name] = f, s
            ratios.append(s / f)
            print(f"{name:30s} {s:9.3f} {f:8.3f} {s / f:6.2f}")
        env.close()
    mw_mean, ours_mean = statistics.mean(slow_costs.values()), statistics.mean(fast_costs.values())
    print(f"50 classes: median ratio {statistics.median(ratios):.2f}; mean ms per step {mw_mean:.3f} -> "
          f"{ours_mean:.3f} (an even mix of classes steps {mw_mean / ours_mean:.2f}x as fast)")
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
