"""Can a bandit show learned forgetting at all? Hand-written agents with and without forgetting on its switching trials.

A learned cell can gain from forgetting only what an agent that forgets *well*
gains over one that never forgets. This plays hand-written bandit agents (a
posterior over the arms from the previous action and reward the trial
observation carries: ``--model thompson``, Thompson sampling with a Beta(1, 1)
prior per arm; or, on ``bandit-onehot``, ``onegood``, which knows that one arm is
good and pulls the likeliest) through the same held-out evaluation as the learned
agents (``metarl.evaluate.evaluate_agent``, one unannounced switch per trial, the
around-switch table), in three variants:

- ``keep``: every pull since the trial start counts (no forgetting);
- ``decay``: each pull's evidence is multiplied by ``--decay`` per later pull
  (forgetting by design, what forget-memory's leaky slots do);
- ``oracle``: told of the switch (``info["task_switched"]``, after the switched
  attempt's first pull, when any agent could first notice it), it drops the
  evidence gathered before the switch: the best forgetting there is.

If ``oracle`` is not better than ``keep`` after the switch, no memory can show
that forgetting helps on this task, whatever it learns.

    python experiments/bandit_ceiling.py --out ceiling.json [--benchmark bandit-onehot] [--model onegood] \
      [--attempts 8] [--trials 500] [--seeds 5]
"""

from __future__ import annotations

import abc
import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl import stats
from metarl.envs import make_env
from metarl.envs.obs_layout import ObsLayout
from metarl.envs.toy import BanditOneHotBenchmark
from metarl.evaluate import evaluate_agent

BENCHMARKS = ("bandit", "bandit-onehot")
VARIANTS = ("keep", "decay", "oracle")


@dataclass
class Sampler(abc.ABC):
    """A bandit agent with a posterior over the arms; ``initial_state``/``act`` as :class:`metarl.agent.Agent`.

    Each step it books the previous pull (the trial observation's previous action and reward) into
    the posterior, then picks an arm (:meth:`choose`). ``decay`` < 1 shrinks old evidence toward the
    prior before each new pull; :meth:`on_step` (``oracle``) resets an env's posterior on the switch,
    keeping the switched attempt's own pull. Subclasses say what the posterior is.
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

    @abc.abstractmethod
    def prior(self, batch_size: int) -> np.ndarray:
        """The posterior before any pull, for ``batch_size`` envs."""

    @abc.abstractmethod
    def book(self, state: np.ndarray, arm: np.ndarray, reward: np.ndarray) -> None:
        """Add one pull of ``arm`` (R,) with ``reward`` (R,) to the R rows of ``state``, in place."""

    @abc.abstractmethod
    def choose(self, state: np.ndarray) -> np.ndarray:
        """The arm (N,) each env pulls next."""

    def initial_state(self, batch_size: int) -> np.ndarray:
        self.pending = np.zeros(batch_size, dtype=bool)
        return self.prior(batch_size)

    def act(self, obs: np.ndarray, state: np.ndarray, deterministic: bool = True, diagnostics: bool = False):
        """Book the previous pull, then pull :meth:`choose`'s arm (``deterministic`` does not apply)."""
        state = state.copy()
        prior = self.prior(1)[0]
        start = obs[:, self.layout.trial_start] > 0.5  # (N,) no previous pull in this trial
        reset = self.pending & ~start  # the oracle: evidence from before the switch dropped
        state[start | reset] = prior
        self.forgets += int(reset.sum())
        self.pending[:] = False
        rows = np.flatnonzero(~start)
        if rows.size:
            state[rows] = prior + self.decay * (state[rows] - prior)
            arm = np.argmax(obs[rows, self.layout.action], axis=1)  # (R,) the arm pulled last
            reward = obs[rows, self.layout.reward] / self.reward_scale  # (R,) 0 or 1
            sub = state[rows]
            self.book(sub, arm, reward)
            state[rows] = sub
        arms = self.choose(state)
        action = np.full((len(state), self.layout.action_dim), -1.0, dtype=np.float32)
        action[np.arange(len(state)), arms] = 1.0
        if diagnostics:
            return action, state, {}
        return action, state

    def on_step(self, step: Any, infos: dict[str, np.ndarray], done: np.ndarray) -> None:
        """``evaluate_agent``'s ``on_step``: the oracle hears of a switch once the switched attempt's pull is made."""
        if self.oracle:
            self.pending |= np.asarray(infos["task_switched"], dtype=bool)


