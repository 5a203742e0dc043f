"""``metarl evaluate``: how well a trained agent adapts to held-out tasks, attempt by attempt.

One *trial* = ``episodes_per_trial`` attempts of one task with memory reset once,
at the trial start. For each task class we report the success rate and mean
return of attempt 1..K, the mean over tasks, and a 95% bootstrap CI of the
final-attempt success. :func:`evaluate_agent` is the Python entry point (training
reuses it); the CLI adds tables, JSON/CSV files, several runs and
``--protocol metaworld`` (Meta-World's own meta-test loop, ``metarl.protocol``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from metarl import stats
from metarl.kinds import agent_label
from metarl.trials import Step, play_trials

PROTOCOLS = ("rl2", "metaworld")


@dataclass
class TrialRecord:
    """The outcome of one trial: per attempt (1..K) success and raw return."""

    task: str
    success: list[bool]
    returns: list[float]
    goal: int | None = None
    switches: list[int] = field(default_factory=list)
    """1-based attempts whose task was switched unannounced (``task_switches`` > 0)."""


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


def run_trials(agent: Any, s: EvalSettings) -> tuple[list[TrialRecord], dict[str, Any]]:
    """Play whole trials in a vector env until every class has ``s.trials`` of them.

    Env i plays class ``i % C`` in every round (N is a multiple of C), so each
    round adds N / C trials per class; each round is ``reset(seed, tasks)`` +
    exactly ``trial_length`` steps. The reset pins every trial's goal from
    :func:`goal_order` (seeded by ``s.seed``), so the held-out goals are
    covered without replacement; env slots of the last round beyond ``trials``
    play a drawn goal and are not recorded.
    """
    from metarl.envs import make_vec
    from metarl.envs.registry import task_set

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
    bar = _progress(rounds * length, s.progress)
    try:
        for r in range(rounds):
            # env i = c + j C plays trial r * per_round + j of class c; None past `trials` (not recorded)
            numbers = [r * per_round + i // num_classes for i in range(num_envs)]
            tasks = [(i % num_classes, orders[i % num_classes][t]) if t < trials else None
                     for i, t in enumerate(numbers)]
            switches: list[list[int]] = [[] for _ in range(num_envs)]

            def on_step(step: Step, infos: dict[str, np.ndarray], done: np.ndarray) -> None:
                for i in np.flatnonzero(infos["task_switched"]):  # the switched attempt's first step
                    switches[i].append(int(step.ended[i]) + 1)
                bar.update(1)

            played = play_trials(agent, envs, length, seed=s.seed + r * num_envs, options={"tasks": tasks},
                                 deterministic=s.deterministic, explore_attempts=s.explore_attempts, on_step=on_step)
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


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=" vector steps", desc="evaluate (one step of every env)", file=sys.stderr,
                dynamic_ncols=True)


def summarize(records: list[TrialRecord], episodes_per_trial: int, seed: int = 0) -> dict[str, Any]:
    """Per-task and mean-over-tasks success/return by attempt, and a CI of final-attempt success."""
    if not records:
        raise ValueError("no trials to summarize")
    tasks: dict[str, Any] = {}
    finals = []
    for name in sorted({r.task for r in records}):
        recs = [r for r in records if r.task == name]
        succ = np.array([r.success for r in recs], dtype=np.float64)  # (trials, K)
        rets = np.array([r.returns for r in recs], dtype=np.float64)  # (trials, K)
        tasks[name] = {
            "success_by_attempt": succ.mean(axis=0).tolist(),
            "return_by_attempt": rets.mean(axis=0).tolist(),
            "mean_return": float(rets.mean()),
            "trials": len(recs),
        }
        goals = [r.goal for r in recs if r.goal is not None]
        if goals:
            tasks[name]["goals"] = sorted(set(goals))
        if any(r.switches for r in recs):
            tasks[name]["around_switch"] = around_switch(recs)
        finals.append(succ[:, -1])
    per_task_succ = np.array([t["success_by_attempt"] for t in tasks.values()])  # (C, K)
    per_task_ret = np.array([t["return_by_attempt"] for t in tasks.values()])  # (C, K)
    ci = stats.stratified_bootstrap_ci(finals, confidence=0.95, seed=seed)
    return {
        "episodes_per_trial": episodes_per_trial,
        "tasks": tasks,
        "success_by_attempt": per_task_succ.mean(axis=0).tolist(),
        "return_by_attempt": per_task_ret.mean(axis=0).tolist(),
        "final_success": ci.as_dict() | {"confidence": 0.95, "method": "bootstrap over trials, stratified by task"},
        "mean_return": float(per_task_ret.mean()),
    } | ({"around_switch": around_switch(records)} if any(r.switches for r in records) else {})


SWITCH_OFFSETS = tuple(range(-2, 4))  # attempts relative to the first switch: -1 the last on the old task


def around_switch(records: list[TrialRecord]) -> dict[str, list]:
    """Success and return by attempt relative to each trial's first switch (offset 0 = the
    first attempt on the new task), averaged over the trials that have that attempt."""
    success: list[list[float]] = [[] for _ in SWITCH_OFFSETS]
    returns: list[list[float]] = [[] for _ in SWITCH_OFFSETS]
    for r in records:
        if not r.switches:
            continue
        first = min(r.switches)
        for j, off in enumerate(SWITCH_OFFSETS):
            a = first + off  # 1-based attempt
            if 1 <= a <= len(r.success):
                success[j].append(float(r.success[a - 1]))
                returns[j].append(float(r.returns[a - 1]))
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    return {
        "offsets": list(SWITCH_OFFSETS),
        "success": [mean(v) for v in success],
        "return": [mean(v) for v in returns],
        "trials": [len(v) for v in success],
    }


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
) -> dict[str, Any]:
    """Evaluate ``agent`` (a :class:`metarl.agent.Agent`) on ``benchmark``'s ``split``.

    Returns the JSON-ready summary (see module doc). Torch's global RNG is forked,
    so calling this mid-training leaves the trainer's random stream untouched
    (see :func:`seeded_torch`).
    """
    s = resolve_settings(agent, EvalSettings(
        benchmark=benchmark, split=split, trials=trials, episodes_per_trial=episodes_per_trial, seed=seed,
        deterministic=deterministic, num_envs=num_envs, max_episode_steps=max_episode_steps,
        workers=workers, progress=progress, task_switches=task_switches, switch_class=switch_class,
        explore_attempts=explore_attempts,
    ))
    with seeded_torch(agent, s.seed):
        records, meta = run_trials(agent, s)
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


# ----------------------------------------------------------------------- several runs


def aggregate_runs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread (sample std) across runs of the same benchmark/split/K."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    for key in ("benchmark", "split", "episodes_per_trial", "protocol"):
        values = {str(r.get(key)) for r in results}
        if len(values) > 1:
            raise ValueError(f"runs differ in {key} ({', '.join(sorted(values))}): evaluate them separately")
    names = sorted(set().union(*(r["tasks"].keys() for r in results)))
    missing = [n for n in names if any(n not in r["tasks"] for r in results)]
    if missing:
        raise ValueError(f"runs evaluated different tasks (missing {missing[0]!r} in some)")
    if first.get("protocol") == "metaworld":
        out = {k: v for k, v in first.items() if k not in ("tasks", "success", "success_per_env", "mean_return", "run")}
        out["tasks"] = {}
        keys = [k for k in ("success", "success_per_env") if all(k in r for r in results)]
        for n in names:
            out["tasks"][n] = {}
            for key in keys:
                m, sd = stats.mean_and_std([r["tasks"][n][key] for r in results])
                out["tasks"][n].update({key: m, f"{key}_std": sd})
        for key in keys:
            out[key], out[f"{key}_std"] = stats.mean_and_std([r[key] for r in results])
        out["mean_return"], out["mean_return_std"] = stats.mean_and_std([r["mean_return"] for r in results])
        out.update(runs=[r.get("run") for r in results], num_runs=len(results), per_run=results)
        return out

    def mean_std(arrs: list[list[float]]) -> tuple[list[float], list[float]]:
        a = np.array(arrs, dtype=np.float64)  # (runs, K)
        std = a.std(axis=0, ddof=1) if a.shape[0] > 1 else np.zeros(a.shape[1])
        return a.mean(axis=0).tolist(), std.tolist()

    tasks = {}
    for n in names:
        s_mean, s_std = mean_std([r["tasks"][n]["success_by_attempt"] for r in results])
        r_mean, r_std = mean_std([r["tasks"][n]["return_by_attempt"] for r in results])
        ret_mean, ret_std = stats.mean_and_std([r["tasks"][n]["mean_return"] for r in results])
        tasks[n] = {"success_by_attempt": s_mean, "success_by_attempt_std": s_std,
                    "return_by_attempt": r_mean, "return_by_attempt_std": r_std,
                    "mean_return": ret_mean, "mean_return_std": ret_std,
                    "trials": sum(r["tasks"][n].get("trials", 0) for r in results)}
    s_mean, s_std = mean_std([r["success_by_attempt"] for r in results])
    r_mean, r_std = mean_std([r["return_by_attempt"] for r in results])
    finals = [r["success_by_attempt"][-1] for r in results]
    fin_mean, fin_std = stats.mean_and_std(finals)
    ret_mean, ret_std = stats.mean_and_std([r["mean_return"] for r in results])
    return {
        "benchmark": first["benchmark"], "split": first["split"], "protocol": first.get("protocol", "rl2"),
        "episodes_per_trial": first["episodes_per_trial"], "trials": first.get("trials"),
        "max_episode_steps": first.get("max_episode_steps"), "deterministic": first.get("deterministic"),
        "runs": [r.get("run") for r in results], "num_runs": len(results),
        "tasks": tasks,
        "success_by_attempt": s_mean, "success_by_attempt_std": s_std,
        "return_by_attempt": r_mean, "return_by_attempt_std": r_std,
        "final_success": {"mean": fin_mean, "std": fin_std,
                          "ci_across_runs": stats.bootstrap_ci(finals).as_dict()},
        "mean_return": ret_mean, "mean_return_std": ret_std,
        "per_run": results,
    } | _aggregate_around_switch(results)


def _aggregate_around_switch(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, std and a 95% bootstrap interval across runs of the switch-aligned table (if every run has one)."""
    if not all("around_switch" in r for r in results):
        return {}
    first = results[0]["around_switch"]
    out: dict[str, Any] = {"offsets": first["offsets"], "trials": [sum(v) for v in zip(*(r["around_switch"]["trials"] for r in results))]}
    for key in ("success", "return"):
        per_offset = list(zip(*(r["around_switch"][key] for r in results)))  # (offsets, runs)
        out[key] = [float(np.mean(v)) for v in per_offset]
        out[f"{key}_std"] = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in per_offset]
        out[f"{key}_ci"] = [stats.bootstrap_ci(list(v)).as_dict() for v in per_offset]
    return {"around_switch": out}


