"""How well a trained agent adapts to held-out tasks, attempt by attempt (RL² trials).

One *trial* = ``episodes_per_trial`` attempts of one task with memory reset once,
at the trial start. :func:`evaluate_agent` plays every held-out goal's trials
(:func:`run_trials`, through ``metarl.trials.play_trials``) and reports for each
task class the success rate and mean return of attempt 1..K, the mean over
tasks, and a 95% bootstrap CI of the final-attempt success
(``metarl.results.summarize``). The helpers here (:func:`agent_env_kwargs`,
:func:`seeded_torch`, ...) are how every caller builds envs for an agent and
seeds its actions. The command line is ``metarl.evaluate_cli``; Meta-World's own
meta-test loop ``metarl.protocol``.
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from metarl.envs import make_vec
from metarl.envs.registry import task_set
from metarl.results import TrialRecord, summarize
from metarl.trials import Step, play_trials

OnStep = Callable[[Step, dict[str, np.ndarray], np.ndarray], None]  # play_trials's on_step(step, infos, done)


@dataclass
class EvalSettings:
    """What to evaluate; ``None`` fields come from the agent's training config."""

    benchmark: str | None = None
    split: str = "test"
    trials: int | None = None
    """Trials per task class; None = the number of goals per class (50 for Meta-World), each goal played once."""
    episodes_per_trial: int | None = None
    seed: int = 0
    deterministic: bool = False
    explore_attempts: int = 0
    """With ``deterministic``: the first this-many attempts of each trial sample actions (they
    explore; Meta-World's own protocol samples in its adaptation episodes too), the rest act
    on the policy mean. 0 = every attempt as ``deterministic`` says."""
    num_envs: int | None = None
    """Parallel trial envs; None = classes x trials-per-class up to ``max_envs``."""
    max_envs: int = 20
    max_episode_steps: int | None = None
    workers: int | None = None
    """Env worker processes (``make_vec``): None = in-process for toy tasks, else one per CPU; 0 = in-process."""
    progress: bool = False
    task_switches: int = 0
    """Unannounced task switches per trial (``make_vec(task_switches=...)``); 0 = ordinary trials."""
    switch_class: bool = False
    """Switch to another class rather than another goal (multi-class splits)."""


def _config_env(agent: Any) -> Any:
    cfg = getattr(agent, "config", None)
    return getattr(cfg, "env", None)


def resolve_settings(agent: Any, settings: EvalSettings) -> EvalSettings:
    """Fill ``None`` fields from the agent's training config (benchmark, K, episode length)."""
    env_cfg = _config_env(agent)
    s = EvalSettings(**{**settings.__dict__})
    if s.benchmark is None:
        if env_cfg is None:
            raise ValueError("no --benchmark given and the agent carries no training config")
        s.benchmark = env_cfg.benchmark
    if s.episodes_per_trial is None and env_cfg is not None:
        s.episodes_per_trial = env_cfg.episodes_per_trial
    if s.max_episode_steps is None and env_cfg is not None:
        s.max_episode_steps = getattr(env_cfg, "max_episode_steps", None)
    for name in ("trials", "episodes_per_trial", "num_envs", "max_episode_steps"):
        value = getattr(s, name)
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {value}")
    if s.explore_attempts < 0 or (s.explore_attempts and not s.deterministic):
        raise ValueError(f"explore-attempts must be >= 0 and needs --deterministic (the attempts after it act on "
                         f"the mean), got {s.explore_attempts}")
    k = s.episodes_per_trial
    if s.explore_attempts and k is not None and s.explore_attempts >= k:
        raise ValueError(f"explore-attempts must be < episodes-per-trial ({k}), got {s.explore_attempts}")
    return s


def check_compatible(agent: Any, obs_dim: int, action_dim: int, benchmark: str) -> None:
    """One-line ValueError when the agent was built for other observation/action sizes."""
    sizes = agent if hasattr(agent, "obs_dim") else getattr(agent, "policy", None)  # SB3Agent has them itself
    want = (getattr(sizes, "obs_dim", obs_dim), getattr(sizes, "action_dim", action_dim))
    if want != (obs_dim, action_dim):
        raise ValueError(
            f"the agent was trained on observations of size {want[0]} and actions of size {want[1]}, "
            f"but {benchmark} has {obs_dim} and {action_dim}: evaluate it on a benchmark like the one it trained on"
        )