class ThompsonAgent(Sampler):
    """Thompson sampling with a Beta(1, 1) prior per arm: state (N, 2, A), alpha and beta per arm."""

    def prior(self, batch_size: int) -> np.ndarray:
        return np.ones((batch_size, 2, self.layout.action_dim))  # (N, 2, A)

    def book(self, state: np.ndarray, arm: np.ndarray, reward: np.ndarray) -> None:
        rows = np.arange(len(state))
        state[rows, 0, arm] += reward
        state[rows, 1, arm] += 1.0 - reward

    def choose(self, state: np.ndarray) -> np.ndarray:
        return np.argmax(self.rng.beta(state[:, 0], state[:, 1]), axis=1)  # (N, A) samples -> (N,)


class OneGoodArmAgent(Sampler):
    """``bandit-onehot``'s own prior: exactly one arm pays with ``HIGH``, the rest with ``LOW``. State
    (N, A): the log-likelihood that arm j is the good one; it pulls the most likely (ties at random),
    which finds the good arm in the fewest pulls this task allows."""

    def prior(self, batch_size: int) -> np.ndarray:
        return np.zeros((batch_size, self.layout.action_dim))  # (N, A)

    def book(self, state: np.ndarray, arm: np.ndarray, reward: np.ndarray) -> None:
        high, low = BanditOneHotBenchmark.HIGH, BanditOneHotBenchmark.LOW
        pulled = np.arange(state.shape[1])[None] == arm[:, None]  # (R, A): hypothesis j is the pulled arm
        p = np.where(pulled, high, low)  # (R, A) the pulled arm's pay rate under hypothesis j
        state += np.log(np.where(reward[:, None] > 0.5, p, 1.0 - p))

    def choose(self, state: np.ndarray) -> np.ndarray:
        noise = self.rng.random(state.shape) * 1e-6  # ties broken at random
        return np.argmax(state + noise, axis=1)


MODELS = {"thompson": ThompsonAgent, "onegood": OneGoodArmAgent}


def make_agent(variant: str, decay: float, seed: int, benchmark: str = "bandit", model: str = "thompson") -> Sampler:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    if model == "onegood" and benchmark != "bandit-onehot":
        raise ValueError(f"model onegood assumes bandit-onehot's one good arm; {benchmark} has none: use thompson")
    env = make_env(benchmark)
    layout, scale = env.obs_layout, float(env.reward_scale)
    env.close()
    decay = decay if variant == "decay" else 1.0
    return MODELS[model](layout, scale, decay=decay, oracle=variant == "oracle", seed=seed)


def around_switch(variant: str, attempts: int, trials: int, seed: int, decay: float, benchmark: str = "bandit",
                  model: str = "thompson") -> dict:
    """One variant's held-out around-switch table (one evaluation seed)."""
    agent = make_agent(variant, decay, seed, benchmark, model)
    result = evaluate_agent(agent, benchmark=benchmark, split="test", trials=trials, episodes_per_trial=attempts,
                            seed=seed, task_switches=1, on_step=agent.on_step)
    (table,) = [t["around_switch"] for t in result["tasks"].values()]  # the bandit has one class
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--benchmark", default="bandit", choices=BENCHMARKS)
    p.add_argument("--model", default="thompson", choices=list(MODELS),
                   help="thompson: Beta(1, 1) per arm; onegood: bandit-onehot's one-good-arm prior")
    p.add_argument("--attempts", type=int, default=8, help="one-pull attempts per trial (forgetting.py's bandit: 8)")
    p.add_argument("--trials", type=int, default=500, help="held-out trials per seed (the 50 goals, over and over)")
    p.add_argument("--seeds", type=int, default=5, help="evaluation seeds (the CI is across them)")
    p.add_argument("--decay", type=float, default=0.7, help="evidence kept per later pull by the decay variant")
    args = p.parse_args(argv)
    if not 0.0 < args.decay <= 1.0:
        raise SystemExit(f"bandit_ceiling.py: --decay must be in (0, 1], got {args.decay}")
    try:
        make_agent(VARIANTS[0], args.decay, 0, args.benchmark, args.model)
    except ValueError as e:
        raise SystemExit(f"bandit_ceiling.py: {e}") from None
    out: dict[str, Any] = {"benchmark": args.benchmark, "model": args.model, "attempts": args.attempts,
                           "trials": args.trials, "decay": args.decay, "variants": {}}
    for variant in VARIANTS:
        tables = [around_switch(variant, args.attempts, args.trials, seed, args.decay, args.benchmark, args.model)
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