# ----------------------------------------------------------------------- output


def _cell(values: dict[str, Any], key: str, i: int | None, fmt: str) -> str:
    v = values[key] if i is None else values[key][i]
    std = values.get(f"{key}_std")
    if std is None:
        return format(v, fmt)
    s = std if i is None else std[i]
    return f"{format(v, fmt)} ± {format(s, fmt)}"


def markdown_table(result: dict[str, Any]) -> str:
    """Rows: tasks (sorted) and their mean; columns: success at attempt 1..K, mean return."""
    if result.get("protocol") == "metaworld":
        return _metaworld_table(result)
    k = int(result["episodes_per_trial"])
    header = ["task"] + [f"success@{a}" for a in range(1, k + 1)] + ["mean return"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] * len(header)) + "|"]
    for name in sorted(result["tasks"]):
        t = result["tasks"][name]
        row = [name] + [_cell(t, "success_by_attempt", a, ".2f") for a in range(k)] + [_cell(t, "mean_return", None, ".1f")]
        lines.append("| " + " | ".join(row) + " |")
    mean_row = ["**mean**"] + [_cell(result, "success_by_attempt", a, ".2f") for a in range(k)]
    mean_row.append(_cell(result, "mean_return", None, ".1f"))
    lines.append("| " + " | ".join(mean_row) + " |")
    fin = result.get("final_success", {})
    if "low" in fin:
        lines.append(f"\nfinal-attempt success {fin['mean']:.3f} (95% CI {fin['low']:.3f} to {fin['high']:.3f})")
    elif "std" in fin:
        lines.append(f"\nfinal-attempt success {fin['mean']:.3f} ± {fin['std']:.3f} (std over {result.get('num_runs')} runs)")
    sw = result.get("around_switch")
    if sw:
        lines.append("\naround the first unannounced task switch (offset 0 = first attempt on the new task):")
        lines.append("| offset | " + " | ".join(f"{o:+d}" for o in sw["offsets"]) + " |")
        lines.append("|" + "|".join([" --- "] * (len(sw["offsets"]) + 1)) + "|")
        lines.append("| success | " + " | ".join(f"{v:.2f}" for v in sw["success"]) + " |")
        lines.append("| return | " + " | ".join(f"{v:.1f}" for v in sw["return"]) + " |")
        lines.append("| trials | " + " | ".join(str(v) for v in sw["trials"]) + " |")
    return "\n".join(lines)