@contextlib.contextmanager
def seeded_torch(agent: Any, seed: int) -> Iterator[None]:
    """Seed torch for action sampling, restoring the caller's RNG state afterwards (CPU and the agent's GPU)."""
    device = torch.device(getattr(agent, "device", "cpu"))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def agent_reward_scale(agent: Any) -> float | None:
    env_cfg = _config_env(agent)
    return None if env_cfg is None else getattr(env_cfg, "reward_scale", None)


def agent_env_kwargs(agent: Any) -> dict[str, Any]:
    """The ``make_env``/``make_vec`` options that shape what the agent observes, from its
    training config: the reward input's scale and the clock (an agent trained with the
    clock needs it in every env it plays)."""
    env_cfg = _config_env(agent)
    kwargs: dict[str, Any] = {}
    if agent_reward_scale(agent) is not None:
        kwargs["reward_scale"] = agent_reward_scale(agent)
    if env_cfg is not None and getattr(env_cfg, "clock", False):
        kwargs["clock"] = True
    return kwargs


def goal_order(num_goals: int, trials: int, rng: np.random.Generator) -> list[int]:
    """Goal indices for ``trials`` trials of one class, covering the goals without replacement.

    Full passes over all goals (``trials == num_goals``: each goal exactly
    once), then a random subset of distinct goals for the remainder, in index order.
    """
    passes, rest = divmod(trials, num_goals)
    subset = sorted(int(g) for g in rng.choice(num_goals, size=rest, replace=False)) if rest else []
    return list(range(num_goals)) * passes + subset


