"""Evaluation results: records of trials summarised by attempt, several runs aggregated, tables and files.

:func:`summarize` turns the :class:`TrialRecord` list that ``metarl.evaluate.run_trials``
plays into the JSON-ready summary (per task class and mean over classes, a 95% bootstrap CI
of the final-attempt success, the table around a task switch); :func:`aggregate_runs`
merges several runs' summaries (mean and spread across seeds); the rest prints them as
Markdown tables and writes them as JSON and CSV, as ``metarl evaluate`` does.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl import stats


@dataclass
class TrialRecord:
    """The outcome of one trial: per attempt (1..K) success and raw return."""

    task: str
    success: list[bool]
    returns: list[float]
    goal: int | None = None
    switches: list[int] = field(default_factory=list)
    """1-based attempts whose task was switched unannounced (``task_switches`` > 0)."""


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


# ----------------------------------------------------------------------- several runs


def check_comparable(results: list[dict[str, Any]]) -> None:
    """One-line ValueError unless all runs were evaluated alike (benchmark, split, K, protocol)."""
    for key in ("benchmark", "split", "episodes_per_trial", "protocol"):
        values = {str(r.get(key)) for r in results}
        if len(values) > 1:
            raise ValueError(f"runs differ in {key} ({', '.join(sorted(values))}): evaluate them separately")


def aggregate_runs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread (sample std) across runs of the same benchmark/split/K."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    check_comparable(results)
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
        columns = ["agent", "runs", "success, Meta-World's count", "success, per env (unbiased)", "mean return"]
    else:
        k = int(first["episodes_per_trial"])
        columns = ["agent", "runs"] + [f"success@{a}" for a in range(1, k + 1)] + ["mean return"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join([" --- "] * len(columns)) + "|"]
    for label, r in groups.items():
        row = [label, str(r.get("num_runs", 1))]
        if metaworld:
            row += [_cell(r, "success", None, ".2f"), _cell(r, "success_per_env", None, ".2f")]
        else:
            row += [_cell(r, "success_by_attempt", a, ".2f") for a in range(k)]
        row.append(_cell(r, "mean_return", None, ".1f"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
