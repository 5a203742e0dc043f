"""Do forget-memory's gates react to an unannounced switch? Gates by attempt, switching trials vs stationary ones.

One memory picture shows one trial; this averages many. For a run with memory
diagnostics it plays N held-out trials (deterministic, trial seeds 0..N-1) twice:
with one unannounced switch (``task_switches=1``) and without. Per attempt it
reports the mean forget gate and the share of closed gates (below 0.2) after
the attempt's first steps, aligned to the switch (-1: the attempt before it, 0: the
first on the new task) and, for the stationary trials, by attempt (0: the first). A gate
that reacts to the switch shows as more closed gates at 0 and +1 than at any
attempt of the stationary trials.

    python experiments/gates_around_switch.py RUN_DIR [RUN_DIR ...] --trials 20 [--out gates.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metarl.checkpoint import load_agent
from metarl.diagnostics import trace_memory

CLOSED = 0.2  # a gate below this keeps less than a fifth of its slot per step
SKIP = 15  # the first steps of an attempt, where every cell's gates open and close on the reset (all but
# the last step of shorter attempts)


def gates_by_attempt(run_dir: Path, trials: int, task_switches: int) -> dict[int, dict[str, float]]:
    """Mean gate and share of closed gates per attempt (relative to the switch when there is one)."""
    agent = load_agent(run_dir)
    env = agent.config.env
    rows: dict[int, list[tuple[float, float]]] = {}
    for seed in range(trials):
        m = trace_memory(agent, env.benchmark, seed=seed, episodes_per_trial=env.episodes_per_trial,
                         max_episode_steps=env.max_episode_steps, task_switches=task_switches)
        if "forget" not in m:
            raise SystemExit(f"gates_around_switch.py: {run_dir}'s cell reports no forget gates")
        attempts = len(m["episode_starts"])  # the env's, where the config leaves the benchmark's default
        steps = m["forget"].shape[0] // attempts
        skip = min(SKIP, steps - 1)  # a bandit's one-pull attempts keep their one step
        per = m["forget"].reshape(attempts, steps, -1)[:, skip:]  # (K, T - skip, slots)
        origin = int(m["switch_steps"][0]) // steps if task_switches else 0
        for k in range(attempts):
            rows.setdefault(k - origin, []).append((float(per[k].mean()), float((per[k] < CLOSED).mean())))
    return {k: {"mean_gate": float(np.mean([r[0] for r in v])), "closed": float(np.mean([r[1] for r in v])),
                "trials": len(v)} for k, v in sorted(rows.items())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories with checkpoints/last.pt")
    p.add_argument("--trials", type=int, default=20, help="held-out trials played per condition")
    p.add_argument("--out", type=Path, default=None, help="write the tables here as JSON")
    args = p.parse_args(argv)
    result = {}
    for run in args.runs:
        result[str(run)] = {"switch": gates_by_attempt(run, args.trials, 1), "stationary": gates_by_attempt(run, args.trials, 0)}
        for kind, table in result[str(run)].items():
            label = "attempt vs switch" if kind == "switch" else "attempt"
            print(f"{run} {kind}: closed gates by {label} "
                  + ", ".join(f"{k:+d}: {v['closed']:.3f} (n={v['trials']})" if kind == "switch" else f"{k + 1}: {v['closed']:.3f}"
                              for k, v in table.items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