def _metaworld_table(result: dict[str, Any]) -> str:
    lines = ["| task | success, Meta-World's count | success, per env (unbiased) |", "| --- | --- | --- |"]
    for name in sorted(result["tasks"]):
        t = result["tasks"][name]
        lines.append(f"| {name} | {_cell(t, 'success', None, '.2f')} | {_cell(t, 'success_per_env', None, '.2f')} |")
    lines.append(f"| **mean** | {_cell(result, 'success', None, '.2f')} | {_cell(result, 'success_per_env', None, '.2f')} |")
    lines.append("\nMeta-World's count takes each class's first evaluation episodes to finish, over all its envs "
                 "(episodes end at success), so envs that succeed early fill it; the per-env figure averages every "
                 "env's first evaluation episodes of each task draw, then the envs of a class.")
    lines.append(f"\nmean return {_cell(result, 'mean_return', None, '.1f')}; {result['adaptation_episodes']} adaptation + "
                 f"{result['evaluation_episodes']} evaluation episodes, {result['num_evals']} task draws "
                 f"(metaworld.evaluation.metalearning_evaluation)")
    return "\n".join(lines)


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Long format: one row per (run, task, attempt)."""
    per_run = result.get("per_run") or [result]
    rows = []
    for r in per_run:
        for name in sorted(r["tasks"]):
            t = r["tasks"][name]
            base = {"run": r.get("run", ""), "agent": r.get("agent", ""), "benchmark": r["benchmark"],
                    "split": r["split"], "task": name}
            if r.get("protocol") == "metaworld":
                rows.append({**base, "attempt": "evaluation", "success": t["success"], "return": ""})
                if "success_per_env" in t:
                    rows.append({**base, "attempt": "evaluation, per env", "success": t["success_per_env"], "return": ""})
                continue
            for a, (sv, rv) in enumerate(zip(t["success_by_attempt"], t["return_by_attempt"]), start=1):
                rows.append({**base, "attempt": a, "success": sv, "return": rv})
    return rows


def write_outputs(result: dict[str, Any], json_path: Path) -> tuple[Path, Path]:
    """Write ``json_path`` and the same name with ``.csv``."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    csv_path = json_path.with_suffix(".csv")
    rows = csv_rows(result)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["run", "agent", "benchmark", "split", "task", "attempt", "success", "return"])
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path


