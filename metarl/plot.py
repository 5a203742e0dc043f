"""``metarl plot``: learning curves, adaptation curves, recovery curves and memory pictures as PNGs.

- ``learning_curves.png``: train and held-out (``eval/``) success and return against
  env steps; every run thin, and per config (runs that differ only in seed) the
  mean with a 95% band across seeds.
- ``adaptation.png``: success by attempt, train vs held-out tasks, from
  ``eval_<split>.json`` files in the run directory (written by ``metarl evaluate``)
  or else from the per-attempt columns of ``metrics.csv``.
- ``adaptation_by_class.png``: success by attempt per task class, held-out and training,
  from the runs' evaluate JSONs of benchmarks with several classes (ML10, ML45).
- ``memory_<name>.png``: for a recorded trial (``<video>.memory.npz`` from
  ``metarl record``; without one, a trial traced here on the first held-out task),
  read/write weights, forget gates and usage as slots x time heatmaps with
  attempt boundaries marked. With ``--task-switches S`` the traced trial switches
  its task unannounced, and the attempt where the env's info said
  ``task_switched`` is marked (``memory_<run>_<task>_switch.png``).
- ``recovery_<benchmark>.png``: return and success by attempt around the first
  task switch, a line per config (or agent) with a 95% band across seeds, from
  evaluation JSONs (``--recovery``) or the runs' own (``metarl.recovery``).

Run directories are read by ``metarl.runs``, untraced trials played by
``metarl.diagnostics.trace_memory``. Matplotlib with the Agg backend: no display needed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metarl import stats
from metarl.checkpoint import load_agent
from metarl.diagnostics import trace_memory
from metarl.recovery import plot_recoveries, read_evaluations, run_tables
from metarl.runs import RunData, group_runs, load_run

MEMORY_KEYS = ("read_weights", "write_weights", "forget", "usage")
_TITLES = {"read_weights": "read weights (mean over heads)", "write_weights": "write weights",
           "forget": "forget gates", "usage": "slot usage"}


# ----------------------------------------------------------------------- figures


def _plt() -> Any:
    import matplotlib  # late: the Agg backend must be chosen before pyplot is imported, and only plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve(run: RunData, column: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = run.columns.get("env_steps"), run.columns.get(column)
    if x is None or y is None:
        return np.array([]), np.array([])
    ok = ~np.isnan(y) & ~np.isnan(x)
    return x[ok], y[ok]


def plot_learning_curves(runs: list[RunData], out: Path) -> Path:
    """2x2: success and return, train and held-out, against env steps."""
    plt = _plt()
    panels = [("charts/success", "train tasks: success rate"), ("eval/success", "held-out tasks: success rate"),
              ("charts/return", "train tasks: return per attempt"), ("eval/return", "held-out tasks: return per attempt")]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = group_runs(runs)
    for ax, (column, title) in zip(axes.flat, panels):
        drew = False
        for g, (label, members) in enumerate(groups.items()):
            colour = colours[g % len(colours)]
            curves = [_curve(r, column) for r in members]
            curves = [(x, y) for x, y in curves if x.size]
            for x, y in curves:
                ax.plot(x, y, color=colour, alpha=0.35 if len(curves) > 1 else 0.9, lw=1)
            if len(curves) > 1:  # mean ± 95% CI across seeds on a common step grid
                lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
                if hi > lo:
                    grid = np.linspace(lo, hi, 100)
                    ys = np.stack([np.interp(grid, x, y) for x, y in curves])  # (seeds, 100)
                    mean, low, high = stats.mean_ci_across_runs(ys)
                    ax.plot(grid, mean, color=colour, lw=2.2, label=f"{label} (mean of {len(curves)} seeds, 95% CI)")
                    ax.fill_between(grid, low, high, color=colour, alpha=0.2)
            elif curves:
                ax.plot([], [], color=colour, label=label)
            drew = drew or bool(curves)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if "success" in column:
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("success rate (fraction of attempts)")
        else:
            ax.set_ylabel("return (sum of rewards per attempt)")
        if not drew:
            ax.text(0.5, 0.5, "no data (metric not logged)", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in axes[1]:
        ax.set_xlabel("environment steps")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1:]:
        h, l = ax.get_legend_handles_labels()
        for hh, ll in zip(h, l):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=9)
    fig.suptitle("Learning curves")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    path = out / "learning_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class AttemptSeries:
    """Success by attempt of one run on one split, with how it was measured."""

    success: list[float]
    trials: int | None
    """Trials behind each point (None: unknown)."""
    mode: str
    """``deterministic`` or ``sampled`` actions."""


def adaptation_by_attempt(run: RunData, split: str) -> AttemptSeries | None:
    """Success by attempt of one run on ``split``: its evaluate JSON, else metrics.csv columns
    (train: the last 5 updates' training trials, sampled; held-out: the last in-training evaluation)."""
    if split in run.evals and "success_by_attempt" in run.evals[split]:
        ev = run.evals[split]
        per_task = [t.get("trials") for t in ev.get("tasks", {}).values()]
        trials = sum(per_task) if per_task and None not in per_task else None
        return AttemptSeries([float(v) for v in ev["success_by_attempt"]], trials,
                             "deterministic" if ev.get("deterministic") else "sampled")
    prefix = "eval" if split == "test" else "charts"
    env = run.config.get("env", {})
    k, values, rows = 1, [], 0
    while f"{prefix}/success_attempt_{k}" in run.columns:
        col = run.columns[f"{prefix}/success_attempt_{k}"]
        col = col[~np.isnan(col)]
        if not col.size:
            return None
        rows = min(5, col.size) if prefix == "charts" else 1
        values.append(float(col[-rows:].mean()))
        k += 1
    if not values:
        return None
    if prefix == "charts":
        trials = env.get("num_envs") and env["num_envs"] * rows
        return AttemptSeries(values, trials or None, "sampled")
    eval_envs = env.get("eval_num_envs") or env.get("num_envs")
    trials = eval_envs and eval_envs * env.get("eval_trials", 1)
    return AttemptSeries(values, trials or None, "deterministic")


_SPLIT_COLOURS = {"train": "tab:blue", "test": "tab:orange"}
_MARKERS = "osD^vP*X"


def plot_adaptation(runs: list[RunData], out: Path) -> Path:
    """Success by attempt per config (mean ± std over seeds): train tasks blue, held-out orange,
    each labelled with its trials per point and action mode; one marker shape per config."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    drew = False
    for g, (label, members) in enumerate(group_runs(runs).items()):
        for split, style in (("train", "--"), ("test", "-")):
            series = [v for v in (adaptation_by_attempt(r, split) for r in members) if v]
            if not series:
                continue
            k = min(len(v.success) for v in series)
            a = np.array([v.success[:k] for v in series])  # (runs, K)
            attempts = np.arange(1, k + 1)
            err = a.std(axis=0, ddof=1) if len(series) > 1 else None
            name = "train tasks" if split == "train" else "held-out tasks"
            trials = {v.trials for v in series}
            n = f"{trials.pop()} trials per point" if len(trials) == 1 and None not in trials else "trials per point unknown"
            modes = " / ".join(sorted({v.mode for v in series}))
            seeds = f", mean ± std of {len(series)} seeds" if len(series) > 1 else ""
            ax.errorbar(attempts, a.mean(axis=0), yerr=err, fmt=style, marker=_MARKERS[g % len(_MARKERS)],
                        color=_SPLIT_COLOURS[split], capsize=3,
                        label=f"{label}: {name} ({n}{' each' if seeds else ''}, {modes} actions{seeds})")
            drew = True
    if not drew:
        ax.text(0.5, 0.5, "no per-attempt success logged", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("attempt within the trial")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.set_title("Adaptation: success by attempt (memory kept across attempts)")
    if drew:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = out / "adaptation.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def class_success(runs: list[RunData], split: str) -> dict[str, np.ndarray]:
    """Success by attempt per task class on ``split``, averaged over ``runs`` (seeds of one config):
    class -> (K,) from the runs' evaluate JSONs; empty unless every run has one with 2+ classes."""
    tables = [r.evals.get(split, {}).get("tasks", {}) for r in runs]
    if not tables or any(len(t) < 2 for t in tables):
        return {}
    names = sorted(set.intersection(*(set(t) for t in tables)))
    k = min(len(t[n]["success_by_attempt"]) for t in tables for n in names)
    return {n: np.mean([t[n]["success_by_attempt"][:k] for t in tables], axis=0) for n in names}  # (K,)


def plot_by_class(runs: list[RunData], out: Path) -> Path | None:
    """``adaptation_by_class.png``: success by attempt for each task class (bars per attempt), a row
    per config and a column per split, from evaluate JSONs of benchmarks with several classes
    (ML10, ML45); None when no run has such an evaluation."""
    cells = [(label, split, class_success(members, split))
             for label, members in group_runs(runs).items() for split in ("test", "train")]
    cells = [c for c in cells if c[2]]
    if not cells:
        return None
    labels = list(dict.fromkeys(c[0] for c in cells))
    splits = [s for s in ("test", "train") if any(c[1] == s for c in cells)]
    plt = _plt()
    widths = [max(len(c[2]) for c in cells if c[1] == s) for s in splits]
    fig, axes = plt.subplots(len(labels), len(splits), squeeze=False, gridspec_kw={"width_ratios": widths},
                             figsize=(2.0 + 0.55 * sum(widths), 3.6 * len(labels)))
    for ax in axes.flat:
        ax.set_visible(False)
    for label, split, table in cells:
        ax = axes[labels.index(label), splits.index(split)]
        ax.set_visible(True)
        names = list(table)
        k = len(table[names[0]])
        x = np.arange(len(names))
        for a in range(k):
            ax.bar(x + (a - (k - 1) / 2) * 0.8 / k, [table[n][a] for n in names], 0.8 / k, label=f"attempt {a + 1}")
        ax.set_xticks(x, [n.removesuffix("-v3") for n in names], rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("success rate")
        ax.grid(alpha=0.3, axis="y")
        seeds = len(group_runs(runs)[label])
        ax.set_title(f"{label}: {'held-out' if split == 'test' else 'training'} classes"
                     f"{f' (mean of {seeds} seeds)' if seeds > 1 else ''}", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "adaptation_by_class.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def switch_marks(data: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    """``(step, attempt)`` of every task switch in a memory trace: the steps its env's info marked
    ``task_switched`` (``switch_steps``) and the 1-based attempts they start; none for stationary trials."""
    starts = data["episode_starts"] if "episode_starts" in data else np.array([0])
    steps = data["switch_steps"].reshape(-1) if "switch_steps" in data else np.array([], dtype=np.int64)  # (S,)
    return [(int(s), int(np.searchsorted(starts, s, side="right"))) for s in steps]


def plot_memory(memory: Path | dict[str, np.ndarray], out_png: Path) -> Path:
    """Slots x time heatmaps of one trial's memory (a ``.memory.npz`` recording or a traced dict),
    attempt boundaries dashed, unannounced task switches a solid red line."""
    plt = _plt()
    data = dict(np.load(memory)) if isinstance(memory, Path) else memory
    keys = [k for k in MEMORY_KEYS if k in data]
    if not keys:
        raise ValueError(f"{memory if isinstance(memory, Path) else 'the trace'} holds no memory diagnostics "
                         "(cell without memory?)")
    starts = data["episode_starts"] if "episode_starts" in data else np.array([0])
    successes = data["successes"] if "successes" in data else None
    task = str(data["task"]) if "task" in data else out_png.stem
    switches = switch_marks(data)
    fig, axes = plt.subplots(len(keys), 1, figsize=(11, 2.4 * len(keys) + 0.8), sharex=True, squeeze=False)
    for row, (ax, key) in enumerate(zip(axes[:, 0], keys)):
        v = data[key]
        if v.ndim == 3:
            v = v.mean(axis=1)  # (T, heads, N) -> (T, N)
        image = ax.imshow(v.T, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis",
                          vmin=0.0, vmax=1.0 if key == "forget" else None)
        for s in starts[1:]:
            ax.axvline(s - 0.5, color="white", ls="--", lw=1.2)
        for s, attempt in switches:  # before the switched attempt's first step, like an attempt boundary
            ax.axvline(s - 0.5, color="red", lw=2.2, label=f"task switched (attempt {attempt})")
            if row == 0:
                ax.text(s - 0.5, 0.95, f" task switched (attempt {attempt})", transform=ax.get_xaxis_transform(),
                        color="red", fontsize=8, va="top", bbox=dict(facecolor="white", alpha=0.7, lw=0))
        ax.set_ylabel("memory slot")
        ax.set_title(_TITLES.get(key, key), fontsize=10)
        fig.colorbar(image, ax=ax, pad=0.01, label="gate value" if key == "forget" else "weight")
    red = "; red: the task switched, unannounced" if switches else ""
    axes[-1, 0].set_xlabel(f"env step within the trial (dashed: next attempt starts{red})")
    verdict = "" if successes is None else "  attempts solved: " + " ".join("✓" if s else "✗" for s in successes)
    switched = f" (task switched at attempt {', '.join(str(a) for _, a in switches)})" if switches else ""
    fig.suptitle(f"Memory during one trial of {task}{switched}{verdict}")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def trace_runs(runs: list[RunData], task_switches: int = 0) -> list[tuple[str, dict[str, np.ndarray]]]:
    """For runs without a recording: trace one held-out trial each (first run per config), kept in
    memory (nothing is written beside the plots), with ``task_switches`` unannounced switches;
    ``(name, memory)`` pairs."""
    traced = []
    for label, members in group_runs(runs).items():
        run = members[0]
        if not (run.path / "checkpoints" / "last.pt").is_file():
            continue
        agent = load_agent(run.path)
        env_cfg = agent.config.env
        memory = trace_memory(agent, env_cfg.benchmark, episodes_per_trial=env_cfg.episodes_per_trial,
                              max_episode_steps=env_cfg.max_episode_steps, task_switches=task_switches)
        if memory:
            traced.append((f"{run.path.name}_{str(memory['task'])}{'_switch' if task_switches else ''}", memory))
    return traced


def find_memory_files(runs: list[RunData]) -> list[Path]:
    """``*.memory.npz`` recordings inside the run directories (first per run, sorted)."""
    found = []
    for r in runs:
        files = sorted(r.path.rglob("*.memory.npz"))
        if files:
            found.append(files[0])
    return found


def make_plots(run_dirs: list[str | Path], out: Path, memory: list[Path] | None = None,
               trace: bool = True, task_switches: int = 0, recovery: list[str] | None = None) -> list[Path]:
    """Write every plot for ``run_dirs`` into ``out``; returns the PNG paths.

    Memory pictures: ``memory`` files, else recordings found in the runs (not with
    ``task_switches``: those trials did not switch), else (``trace``) one traced held-out
    trial per config, with ``task_switches`` switches, for cells that expose memory diagnostics.
    Recovery curves: from the ``recovery`` evaluation JSONs (``PATH`` or ``LABEL=PATH``) and the
    runs' switch-aligned evaluations (played here where missing, with ``task_switches`` > 0).
    """
    if not run_dirs and not recovery:
        raise ValueError("nothing to plot: give run directories or --recovery EVAL.json files")
    runs = [load_run(p) for p in run_dirs]
    tables = read_evaluations(recovery or [])  # bad JSONs fail before any run is traced or evaluated
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_learning_curves(runs, out), plot_adaptation(runs, out)] if runs else []
    by_class = plot_by_class(runs, out)
    paths += [by_class] if by_class else []
    tables += run_tables(runs, task_switches)
    if tables:
        paths += [p.path for p in plot_recoveries(tables, out)]
    files = memory or ([] if task_switches else find_memory_files(runs))
    for npz in files:
        if not Path(npz).is_file():
            raise FileNotFoundError(f"no such memory recording: {npz}")
    pictures: list[tuple[str, Path | dict[str, np.ndarray]]] = [
        (Path(npz).name.removesuffix(".memory.npz"), Path(npz)) for npz in files]
    if not pictures and trace:
        pictures = trace_runs(runs, task_switches)
    for name, source in pictures:
        paths.append(plot_memory(source, out / f"memory_{name}.png"))
    return paths


# ----------------------------------------------------------------------- CLI


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot",
        help="learning curves, adaptation, recovery and memory PNGs",
        description="Plot learning curves, success by attempt and memory pictures of runs, and recovery curves "
                    "around an unannounced task switch (of runs, or of evaluation JSONs alone).",
    )
    p.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories (seeds of one config are averaged)")
    p.add_argument("--out", required=True, type=Path, help="output directory for the PNGs")
    p.add_argument("--memory", nargs="*", type=Path, default=None,
                   help="memory recordings (<video>.memory.npz from metarl record); default: any inside the runs")
    p.add_argument("--trace", action=argparse.BooleanOptionalAction, default=True,
                   help="without recordings, play one held-out trial per config to draw its memory")
    p.add_argument("--task-switches", type=int, default=0, metavar="S",
                   help="trace the memory pictures on trials that switch their task S times unannounced (the switch "
                        "marked), and draw recovery curves of the runs, evaluating here those whose eval_test.json "
                        "has no around_switch (deterministic, held-out split)")
    p.add_argument("--recovery", nargs="+", default=None, metavar="[LABEL=]EVAL.json",
                   help="recovery curves from `metarl evaluate --task-switches S` JSONs (one per run, or aggregated); "
                        "files with the same label (default: the JSON's agent) are seeds of one line")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.task_switches < 0:
        raise ValueError(f"task-switches must be >= 0, got {args.task_switches}")
    paths = make_plots(args.runs, args.out, args.memory, trace=args.trace, task_switches=args.task_switches,
                       recovery=args.recovery)
    for path in paths:
        print(path)
    if args.runs and not any(p.name.startswith("memory_") for p in paths):
        print("no memory pictures: the cells expose no memory diagnostics and no recording was found "
              "(`metarl record RUN_DIR --task ... --out RUN_DIR/videos/trial.mp4` writes one)", file=sys.stderr)
    return 0
