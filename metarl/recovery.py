"""Recovery curves: return and success by attempt around an unannounced task switch, one line per agent.

The tables come from ``metarl evaluate --task-switches S`` (``around_switch``:
offsets -2..+3 relative to each trial's first switch, 0 = the first attempt on
the new task). :func:`read_evaluations` takes them from evaluation JSONs (one
run's, an aggregate over seeds, or several agents'; every run inside counts as
one seed), :func:`run_tables` from run directories (their ``eval_test.json``,
else an evaluation played here), ``experiments/forgetting.py`` from its own
results. :func:`recovery_lines` stacks the seeds of each line and
:func:`plot_recovery` draws them: the mean over seeds with a 95% bootstrap band
across seeds (as ``metarl evaluate`` aggregates and the experiment's table), a
line at the switch. ``metarl plot --recovery`` and ``metarl plot RUN_DIR
--task-switches S`` write one ``recovery_<benchmark>.png`` per benchmark.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl import stats
from metarl.checkpoint import load_agent
from metarl.evaluate import evaluate_agent
from metarl.runs import RunData, group_runs

FIGURES = ("return", "success")
_YLABELS = {"return": "return (sum of rewards per attempt)", "success": "success rate"}


@dataclass
class SwitchTable:
    """One run's ``around_switch`` table, with the line it belongs to."""

    label: str
    benchmark: str
    table: dict[str, list]
    deterministic: bool | None = None


@dataclass
class RecoveryLine:
    """The seeds of one line: per figure a (seeds, offsets) array."""

    label: str
    offsets: list[int]
    values: dict[str, np.ndarray]

    @property
    def seeds(self) -> int:
        return int(self.values[FIGURES[0]].shape[0])


@dataclass
class RecoveryPlot:
    """What :func:`plot_recovery` drew: per line and figure the (mean, low, high) arrays over the offsets."""

    path: Path
    offsets: list[int]
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(default_factory=dict)


# ----------------------------------------------------------------------- reading


def check_table(table: Any, source: str) -> dict[str, list]:
    """One-line ValueError unless ``table`` is an around-switch table (offsets, success and return of equal length)."""
    if not isinstance(table, dict):
        raise ValueError(f"{source}: around_switch is not a table")
    missing = [k for k in ("offsets", *FIGURES) if k not in table]
    if missing:
        raise ValueError(f"{source}: around_switch has no {' or '.join(missing)}")
    if any(len(table[k]) != len(table["offsets"]) for k in FIGURES):
        raise ValueError(f"{source}: around_switch's success and return do not match its offsets")
    return table


def tables_from_result(result: dict[str, Any], source: str, label: str | None = None) -> list[SwitchTable]:
    """Every run's table in an evaluate JSON (its ``per_run`` where it aggregates several, else itself),
    labelled ``label`` or each run's ``agent``; a one-line ValueError where a run has none."""
    if not isinstance(result, dict):
        raise ValueError(f"{source} is not a metarl evaluate JSON (not an object)")
    runs = result.get("per_run") or [result]
    out = []
    for r in runs:
        if "around_switch" not in r:
            run = f" (run {r['run']})" if r.get("run") and len(runs) > 1 else ""
            raise ValueError(f"{source}{run} has no around_switch table: evaluate with "
                             "`metarl evaluate RUN_DIR --task-switches 1 --out FILE.json`")
        out.append(SwitchTable(label or str(r.get("agent", "?")), str(r.get("benchmark", result.get("benchmark", "?"))),
                               check_table(r["around_switch"], source), r.get("deterministic")))
    return out


def read_evaluations(specs: list[str]) -> list[SwitchTable]:
    """Tables of evaluation JSONs given as ``PATH`` or ``LABEL=PATH`` (the line's name; default the JSON's agent)."""
    tables: list[SwitchTable] = []
    for spec in specs:
        label, path = None, Path(spec)
        if "=" in spec and not path.exists():
            label, path = spec.split("=", 1)[0], Path(spec.split("=", 1)[1])
        if not path.is_file():
            raise FileNotFoundError(f"no such evaluation JSON: {path}")
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON ({exc})") from None
        tables += tables_from_result(result, str(path), label)
    return tables


def run_tables(runs: list[RunData], task_switches: int = 0) -> list[SwitchTable]:
    """Tables of run directories, labelled by config (seeds together): each run's ``eval_test.json`` where it has
    ``around_switch``, else (``task_switches`` > 0) a deterministic held-out evaluation with that many switches,
    played here and kept in memory; runs with neither give none."""
    tables: list[SwitchTable] = []
    for label, members in group_runs(runs).items():
        for run in members:
            result = run.evals.get("test", {})
            if "around_switch" not in result:
                if not task_switches:
                    continue
                print(f"evaluating {run.path} on held-out trials with {task_switches} task switch(es), deterministic "
                      f"(`metarl evaluate {run.path} --task-switches {task_switches} --deterministic` keeps it as "
                      "eval_test.json)", file=sys.stderr, flush=True)
                result = evaluate_agent(load_agent(run.path), split="test", deterministic=True,
                                        task_switches=task_switches)
            tables += tables_from_result(result, str(run.path / "eval_test.json"), label)
    return tables


