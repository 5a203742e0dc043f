"""Can the bandit show learned forgetting at all? Thompson samplers with and without forgetting on its switching trials.

A learned cell can gain from forgetting only what an agent that forgets *well*
gains over one that never forgets. This plays three hand-written Thompson
samplers (Beta(1, 1) prior per arm, posterior from the previous action and
reward the trial observation carries) through the same held-out evaluation as
the learned agents (``metarl.evaluate.evaluate_agent``, one unannounced switch per
trial, the around-switch table) on ``bandit`` or ``bandit-onehot``:

- ``keep``: every pull since the trial start counts (no forgetting);
- ``decay``: each pull's evidence is multiplied by ``--decay`` per later pull
  (forgetting by design, what forget-memory's leaky slots do);
- ``oracle``: told of the switch (``info["task_switched"]``, after the switched
  attempt's first pull, when any agent could first notice it), it drops the
  evidence gathered before the switch: the best forgetting there is.

If ``oracle`` is not better than ``keep`` after the switch, no memory can show
that forgetting helps on this task, whatever it learns.

    python experiments/bandit_ceiling.py --out ceiling.json [--benchmark bandit-onehot] [--attempts 8] \
      [--trials 500] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl import stats
from metarl.envs import make_env
from metarl.envs.obs_layout import ObsLayout
from metarl.evaluate import evaluate_agent

BENCHMARKS = ("bandit", "bandit-onehot")
VARIANTS = ("keep", "decay", "oracle")


@dataclass
class ThompsonAgent:
    """Thompson sampling over the arms; ``initial_state``/``act`` as :class:`metarl.agent.Agent`.

    State: (N, 2, A) Beta parameters (alpha, beta) per env and arm. ``decay`` < 1 shrinks
    old evidence toward the prior before each new pull; :meth:`on_step` (``oracle``) resets
    an env's evidence on the switch, keeping the switched attempt's own pull.
    """

    layout: ObsLayout
    reward_scale: float
    decay: float = 1.0
    oracle: bool = False
    seed: int = 0
    config: Any = None  # no training config: evaluate_agent is told the benchmark
    rng: np.random.Generator = field(init=False)
    pending: np.ndarray = field(init=False)  # (N,) bool: the switch was announced, not yet acted on
    forgets: int = field(init=False, default=0)  # how many times the oracle dropped the evidence

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.pending = np.zeros(0, dtype=bool)

    def initial_state(self, batch_size: int) -> np.ndarray:
        self.pending = np.zeros(batch_size, dtype=bool)
        return np.ones((batch_size, 2, self.layout.action_dim))  # (N, 2, A)

    def act(self, obs: np.ndarray, state: np.ndarray, deterministic: bool = True, diagnostics: bool = False):
        """Book the previous pull, then pull the arm with the highest posterior sample (always sampled:
        Thompson sampling is the sampling; ``deterministic`` does not apply)."""
        state = state.copy()
        start = obs[:, self.layout.trial_start] > 0.5  # (N,) no previous pull in this trial
        state[start] = 1.0
        reset = self.pending & ~start
        state[reset] = 1.0  # the oracle: evidence from before the switch dropped
        self.forgets += int(reset.sum())
        self.pending[:] = False
        rows = np.flatnonzero(~start)
        if rows.size:
            state[rows] = 1.0 + self.decay * (state[rows] - 1.0)
            arm = np.argmax(obs[rows, self.layout.action], axis=1)  # (R,) the arm pulled last
            reward = obs[rows, self.layout.reward] / self.reward_scale  # (R,) 0 or 1
            state[rows, 0, arm] += reward
            state[rows, 1, arm] += 1.0 - reward
        sample = self.rng.beta(state[:, 0], state[:, 1])  # (N, A)
        action = np.full(sample.shape, -1.0, dtype=np.float32)
        action[np.arange(len(sample)), np.argmax(sample, axis=1)] = 1.0
        if diagnostics:
            return action, state, {}
        return action, state

    def on_step(self, step: Any, infos: dict[str, np.ndarray], done: np.ndarray) -> None:
        """``evaluate_agent``'s ``on_step``: the oracle hears of a switch once the switched attempt's pull is made."""
        if self.oracle:
            self.pending |= np.asarray(infos["task_switched"], dtype=bool)


def make_agent(variant: str, decay: float, seed: int, benchmark: str = "bandit") -> ThompsonAgent:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    env = make_env(benchmark)
    layout, scale = env.obs_layout, float(env.reward_scale)
    env.close()
    decay = decay if variant == "decay" else 1.0
    return ThompsonAgent(layout, scale, decay=decay, oracle=variant == "oracle", seed=seed)


def around_switch(variant: str, attempts: int, trials: int, seed: int, decay: float, benchmark: str = "bandit") -> dict:
    """One variant's held-out around-switch table (one evaluation seed)."""
    agent = make_agent(variant, decay, seed, benchmark)
    result = evaluate_agent(agent, benchmark=benchmark, split="test", trials=trials, episodes_per_trial=attempts,
                            seed=seed, task_switches=1, on_step=agent.on_step)
    (table,) = [t["around_switch"] for t in result["tasks"].values()]  # the bandit has one class
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--benchmark", default="bandit", choices=BENCHMARKS)
    p.add_argument("--attempts", type=int, default=8, help="one-pull attempts per trial (forgetting.py's bandit: 8)")
    p.add_argument("--trials", type=int, default=500, help="held-out trials per seed (the 50 goals, over and over)")
    p.add_argument("--seeds", type=int, default=5, help="evaluation seeds (the CI is across them)")
    p.add_argument("--decay", type=float, default=0.7, help="evidence kept per later pull by the decay variant")
    args = p.parse_args(argv)
    if not 0.0 < args.decay <= 1.0:
        raise SystemExit(f"bandit_ceiling.py: --decay must be in (0, 1], got {args.decay}")
    out: dict[str, Any] = {"benchmark": args.benchmark, "attempts": args.attempts, "trials": args.trials,
                           "decay": args.decay, "variants": {}}
    for variant in VARIANTS:
        tables = [around_switch(variant, args.attempts, args.trials, seed, args.decay, args.benchmark)
                  for seed in range(args.seeds)]
        offsets = tables[0]["offsets"]
        entry: dict[str, Any] = {"offsets": offsets, "per_seed": tables}
        for key in ("success", "return"):
            values = np.array([t[key] for t in tables])  # (seeds, offsets)
            entry[key] = [stats.t_ci(values[:, j]).as_dict() for j in range(len(offsets))]
        out["variants"][variant] = entry
        print(f"{variant}: success at attempts " + ", ".join(
            f"{o:+d} {c['mean']:.3f}" for o, c in zip(offsets, entry["success"])), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