def default_json_path(source: Path, split: str, protocol: str) -> Path:
    """``RUN_DIR/eval_<split>.json`` (``eval_<split>_metaworld.json`` for the Meta-World protocol)."""
    run_dir = source if source.is_dir() else (source.parent.parent if source.parent.name == "checkpoints" else source.parent)
    suffix = "" if protocol == "rl2" else f"_{protocol}"
    if source.is_file() and source.stem != "last":  # e.g. best.pt, step_<n>.pt: don't overwrite last's
        suffix += f"_{source.stem}"
    return run_dir / f"eval_{split}{suffix}.json"


# ----------------------------------------------------------------------- CLI


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="success by attempt on held-out tasks",
        description="Evaluate trained agents on a benchmark split: success and return per task and attempt.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR|CHECKPOINT", help="run directories or checkpoint files (several: mean ± std)")
    p.add_argument("--benchmark", default=None, help="benchmark name (default: the run's)")
    p.add_argument("--split", default="test", help="task split: train or test (default: test, held out)")
    p.add_argument("--trials", type=int, default=None, help="trials per task class (default: as many as the class has goals, 50: each goal once; "
                        "fewer: a seeded subset of distinct goals; more: full passes, then a subset)")
    p.add_argument("--episodes-per-trial", type=int, default=None, help="attempts per trial K (default: the run's)")
    p.add_argument("--seed", type=int, default=0, help="seed of tasks, resets and action sampling")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=False,
                   help="act with the policy mean instead of sampling")
    p.add_argument("--explore-attempts", type=int, default=0,
                   help="with --deterministic: sample actions in the first N attempts of each trial (they explore), "
                        "act on the mean in the rest (default 0: every attempt deterministic)")
    p.add_argument("--num-envs", type=int, default=None, help="parallel trial envs, rounded down to a multiple of the task classes (default: up to 20)")
    p.add_argument("--workers", type=int, default=None,
                   help="env worker processes (default: one per CPU for Meta-World, none for toy tasks; 0: in-process)")
    p.add_argument("--max-episode-steps", type=int, default=None, help="steps per attempt (default: the run's)")
    p.add_argument("--task-switches", type=int, default=0,
                   help="unannounced task switches per trial, at attempt boundaries (default 0); adds a table "
                        "by attempt around the first switch")
    p.add_argument("--switch-class", action="store_true", help="switch to another class, not another goal")
    p.add_argument("--protocol", choices=PROTOCOLS, default="rl2",
                   help="rl2: K-attempt trials; metaworld: metaworld.evaluation.metalearning_evaluation")
    p.add_argument("--num-evals", type=int, default=None, help="metaworld protocol: task resamples (default 10)")
    p.add_argument("--adaptation-episodes", type=int, default=None,
                   help="metaworld protocol: episodes before evaluation (default K-1, at least 1)")
    p.add_argument("--evaluation-episodes", type=int, default=3, help="metaworld protocol: evaluation episodes")
    p.add_argument("--meta-batch-size", type=int, default=None, help="metaworld protocol: envs (default: 4 per class)")
    p.add_argument("--device", default="cpu", help="torch device for the policy")
    p.add_argument("--out", default=None, help="JSON file (a CSV is written beside it; default RUN_DIR/eval_<split>.json)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar on stderr")
    p.set_defaults(func=run)
    return p


