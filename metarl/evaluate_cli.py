"""``metarl evaluate``: the command line over :func:`metarl.evaluate.evaluate_agent` and ``metarl.protocol``.

Loads each run (or checkpoint), evaluates it (``--protocol rl2``: K-attempt trials;
``metaworld``: Meta-World's own meta-test loop), prints what was played and a table
(one row per agent when several agents are given, their seeds aggregated) and writes
JSON and CSV (``metarl.results``) beside each run or to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from metarl.checkpoint import load_agent, load_checkpoint, resolve_checkpoint
from metarl.envs.registry import check_split
from metarl.evaluate import evaluate_agent
from metarl.kinds import agent_label
from metarl.pretrained import PREFIX, is_pretrained
from metarl.protocol import metaworld_evaluate
from metarl.results import (aggregate_runs, check_comparable, comparison_table, group_by_agent, header, markdown_table,
                            write_outputs)

PROTOCOLS = ("rl2", "metaworld")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="success by attempt on held-out tasks",
        description="Evaluate trained agents on a benchmark split: success and return per task and attempt.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR|CHECKPOINT",
                   help="run directories, checkpoint files or shipped agents (pretrained:NAME, see `metarl pretrained`); several: mean ± std")
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
    path = resolve_checkpoint(source)
    c = load_checkpoint(path).get("counters", {})
    return f"{path.resolve()} (update {c.get('update', '?')}, {c.get('env_steps', 0):,} env steps)"


def default_json_path(source: str | Path, split: str, protocol: str) -> Path:
    """``RUN_DIR/eval_<split>.json`` (``eval_<split>_metaworld.json`` for the Meta-World protocol);
    for a shipped agent, ``./eval_<name>_<split>.json`` (the installed package stays read-only)."""
    suffix = "" if protocol == "rl2" else f"_{protocol}"
    if is_pretrained(source):
        return Path.cwd() / f"eval_{str(source)[len(PREFIX):]}_{split}{suffix}.json"
    source = Path(source)
    run_dir = source if source.is_dir() else (source.parent.parent if source.parent.name == "checkpoints" else source.parent)
    if source.is_file() and source.stem != "last":  # e.g. best.pt, step_<n>.pt: don't overwrite last's
        suffix += f"_{source.stem}"
    return run_dir / f"eval_{split}{suffix}.json"


def _evaluate_one(source: str, args: argparse.Namespace) -> dict[str, Any]:
    agent = load_agent(source, device=args.device)
    print(f"evaluating {getattr(agent, 'checkpoint_text', '') or describe_checkpoint(source)}", flush=True)
    if args.protocol == "metaworld":
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


def run(args: argparse.Namespace) -> int:
    check_split(args.split)
    if str(args.device).startswith("cpu"):
        torch.set_num_threads(1)  # batch-of-envs inference: extra threads only add contention
    for src in args.runs:  # fail on a bad path before spending minutes on the others
        if is_pretrained(src):
            resolve_checkpoint(src)  # an unknown name fails here, listing the shipped ones
        elif not Path(src).exists():
            raise FileNotFoundError(f"no such run directory or checkpoint: {src}")
    results = [_evaluate_one(src, args) for src in args.runs]
    groups = group_by_agent(results)
    if len(groups) == 1:
        result = aggregate_runs(results)
        print(header(result, args.split))
        print(markdown_table(result))
    else:  # several agents: one row each, seeds of an agent aggregated
        check_comparable(results)
        merged = {label: aggregate_runs(rs) for label, rs in groups.items()}
        result = {k: results[0][k] for k in ("benchmark", "split", "protocol", "episodes_per_trial")}
        result.update(groups=merged, per_run=results)
        print(header(results[0], args.split) + f"; {len(results)} runs of {len(groups)} agents")
        print(comparison_table(merged))
    if args.out:
        paths = [write_outputs(result, Path(args.out))]
    else:
        paths = [write_outputs(r, default_json_path(r["run"], args.split, args.protocol)) for r in results]
    for j, c in paths:
        print(f"wrote {j} and {c}", file=sys.stderr)
    return 0
