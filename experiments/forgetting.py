"""Does learned forgetting help? Memory cells on trials whose task changes unannounced.

One command trains every (task, cell, seed) on trials with one unannounced task
switch (``env.task_switches: 1``), evaluates each final checkpoint on the
held-out split with the same switches (``metarl evaluate --task-switches 1``,
deterministic), and writes:
- ``OUT/results.json``: per task and cell, the around-switch table of every seed,
  and the mean with a 95% bootstrap interval across seeds;
- ``OUT/paired.json``: per task, forget-memory minus each other cell, paired by seed, with
  a 95% t-interval at every offset;
- ``OUT/table.md``: success or return at the attempt before the switch, the
  first after it and the second after it, and the paired differences;
- ``OUT/recovery_<task>.png``: return and success by attempt around the switch,
  a line per cell with a 95% band across seeds (``metarl.recovery.plot_recovery``,
  what ``metarl plot --recovery`` draws).

    python experiments/forgetting.py --out runs/forgetting            # the experiment (many hours on 2 cores)
    python experiments/forgetting.py --out runs/forgetting --tasks ml1-reach   # only its ML1/reach-v3 part
    python experiments/forgetting.py --out runs/forgetting --tasks point-nav-sparse   # the sparse-reward point-nav
    python experiments/forgetting.py --out runs/forgetting --tasks bandit-onehot      # the bandit with one good arm
    python experiments/forgetting.py --smoke --out /tmp/forgetting    # every step, tiny budgets (a minute)
    python experiments/forgetting.py --replot --out runs/forgetting   # the plots again from OUT/results.json
    python experiments/forgetting.py --collect --out runs/forgetting  # summarise every finished run in OUT

Runs and evaluations already in OUT are reused (a stopped experiment continues where
it was; several invocations with different ``--cells`` can share one OUT and a final
``--collect`` summarises them all, each cell with the seeds it has). A run counts as finished
when it has its final checkpoint or its cached evaluation ``eval_test_switch.json``, so the raw
files committed under ``docs/results/`` (copied to ``OUT/<task>/<cell>/seedN/``) stand in for
seeds trained earlier elsewhere, and ``--seeds`` only trains the ones missing.

Cells: ``forget-memory``, its ablation with forget gates fixed at 1
(``forget-memory-noforget``: ``cell_options: {learn_forget: false}``), the same cell with
its forget, write and read heads reading the controller's previous state as well as x_t
(``forget-memory-controller``: ``write_mode: controller``, so a gate can react to what
the controller expected, not only to the current input), the cell and its ablation with
no controller (``forget-memory-linear``, ``forget-memory-noforget-linear``: ``controller:
linear``, a stateless readout of [x_t; m_t], so whatever is remembered passes through the
slots and their forget gates), the cell and its ablation with heads that read the change of
the input as well as x_t (``forget-memory-delta``, ``forget-memory-noforget-delta``:
``head_input: delta``, so a gate can close when the reward input falls), the cell with forget
gates that read the reward-prediction error (``forget-memory-surprise``: ``surprise: true``, its
predictor trained by ``ppo.surprise_coef``'s auxiliary loss), ``meta-lstm``,
``lstm``, ``gru``, ``mann``, ``ntm``, ``mlp``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metarl import stats
from metarl.checkpoint import load_agent
from metarl.config import load_config
from metarl.evaluate import evaluate_agent
from metarl.recovery import SwitchTable, plot_recoveries
from metarl.runs import read_metrics
from metarl.train import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class Task:
    """One task of the experiment: its preset and what this experiment changes in it."""

    preset: Path
    attempts: int  # attempts per trial (the switch falls at one of attempts 2..K)
    steps: int  # env steps per run
    figure: str  # the figure compared: "success" or "return"
    overrides: tuple[str, ...] = ()  # further config overrides for every cell of this task
    cells: tuple[str, ...] | None = None  # the cells run by default (None: all of CELLS)
    seeds: int = 5  # seeds per cell by default
    eval_trials: int | None = None  # held-out trials per evaluation (None: every held-out goal once)


# the cells the comparison is about: forget-memory, its fixed-gate ablation, the other memories, none
COMPARED = ("forget-memory", "forget-memory-noforget", "meta-lstm", "lstm", "gru", "mann", "ntm", "mlp")
TASKS = {
    "point-nav": Task(CONFIGS / "point_nav.yaml", 8, 1_000_000, "return"),
    "bandit": Task(CONFIGS / "bandit.yaml", 8, 300_000, "success"),
    # point-nav with reward 1 only near the goal (40-step attempts): a remembered goal that has
    # moved misleads for a whole fruitless visit, not only for the first steps of an attempt
    "point-nav-sparse": Task(CONFIGS / "point_nav.yaml", 8, 1_000_000, "return",
                             overrides=("env.benchmark=point-nav-sparse",), cells=COMPARED),
    # the bandit with one good arm (0.9 among 0.1s): one missing reward says the remembered arm has
    # stopped paying, and forgetting it pays (bandit's uniform arms do not: experiments/bandit_ceiling.py);
    # 10 one-pull attempts, so that the switch leaves pulls to find the new arm
    # (500 held-out trials, each goal 10 times: a pull's reward is a coin flip, 50 trials are too few)
    "bandit-onehot": Task(CONFIGS / "bandit.yaml", 10, 1_000_000, "success",
                          overrides=("env.benchmark=bandit-onehot",), cells=COMPARED, eval_trials=500),
    # ML1/reach-v3 with the best learner of docs/results.md (the preset: the annealed rate, the
    # smaller action std, 4 minibatches; its task head follows the switch), 4 attempts x 100 steps
    # (a switch needs attempts before and after it; without switches 4 attempts learned worse
    # than 2: docs/results.md, Z1-Z3)
    "ml1-reach": Task(CONFIGS / "ml1_reach_infer.yaml", 4, 2_000_000, "success",
                      cells=("forget-memory", "forget-memory-noforget", "gru"), seeds=3),
}
CELLS = {
    "forget-memory": {},
    "forget-memory-noforget": {"learn_forget": False},
    "forget-memory-controller": {"write_mode": "controller"},
    "forget-memory-linear": {"controller": "linear"},
    "forget-memory-noforget-linear": {"controller": "linear", "learn_forget": False},
    # the heads read [x_t; x_t - x_{t-1}]: a gate can close when the reward input changes
    "forget-memory-delta": {"head_input": "delta"},
    "forget-memory-noforget-delta": {"head_input": "delta", "learn_forget": False},
    # the forget gates also read the reward-prediction error (trained by ppo.surprise_coef's loss)
    "forget-memory-surprise": {"surprise": True},
    "meta-lstm": {},
    "lstm": {},
    "gru": {},
    "mann": {},
    "ntm": {},
    "mlp": {},
}
OFFSETS_SHOWN = (-1, 0, 1)  # the attempt before the switch, the first after it, the second after it


def _overrides(task: str, cell: str, seed: int, steps: int, smoke: bool) -> list[str]:
    name = "forget-memory" if cell.startswith("forget-memory") else cell
    out = [
        f"agent.cell={name}", f"seed={seed}", f"total_steps={steps}", f"env.episodes_per_trial={TASKS[task].attempts}",
        "env.task_switches=1", "env.workers=0", "eval_interval=0", "progress=false", "tensorboard=false",
        "device=cpu", "torch_threads=1", *TASKS[task].overrides,
    ]
    for key, value in CELLS[cell].items():  # keyed by cell name, as the presets' own options are
        out.append(f"agent.cell_options.{name}.{key}={str(value).lower()}")
    if smoke:
        out += ["env.num_envs=8"]
    return out


def run_one(task: str, cell: str, seed: int, out: Path, smoke: bool) -> dict:
    steps = 2_000 if smoke else TASKS[task].steps
    run_dir = out / task / cell / f"seed{seed}"
    cfg = load_config(TASKS[task].preset, _overrides(task, cell, seed, steps, smoke))
    if not finished(run_dir):
        train(cfg, run_dir)
    return evaluate_run(run_dir, smoke, TASKS[task].eval_trials)


def finished(run_dir: Path) -> bool:
    """A run is done once it has its final checkpoint or its cached held-out evaluation (so the
    committed raw files of docs/results/ stand in for a run whose checkpoints were not kept)."""
    return (run_dir / "checkpoints" / "last.pt").is_file() or (run_dir / "eval_test_switch.json").is_file()


def evaluate_run(run_dir: Path, smoke: bool = False, trials: int | None = None) -> dict:
    """The final checkpoint on the held-out split with one switch, ``trials`` trials (None: every goal
    once), cached in the run dir; a cache of another trial count is replaced where the checkpoint is there."""
    path = run_dir / "eval_test_switch.json"
    trials = 16 if smoke else trials
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if path.is_file():
        cached = json.loads(path.read_text())
        if trials is None or cached["trials"] == trials or not checkpoint.is_file():
            return cached["around_switch"]
    result = evaluate_agent(load_agent(run_dir), split="test", trials=trials, deterministic=True, task_switches=1)
    path.write_text(json.dumps(result, indent=1))
    return result["around_switch"]


def run_facts(run_dir: Path) -> dict:
    """Env steps and training seconds of a finished run (its last metrics row)."""
    metrics = read_metrics(run_dir / "metrics.csv")
    return {"run": run_dir.name, "env_steps": int(metrics["env_steps"][-1]),
            "wall_s": round(float(metrics["wall_time"][-1]), 1)}


def cell_result(task: str, run_dirs: list[Path]) -> dict:
    """One cell's entry of results.json: every seed's around-switch table, their summary, the runs."""
    tables = [evaluate_run(d, trials=TASKS[task].eval_trials) for d in run_dirs]
    return {"per_seed": tables, "summary": summarize(tables, TASKS[task].figure), "runs": [run_facts(d) for d in run_dirs]}


def collect(out: Path) -> dict:
    """Every finished run under OUT/<task>/<cell>/seed*/, evaluated (or its cached evaluation)."""
    results: dict = {}
    for task in TASKS:
        for cell in CELLS:
            run_dirs = [d for d in sorted(out.glob(f"{task}/{cell}/seed*")) if finished(d)]
            if run_dirs:
                results.setdefault(task, {})[cell] = cell_result(task, run_dirs)
    return results


def summarize(tables: list[dict], figure: str) -> dict:
    """Mean and 95% bootstrap interval across seeds at every offset."""
    offsets = tables[0]["offsets"]
    per_offset = list(zip(*(t[figure] for t in tables)))  # (offsets, seeds)
    return {
        "offsets": offsets,
        "mean": [float(np.mean(v)) for v in per_offset],
        "ci": [stats.bootstrap_ci(list(v)).as_dict() for v in per_offset],
        "seeds": len(tables),
    }


REFERENCE = "forget-memory"  # the cell every other cell is paired against


def paired(results: dict) -> dict:
    """Per task, forget-memory minus each other cell, paired by seed (the seeds both have): the mean
    difference of success and of return at every offset around the switch, with a 95% t-interval
    (a paired difference removes what a seed's goals and initialisation share across cells)."""
    out: dict = {}
    for task, cells in results.items():
        if REFERENCE not in cells:
            continue
        ref = {run["run"]: table for run, table in zip(cells[REFERENCE]["runs"], cells[REFERENCE]["per_seed"])}
        figure = TASKS[task].figure
        for cell, r in cells.items():
            if cell == REFERENCE:
                continue
            pairs = [(run["run"], ref[run["run"]], t) for run, t in zip(r["runs"], r["per_seed"]) if run["run"] in ref]
            if not pairs:
                continue
            entry = {"figure": figure, "seeds": [name for name, _, _ in pairs], "offsets": pairs[0][1]["offsets"]}
            for key in ("success", "return"):  # the task's figure and the other
                diffs = np.array([np.subtract(a[key], b[key]) for _, a, b in pairs])  # (seeds, offsets)
                entry[key] = [stats.t_ci(diffs[:, j]).as_dict() for j in range(diffs.shape[1])]
            out.setdefault(task, {})[cell] = entry
    return out


def _table_head(title: str, columns: list[str]) -> list[str]:
    """A markdown heading and table header: ``columns``, then one column per offset shown."""
    names = columns + [f"attempt {o:+d}" for o in OFFSETS_SHOWN]
    return [f"### {title}", "", "| " + " | ".join(names) + " |", "|" + "|".join([" --- "] * len(names)) + "|"]


def paired_markdown(pairs: dict) -> str:
    lines = []
    for task, cells in pairs.items():
        figure = TASKS[task].figure
        lines += _table_head(f"{task}: {REFERENCE} minus each cell, paired by seed ({figure}; mean [95% t-CI])",
                             ["cell", "seeds"])
        for cell, r in cells.items():
            cols = [r[figure][r["offsets"].index(o)] for o in OFFSETS_SHOWN]
            lines.append(f"| {cell} | {len(r['seeds'])} | "
                         + " | ".join(f"{c['mean']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]" for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    lines = []
    for task, cells in results.items():
        figure = TASKS[task].figure
        lines += _table_head(f"{task} ({figure} by attempt around the switch; mean [95% CI] over seeds)",
                             ["cell", "seeds", "env steps per run"])
        for cell, r in cells.items():
            s = r["summary"]
            cols = []
            for o in OFFSETS_SHOWN:
                j = s["offsets"].index(o)
                ci = s["ci"][j]
                cols.append(f"{s['mean'][j]:.2f} [{ci['low']:.2f}, {ci['high']:.2f}]")
            steps = sorted({run["env_steps"] for run in r.get("runs", [])})
            lines.append(f"| {cell} | {s['seeds']} | {', '.join(f'{n:,}' for n in steps)} | " + " | ".join(cols) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_results(results: dict, out: Path) -> list[Path]:
    """``recovery_<task>.png`` per task: every cell a line, its seeds' around-switch tables the band
    (the evaluations were deterministic, as :func:`run_one` plays them)."""
    tables = [SwitchTable(cell, task, table, deterministic=True)
              for task, cells in results.items() for cell, r in cells.items() for table in r["per_seed"]]
    return [p.path for p in plot_recoveries(tables, out)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (runs, results.json, table.md)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per cell (default: the task's, 5; ml1-reach 3)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--cells", nargs="+", default=None, choices=list(CELLS),
                   help="default: the task's cells (all; ml1-reach: forget-memory, its ablation, gru)")
    p.add_argument("--smoke", action="store_true", help="tiny budgets: checks every step, measures nothing")
    p.add_argument("--replot", action="store_true", help="only redraw the recovery plots from OUT/results.json")
    p.add_argument("--collect", action="store_true", help="train nothing: summarise every finished run in OUT")
    args = p.parse_args(argv)
    if args.replot:
        path = args.out / "results.json"
        if not path.is_file():
            raise SystemExit(f"forgetting.py: no {path} to replot: run the experiment first")
        for png in plot_results(json.loads(path.read_text()), args.out):
            print(f"wrote {png}")
        return 0
    if args.collect:
        results = collect(args.out)
        if not results:
            raise SystemExit(f"forgetting.py: no finished runs under {args.out}")
    else:
        results = {}
        for task in args.tasks:
            seeds = range(1, (2 if args.smoke else args.seeds or TASKS[task].seeds) + 1)
            for cell in args.cells or TASKS[task].cells or list(CELLS):
                for seed in seeds:
                    run_one(task, cell, seed, args.out, args.smoke)
                results.setdefault(task, {})[cell] = cell_result(
                    task, [args.out / task / cell / f"seed{seed}" for seed in seeds])
    for task, cells in results.items():
        for cell, r in cells.items():
            s = r["summary"]
            print(f"{task} {cell} ({s['seeds']} seeds): {TASKS[task].figure} at attempts -1/0/+1 around the switch "
                  + " / ".join(f"{s['mean'][s['offsets'].index(o)]:.2f}" for o in OFFSETS_SHOWN), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    pairs = paired(results)
    (args.out / "paired.json").write_text(json.dumps(pairs, indent=1))
    (args.out / "table.md").write_text(markdown(results) + ("\n" + paired_markdown(pairs) if pairs else ""))
    pngs = plot_results(results, args.out)
    print(f"wrote {args.out / 'results.json'}, {args.out / 'paired.json'}, {args.out / 'table.md'} and "
          f"{', '.join(str(p) for p in pngs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
