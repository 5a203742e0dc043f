"""Stable-Baselines3 baselines on our trial envs: sb3-contrib ``RecurrentPPO`` (RL² with
an LSTM) and SB3 ``PPO`` (memoryless control).

SB3 resets a recurrent policy's state at every episode start. Our trial envs end
a gymnasium episode at every attempt, but RL² memory must live for the whole
trial, so :class:`TrialAsEpisode` presents one trial as one SB3 episode (the
attempts inside it are continued with ``reset()`` behind SB3's back). Rewards,
observations (flags included) and tasks are exactly the trial env's.

Run: ``python -m metarl.agents.sb3 --benchmark point-nav --algo recurrent-ppo --total-timesteps 100000``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs import make_env

#: name -> (module, class) of the SB3 algorithm and its policy name.
ALGOS: dict[str, tuple[str, str, str]] = {
    "recurrent-ppo": ("sb3_contrib", "RecurrentPPO", "MlpLstmPolicy"),
    "ppo": ("stable_baselines3", "PPO", "MlpPolicy"),
}


def algo_class(name: str) -> tuple[type, str]:
    """(algorithm class, policy name) for ``name``; ValueError listing valid names."""
    if name not in ALGOS:
        close = difflib.get_close_matches(name, ALGOS, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown SB3 algorithm {name!r}.{hint} Valid: {', '.join(ALGOS)}")
    module, cls, policy = ALGOS[name]
    return getattr(importlib.import_module(module), cls), policy


class TrialAsEpisode(gym.Wrapper):
    """One RL² trial = one gymnasium episode (for SB3, which resets memory per episode).

    Attempt ends inside the trial are hidden: the wrapper calls ``reset()`` and
    returns the next attempt's first observation. The episode is truncated on
    the trial's last step. The final info carries ``is_success`` (the last
    attempt succeeded: SB3 logs it as ``rollout/success_rate``),
    ``attempt_success`` and ``attempt_return`` (one entry per attempt, in order).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._attempt_success: list[bool] = []
        self._attempt_return: list[float] = []

    def reset(self, **kwargs: Any):
        self._attempt_success, self._attempt_return = [], []
        obs, info = self.env.reset(**kwargs)
        if obs[-1] < 0.5:  # not a trial start: finish the trial that was running
            obs, info = self.env.reset(options={"new_trial": True})
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self._attempt_success.append(bool(info["episode_success"]))
            self._attempt_return.append(float(info["episode_return"]))
            if info["trial_end"] or terminated:
                info = {
                    **info,
                    "is_success": self._attempt_success[-1],
                    "attempt_success": list(self._attempt_success),
                    "attempt_return": list(self._attempt_return),
                }
                return obs, reward, terminated, True, info
            obs, _ = self.env.reset()  # next attempt, same task, memory kept
        return obs, reward, False, False, info


@dataclass
class SB3Config:
    """An SB3 baseline run on one benchmark split."""

    algo: str = "recurrent-ppo"
    """``recurrent-ppo`` (LSTM, RL²) or ``ppo`` (memoryless control)."""
    benchmark: str = "point-nav"
    """Benchmark name (``metarl.envs.benchmarks()``)."""
    split: str = "train"
    episodes_per_trial: int | None = None
    """Attempts per trial; None: the benchmark's default."""
    max_episode_steps: int | None = None
    """Steps per attempt; None: the benchmark's default."""
    num_envs: int = 8
    seed: int = 0
    total_timesteps: int = 100_000
    n_steps: int = 256
    """Steps per env per rollout."""
    batch_size: int = 256
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    hidden_size: int = 256
    """LSTM width (recurrent-ppo) and MLP layer width."""
    subproc: bool = False
    """Step envs in worker processes (Meta-World); toys run in-process."""
    device: str = "cpu"
    verbose: int = 0