def describe_checkpoint(source: str | Path) -> str:
    """'PATH (update U, N env steps)' of the checkpoint a run directory or file resolves to."""
    from metarl.checkpoint import load_checkpoint, resolve_checkpoint

    path = resolve_checkpoint(source)
    c = load_checkpoint(path).get("counters", {})
    return f"{path.resolve()} (update {c.get('update', '?')}, {c.get('env_steps', 0):,} env steps)"


def header(result: dict[str, Any], split: str) -> str:
    """What was played: benchmark, split, protocol, how many trials or episodes, which actions."""
    actions = "deterministic actions (the policy mean)" if result.get("deterministic") else "sampled actions"
    if result.get("deterministic") and result.get("explore_attempts"):
        n = result["explore_attempts"]
        actions = f"sampled actions in attempt{'s 1-' + str(n) if n > 1 else ' 1'}, deterministic (the policy mean) after"
    runs = f", mean over {result['num_runs']} runs" if result.get("num_runs") else ""
    if result.get("protocol") == "metaworld":
        return (f"{result['benchmark']} / {split} split, Meta-World's protocol: {result['num_evals']} task draws of "
                f"{result['meta_batch_size']} envs, {result['adaptation_episodes']} adaptation + "
                f"{result['evaluation_episodes']} evaluation episodes each, {actions}{runs}")
    k, trials = result["episodes_per_trial"], result.get("trials")
    return (f"{result['benchmark']} / {split} split, protocol rl2: {trials} trials per task class of {k} attempts "
            f"({result.get('max_episode_steps', '?')} steps each), {actions}{runs}")