def recovery_lines(tables: list[SwitchTable]) -> list[RecoveryLine]:
    """Tables with the same label stacked as seeds of one line (first-seen order); their offsets must agree."""
    if not tables:
        raise ValueError("no around-switch tables to plot")
    offsets = [int(o) for o in tables[0].table["offsets"]]
    groups: dict[str, list[SwitchTable]] = {}
    for t in tables:
        if [int(o) for o in t.table["offsets"]] != offsets:
            raise ValueError(f"around_switch tables differ in their offsets ({offsets} and {t.table['offsets']})")
        groups.setdefault(t.label, []).append(t)
    lines = []
    for label, members in groups.items():
        values = {f: np.array([m.table[f] for m in members], dtype=np.float64) for f in FIGURES}  # (seeds, offsets)
        lines.append(RecoveryLine(label, offsets, values))
    return lines


def by_benchmark(tables: list[SwitchTable]) -> dict[str, list[SwitchTable]]:
    """Tables per benchmark, first-seen order: each benchmark gets its own figure."""
    out: dict[str, list[SwitchTable]] = {}
    for t in tables:
        out.setdefault(t.benchmark, []).append(t)
    return out


def file_name(benchmark: str) -> str:
    """``recovery_<benchmark>.png`` with path separators replaced (``ML1/reach-v3`` -> ``ML1_reach-v3``)."""
    return "recovery_" + benchmark.replace("/", "_").replace("\\", "_") + ".png"


# ----------------------------------------------------------------------- drawing


def band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% bootstrap interval across seeds at every offset of (seeds, offsets) ``values``, NaNs
    (offsets a seed's trials never reached) left out; all NaN at an offset gives NaN there."""
    mean, low, high = (np.full(values.shape[1], np.nan) for _ in range(3))  # (offsets,) each
    for j in range(values.shape[1]):
        v = values[:, j][np.isfinite(values[:, j])]
        if v.size:
            ci = stats.bootstrap_ci(v)
            mean[j], low[j], high[j] = ci.mean, ci.low, ci.high
    return mean, low, high


def plot_recovery(lines: list[RecoveryLine], out_png: Path, title: str = "") -> RecoveryPlot:
    """Return (left) and success (right) by attempt relative to the switch, a line per :class:`RecoveryLine`
    (mean over seeds, 95% bootstrap band across seeds where it has several), the switch a dashed line."""
    import matplotlib  # late: the Agg backend must be chosen before pyplot is imported, and only plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not lines:
        raise ValueError("no recovery lines to plot")
    offsets = lines[0].offsets
    drawn = RecoveryPlot(out_png, offsets)
    fig, axes = plt.subplots(1, len(FIGURES), figsize=(12, 5.2 + 0.2 * (len(lines) // 4)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, figure in zip(axes[0], FIGURES):
        for g, line in enumerate(lines):
            colour = colours[g % len(colours)]
            mean, low, high = band(line.values[figure])
            drawn.curves.setdefault(line.label, {})[figure] = (mean, low, high)
            seeds = f"mean of {line.seeds} seeds, 95% CI" if line.seeds > 1 else "1 seed"
            ax.plot(offsets, mean, color=colour, marker="o", lw=2, label=f"{line.label} ({seeds})")
            if line.seeds > 1:
                ax.fill_between(offsets, low, high, color=colour, alpha=0.15)
        ax.axvline(-0.5, color="black", ls="--", lw=1.2)
        ax.text(-0.45, 0.98, "task switched (unannounced)", transform=ax.get_xaxis_transform(), va="top",
                fontsize=8)
        ax.set_xticks(offsets)
        ax.set_xticklabels([f"{o:+d}" if o else "0" for o in offsets])
        ax.set_xlabel("attempt relative to the switch (0: the first attempt on the new task)")
        ax.set_ylabel(_YLABELS[figure])
        if figure == "success":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"{figure} by attempt around the switch")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    # as many legend columns as the figure's width holds (about 160 characters at this size)
    ncol = max(1, min(4, len(labels), 160 // (max((len(s) for s in labels), default=1) + 6)))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.suptitle(title or "Recovery after an unannounced task switch")
    rows = -(-len(labels) // ncol)  # legend rows under the panels
    fig.tight_layout(rect=(0, 0.05 + 0.035 * rows, 1, 0.97))
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return drawn


def describe(tables: list[SwitchTable], benchmark: str) -> str:
    """A figure title: benchmark and how the actions were chosen."""
    modes = {t.deterministic for t in tables}
    mode = ("deterministic actions" if modes == {True} else "sampled actions" if modes == {False}
            else "action modes differ between runs")
    return f"Recovery after an unannounced task switch: {benchmark}, held-out trials, {mode}"


def plot_recoveries(tables: list[SwitchTable], out: Path) -> list[RecoveryPlot]:
    """One ``recovery_<benchmark>.png`` in ``out`` per benchmark of ``tables``."""
    out.mkdir(parents=True, exist_ok=True)
    return [plot_recovery(recovery_lines(ts), out / file_name(bench), describe(ts, bench))
            for bench, ts in by_benchmark(tables).items()]