def make_sb3_vec_env(config: SB3Config, split: str | None = None, seed: int | None = None):
    """An SB3 VecEnv of ``config.num_envs`` trial envs, each trial one SB3 episode."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    split = split or config.split
    seed = config.seed if seed is None else seed
    n = config.num_envs

    def factory(i: int):
        def make() -> gym.Env:
            env = make_env(
                config.benchmark,
                split=split,
                episodes_per_trial=config.episodes_per_trial,
                max_episode_steps=config.max_episode_steps,
                seed=seed + i,
                env_index=i,
                num_envs=n,
            )
            return TrialAsEpisode(env)

        return make

    vec_cls = SubprocVecEnv if config.subproc else DummyVecEnv
    return VecMonitor(vec_cls([factory(i) for i in range(n)]), info_keywords=("is_success",))


def build_model(config: SB3Config, env=None):
    """The SB3 model for ``config`` on ``env`` (default: :func:`make_sb3_vec_env`)."""
    cls, policy = algo_class(config.algo)
    env = env if env is not None else make_sb3_vec_env(config)
    policy_kwargs: dict[str, Any] = {"net_arch": [config.hidden_size, config.hidden_size]}
    if config.algo == "recurrent-ppo":
        policy_kwargs = {"net_arch": [config.hidden_size], "lstm_hidden_size": config.hidden_size}
    return cls(
        policy,
        env,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        ent_coef=config.ent_coef,
        policy_kwargs=policy_kwargs,
        seed=config.seed,
        device=config.device,
        verbose=config.verbose,
    )


def train(config: SB3Config, run_dir: str | Path | None = None):
    """Train an SB3 baseline; with ``run_dir``, save ``config.json`` and ``model.zip`` there."""
    model = build_model(config)
    model.learn(total_timesteps=config.total_timesteps)
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
        model.save(run_dir / "model.zip")
    return model


def evaluate(model, config: SB3Config, trials: int = 10, split: str = "test", seed: int = 10_000,
             deterministic: bool = True) -> dict[str, Any]:
    """Success and return per attempt over ``trials`` trials per env of ``split``.

    Returns ``success_attempt`` and ``return_attempt`` (one entry per attempt,
    averaged over all trials of all envs), ``success`` (the last attempt's)
    and ``trials`` (how many were averaged).
    """
    env = make_sb3_vec_env(config, split=split, seed=seed)
    n = env.num_envs
    recurrent = config.algo == "recurrent-ppo"
    obs = env.reset()
    state, starts = None, np.ones(n, dtype=bool)
    finished = np.zeros(n, dtype=int)
    success: list[list[bool]] = []
    returns: list[list[float]] = []
    while finished.min() < trials:
        if recurrent:
            action, state = model.predict(obs, state=state, episode_start=starts, deterministic=deterministic)
        else:
            action, _ = model.predict(obs, deterministic=deterministic)
        obs, _, dones, infos = env.step(action)
        for i in np.flatnonzero(dones):
            if finished[i] < trials:
                success.append(infos[i]["attempt_success"])
                returns.append(infos[i]["attempt_return"])
            finished[i] += 1
        starts = dones
    env.close()
    success_attempt = np.mean(np.asarray(success, dtype=float), axis=0)  # (attempts,)
    return_attempt = np.mean(np.asarray(returns, dtype=float), axis=0)  # (attempts,)
    return {
        "success_attempt": success_attempt.tolist(),
        "return_attempt": return_attempt.tolist(),
        "success": float(success_attempt[-1]),
        "trials": len(success),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI: train an SB3 baseline, then print its per-attempt test success as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(SB3Config):
        default = f.default
        kind = type(default) if default is not None else int
        name = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(name, type=kind, default=default)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--eval-trials", type=int, default=10)
    args = vars(parser.parse_args(argv))
    run_dir, eval_trials = args.pop("run_dir"), args.pop("eval_trials")
    config = SB3Config(**{k.replace("-", "_"): v for k, v in args.items()})
    model = train(config, run_dir)
    result = {split: evaluate(model, config, trials=eval_trials, split=split) for split in ("train", "test")}
    print(json.dumps(result, indent=2))
    if run_dir is not None:
        (Path(run_dir) / "eval.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
