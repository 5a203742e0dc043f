"""``metarl train``: train from a YAML config (or the default preset), or resume a run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from metarl.cli import CLIError
from metarl.config import DEFAULT_PRESET, load_config

DEFAULT_RUNS = Path("runs")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a memory policy with RL² PPO",
        description=(
            "Train a memory policy across a task distribution (RL² with recurrent PPO). "
            "Without CONFIG the default preset runs: forget-memory on ML1/reach-v3, "
            "short enough for a laptop, ending with a held-out evaluation."
        ),
    )
    p.add_argument("config", nargs="?", help="YAML config (presets in configs/); default: built-in preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set env.num_envs=8 --set agent.cell=gru (repeatable)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="output directory (default: runs/<benchmark>__<cell>__<seed>__<time>)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the run in DIR from checkpoints/last.pt (--set may change e.g. total_steps)")
    p.set_defaults(func=run)


def _default_run_dir(cfg) -> Path:
    name = f"{cfg.env.benchmark.replace('/', '-')}__{cfg.agent.cell}__{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    return DEFAULT_RUNS / name


def run(args: argparse.Namespace) -> int:
    from metarl.train import resume_config, train

    if args.resume is not None:
        if args.config is not None:
            raise CLIError("give either CONFIG or --resume DIR, not both")
        if args.run_dir is not None and args.run_dir != args.resume:
            raise CLIError("--resume continues in its own directory; drop --run-dir")
        if not args.resume.is_dir():
            raise FileNotFoundError(f"run directory not found: {args.resume}")
        cfg = resume_config(args.resume, args.overrides)
        result = train(cfg, args.resume, resume=True)
    else:
        cfg = load_config(args.config, args.overrides, preset=None if args.config else DEFAULT_PRESET)
        run_dir = args.run_dir or _default_run_dir(cfg)
        if (run_dir / "checkpoints" / "last.pt").exists():
            raise CLIError(f"{run_dir} already holds a run; use --resume {run_dir} or another --run-dir")
        result = train(cfg, run_dir)
    ev = result.last_eval
    summary = f"run: {result.run_dir}  updates: {result.updates}  env steps: {result.env_steps}"
    if ev:
        summary += f"  eval success: {ev.get('eval/success', float('nan')):.3f}  eval return: {ev.get('eval/return', float('nan')):.2f}"
    print(summary, flush=True)
    return 130 if result.interrupted else 0