def run_trials(
    agent: Any, s: EvalSettings, on_step: OnStep | None = None
) -> tuple[list[TrialRecord], dict[str, Any]]:
    """Play whole trials in a vector env until every class has ``s.trials`` of them.

    Env i plays class ``i % C`` in every round (N is a multiple of C), so each
    round adds N / C trials per class; each round is ``reset(seed, tasks)`` +
    exactly ``trial_length`` steps. The reset pins every trial's goal from
    :func:`goal_order` (seeded by ``s.seed``), so the held-out goals are
    covered without replacement; env slots of the last round beyond ``trials``
    play a drawn goal and are not recorded. ``on_step`` (as ``play_trials``'s) sees every
    vector step's infos, e.g. ``task_switched`` for an oracle that is told of the switch.
    """
    tset = task_set(s.benchmark, s.split)
    classes = list(tset.classes)
    num_classes = len(classes)
    trials = s.trials or max(len(g) for g in tset.goals.values())
    per_round = s.num_envs // num_classes if s.num_envs else max(1, min(trials, s.max_envs // num_classes))
    if per_round < 1:
        raise ValueError(f"num-envs must be at least the number of task classes ({num_classes})")
    num_envs = per_round * num_classes  # a multiple of C: each env keeps one class
    rounds = math.ceil(trials / per_round)
    rng = np.random.default_rng(s.seed)
    orders = [goal_order(len(tset.goals[c]), trials, rng) for c in classes]  # [class][t]: goal of its t-th trial
    kwargs: dict[str, Any] = dict(split=s.split, workers=s.workers)
    if s.episodes_per_trial is not None:
        kwargs["episodes_per_trial"] = s.episodes_per_trial
    if s.max_episode_steps is not None:
        kwargs["max_episode_steps"] = s.max_episode_steps
    kwargs.update(agent_env_kwargs(agent))
    if s.task_switches:
        kwargs.update(task_switches=s.task_switches, switch_class=s.switch_class)
    envs = make_vec(s.benchmark, num_envs=num_envs, **kwargs)
    try:
        check_compatible(agent, envs.single_observation_space.shape[0], envs.single_action_space.shape[0], s.benchmark)
    except ValueError:
        envs.close()
        raise
    k = int(envs.episodes_per_trial)
    length = int(envs.trial_length)
    records: list[TrialRecord] = []
    bar = tqdm(total=rounds * length, unit=" vector steps", desc="evaluate (one step of every env)", file=sys.stderr,
               dynamic_ncols=True, disable=not s.progress)
    try:
        for r in range(rounds):
            # env i = c + j C plays trial r * per_round + j of class c; None past `trials` (not recorded)
            numbers = [r * per_round + i // num_classes for i in range(num_envs)]
            tasks = [(i % num_classes, orders[i % num_classes][t]) if t < trials else None
                     for i, t in enumerate(numbers)]
            switches: list[list[int]] = [[] for _ in range(num_envs)]
            played = play_trials(agent, envs, length, seed=s.seed + r * num_envs, options={"tasks": tasks},
                                 deterministic=s.deterministic, explore_attempts=s.explore_attempts,
                                 on_step=_note_switches(switches, bar, on_step))
            if not np.all(played.ended == k):
                raise RuntimeError(f"expected {k} attempts per env in {length} steps, got {played.ended.tolist()}")
            task_ids, goals = played.reset_infos["task_id"], played.reset_infos["goal"]  # (N,) this round's tasks
            # record only the planned trials: exactly `trials` per class, in (round, env) order
            for i in range(num_envs):
                if tasks[i] is not None:
                    records.append(TrialRecord(classes[int(task_ids[i])], played.success[i].tolist(),
                                               played.returns[i].tolist(), int(goals[i]), switches[i]))
    finally:
        bar.close()
        envs.close()
    meta = {"episodes_per_trial": k, "max_episode_steps": int(envs.max_episode_steps), "trials": trials,
            "num_envs": num_envs, "classes": classes}
    return records, meta


def _note_switches(switches: list[list[int]], bar: Any, then: OnStep | None = None) -> OnStep:
    """An ``on_step`` callback that appends to ``switches[i]`` the 1-based attempts of env i whose
    task was switched, ticks ``bar`` once per vector step, and calls ``then`` (the caller's)."""
    def on_step(step: Step, infos: dict[str, np.ndarray], done: np.ndarray) -> None:
        for i in np.flatnonzero(infos["task_switched"]):  # the switched attempt's first step
            switches[i].append(int(step.ended[i]) + 1)
        bar.update(1)
        if then is not None:
            then(step, infos, done)

    return on_step


def evaluate_agent(
    agent: Any,
    benchmark: str | None = None,
    split: str = "test",
    trials: int | None = None,
    episodes_per_trial: int | None = None,
    seed: int = 0,
    deterministic: bool = False,
    num_envs: int | None = None,
    max_episode_steps: int | None = None,
    workers: int | None = None,
    progress: bool = False,
    task_switches: int = 0,
    switch_class: bool = False,
    explore_attempts: int = 0,
    on_step: OnStep | None = None,
) -> dict[str, Any]:
    """Evaluate ``agent`` (a :class:`metarl.agent.Agent`) on ``benchmark``'s ``split``.

    Returns the JSON-ready summary (see module doc). Torch's global RNG is forked,
    so calling this mid-training leaves the trainer's random stream untouched
    (see :func:`seeded_torch`). ``on_step``: see :func:`run_trials`.
    """
    s = resolve_settings(agent, EvalSettings(
        benchmark=benchmark, split=split, trials=trials, episodes_per_trial=episodes_per_trial, seed=seed,
        deterministic=deterministic, num_envs=num_envs, max_episode_steps=max_episode_steps,
        workers=workers, progress=progress, task_switches=task_switches, switch_class=switch_class,
        explore_attempts=explore_attempts,
    ))
    with seeded_torch(agent, s.seed):
        records, meta = run_trials(agent, s, on_step)
    summary = summarize(records, meta["episodes_per_trial"], seed=s.seed)
    return {
        "benchmark": s.benchmark,
        "split": s.split,
        "protocol": "rl2",
        "episodes_per_trial": meta["episodes_per_trial"],
        "max_episode_steps": meta["max_episode_steps"],
        "trials": meta["trials"],
        "seed": s.seed,
        "deterministic": s.deterministic,
        "explore_attempts": s.explore_attempts if s.deterministic else 0,
        **summary,
    }