def _evaluate_one(source: str, args: argparse.Namespace) -> dict[str, Any]:
    from metarl.checkpoint import load_agent

    agent = load_agent(source, device=args.device)
    print(f"evaluating {getattr(agent, 'checkpoint_text', '') or describe_checkpoint(source)}", flush=True)
    if args.protocol == "metaworld":
        from metarl.protocol import metaworld_evaluate  # imports this module's helpers: a top-level import would cycle

        result = metaworld_evaluate(
            agent, benchmark=args.benchmark, split=args.split, seed=args.seed, deterministic=args.deterministic,
            num_evals=args.num_evals, adaptation_episodes=args.adaptation_episodes,
            evaluation_episodes=args.evaluation_episodes, meta_batch_size=args.meta_batch_size,
            max_episode_steps=args.max_episode_steps,
        )
    else:
        result = evaluate_agent(
            agent, benchmark=args.benchmark, split=args.split, trials=args.trials,
            episodes_per_trial=args.episodes_per_trial, seed=args.seed, deterministic=args.deterministic,
            num_envs=args.num_envs, max_episode_steps=args.max_episode_steps,
            workers=args.workers, progress=args.progress,
            task_switches=args.task_switches, switch_class=args.switch_class,
            explore_attempts=args.explore_attempts,
        )
    result["run"] = str(source)
    cfg = getattr(agent, "config", None)
    result["agent"] = agent_label(cfg) if cfg is not None else "?"
    return result


def group_by_agent(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Results by agent label (cell or SB3 kind), in first-seen order: runs of one agent are seeds."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r.get("agent", "?"), []).append(r)
    return groups


def comparison_table(groups: dict[str, dict[str, Any]]) -> str:
    """One row per agent (its runs aggregated): success by attempt and mean return, or the protocol's two figures."""
    first = next(iter(groups.values()))
    metaworld = first.get("protocol") == "metaworld"
    if metaworld:
        header = ["agent", "runs", "success, Meta-World's count", "success, per env (unbiased)", "mean return"]
    else:
        k = int(first["episodes_per_trial"])
        header = ["agent", "runs"] + [f"success@{a}" for a in range(1, k + 1)] + ["mean return"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] * len(header)) + "|"]
    for label, r in groups.items():
        row = [label, str(r.get("num_runs", 1))]
        if metaworld:
            row += [_cell(r, "success", None, ".2f"), _cell(r, "success_per_env", None, ".2f")]
        else:
            row += [_cell(r, "success_by_attempt", a, ".2f") for a in range(k)]
        row.append(_cell(r, "mean_return", None, ".1f"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from metarl.envs.registry import check_split

    check_split(args.split)
    if str(args.device).startswith("cpu"):
        torch.set_num_threads(1)  # batch-of-envs inference: extra threads only add contention
    for src in args.runs:  # fail on a bad path before spending minutes on the others
        if not Path(src).exists():
            raise FileNotFoundError(f"no such run directory or checkpoint: {src}")
    results = [_evaluate_one(src, args) for src in args.runs]
    groups = group_by_agent(results)
    if len(groups) == 1:
        result = aggregate_runs(results)
        print(header(result, args.split))
        print(markdown_table(result))
    else:  # several agents: one row each, seeds of an agent aggregated
        for key in ("benchmark", "split", "episodes_per_trial", "protocol"):
            values = {str(r.get(key)) for r in results}
            if len(values) > 1:
                raise ValueError(f"runs differ in {key} ({', '.join(sorted(values))}): evaluate them separately")
        merged = {label: aggregate_runs(rs) for label, rs in groups.items()}
        result = {k: results[0][k] for k in ("benchmark", "split", "protocol", "episodes_per_trial")}
        result.update(groups=merged, per_run=results)
        print(header(results[0], args.split) + f"; {len(results)} runs of {len(groups)} agents")
        print(comparison_table(merged))
    if args.out:
        paths = [write_outputs(result, Path(args.out))]
    else:
        paths = [write_outputs(r, default_json_path(Path(r["run"]), args.split, args.protocol)) for r in results]
    for j, c in paths:
        print(f"wrote {j} and {c}", file=sys.stderr)
    return 0
