"""``metarl train``: train from a YAML config, a preset name (or the default preset), or resume a run.

It prints a start banner (what runs, where, how big) and a closing summary
(where the run is, the last held-out evaluation, labelled, and the commands
that evaluate, plot and record this run next).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shlex
import time
from pathlib import Path

from metarl.errors import CLIError
from metarl.config import DEFAULT_PRESET, load_config
from metarl.kinds import agent_kinds, agent_label, get_kind, trainer
from metarl import pretrained
from metarl.presets import CONFIGS_DIR, preset_names, resolve_config

DEFAULT_RUNS = Path("runs")


def add_parser(subparsers) -> None:
    names = preset_names()
    presets = ", ".join(names) if names else f"none (no {CONFIGS_DIR})"
    p = subparsers.add_parser(
        "train",
        help="train a memory policy with RL² PPO",
        description=(
            "Train a memory policy across a task distribution (RL² with recurrent PPO). "
            "Without CONFIG the default preset runs: forget-memory on ML1/reach-v3, "
            "short enough for a laptop, ending with a held-out evaluation. "
            "CONFIG may also name a preset of configs/ (metarl train ml1_reach). "
            f"--set agent.kind=KIND picks the learner ({', '.join(agent_kinds())}; default metarl): "
            "the sb3-* kinds train Stable-Baselines3 baselines on the same trial envs into the same run layout."
        ),
    )
    p.add_argument("config", nargs="?",
                   help=f"YAML config file, or a preset name: {presets}; default: the built-in preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set env.num_envs=8 --set agent.cell=gru (repeatable)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="output directory (default: runs/<benchmark>__<cell>__<seed>__<time>)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the run in DIR from checkpoints/last.pt (--set may change e.g. total_steps)")
    p.set_defaults(func=run)


def _default_run_dir(cfg) -> Path:
    name = f"{cfg.env.benchmark.replace('/', '-')}__{agent_label(cfg)}__{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    return DEFAULT_RUNS / name


def _is_main_process() -> bool:
    """Rank 0 under torchrun (only it prints the banner and summary), else True."""
    return int(os.environ.get("RANK", "0")) == 0


def _world_size() -> int:
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def _n(x: int) -> str:
    return f"{x:,}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _has_renderer(spec) -> bool:
    """Whether ``metarl record`` can draw this benchmark: MuJoCo scenes, or a core with its own render()."""
    from metarl.envs.core import Core
    from metarl.envs.metaworld_tasks import MetaWorldBenchmark

    if isinstance(spec, MetaWorldBenchmark):
        return True
    try:
        core = spec.make_core(spec.classes("test")[0], max_episode_steps=1, render_mode="rgb_array")
    except Exception:  # a custom benchmark that cannot build a core here: do not promise a video
        return False
    try:
        return type(core).render is not Core.render
    finally:
        core.close()


class Plan:
    """The shape of a run as ``train`` will compute it (per update and in total)."""

    def __init__(self, cfg, world_size: int = 1):
        from metarl.envs.registry import get_benchmark

        self.spec = get_benchmark(cfg.env.benchmark)  # unknown names fail here, in one line
        self.attempts = cfg.env.episodes_per_trial or self.spec.default_episodes_per_trial
        self.steps = cfg.env.max_episode_steps or self.spec.default_max_episode_steps
        self.attempts_default = cfg.env.episodes_per_trial is None
        self.steps_default = cfg.env.max_episode_steps is None
        self.world_size = world_size
        self.envs = cfg.env.num_envs
        self.steps_per_update = self.envs * self.attempts * self.steps * world_size
        self.updates = max(1, math.ceil(cfg.total_steps / self.steps_per_update))
        self.eval_envs = cfg.env.eval_num_envs or cfg.env.num_envs
        self.eval_trials = self.eval_envs * cfg.env.eval_trials


def banner(cfg, source: str, run_dir: Path, resume_at: tuple[int, int] | None = None, world_size: int = 1) -> str:
    """The start banner: config source, benchmark, cell, device, trial shape, sizes, run directory."""
    from metarl.train import resolve_device

    plan = Plan(cfg, world_size)
    device = resolve_device(cfg.device)
    device_text = str(device) if cfg.device == str(device) else f"{device} (device: {cfg.device})"
    attempts = _plural(plan.attempts, "attempt")
    steps = _plural(plan.steps, "step")
    if plan.attempts_default and plan.steps_default:
        shape = f"{attempts} x {steps} (benchmark defaults)"
    else:
        shape = (f"{attempts}{' (benchmark default)' if plan.attempts_default else ''} x "
                 f"{steps}{' (benchmark default)' if plan.steps_default else ''}")
    envs = f"{plan.envs} envs" + (f" x {world_size} ranks" if world_size > 1 else "")
    planned = plan.updates * plan.steps_per_update
    if planned == cfg.total_steps:
        total = f"total: {_n(planned)} env steps = {plan.updates} updates"
    else:
        total = (f"total: {plan.updates} updates = {_n(planned)} env steps "
                 f"(total_steps {_n(cfg.total_steps)} rounded up to whole updates)")
    if cfg.max_updates and cfg.max_updates < plan.updates:
        total += f", stopping after update {cfg.max_updates} (max_updates)"
    if resume_at is not None:
        total += f"; resuming at update {resume_at[0]} ({_n(resume_at[1])} env steps)"
    every = f"every {cfg.eval_interval} updates and at the end" if cfg.eval_interval else "at the end"
    if cfg.agent.kind == "metarl":
        agent = f"cell {cfg.agent.cell} (hidden {cfg.agent.hidden_size})"
    else:
        agent = f"agent {cfg.agent.kind}: {get_kind(cfg.agent.kind).summary} (hidden {cfg.agent.hidden_size})"
    lines = [
        f"metarl train: {source}",
        f"  benchmark {cfg.env.benchmark}, {agent}, device {device_text}",
        f"  {envs} x trial of {shape} = {_n(plan.steps_per_update)} env steps per update",
        f"  {total}",
        f"  held-out eval {every}: {plan.eval_trials} trials of the test split",
        f"  run dir: {Path(run_dir).resolve()}",
    ]
    return "\n".join(lines)


def _last_eval_update(run_dir: Path) -> int | None:
    """The update of the last metrics.csv row holding ``eval/success`` (None if none or no file)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return None
    last = None
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("eval/success") and row.get("update"):
                last = int(row["update"])
    return last


def summary(result, cfg, world_size: int = 1) -> str:
    """Closing lines: the run, its counters, the labelled held-out result, the next commands."""
    plan = Plan(cfg, world_size)
    run = Path(result.run_dir).resolve()
    q = shlex.quote(str(run))
    finished = result.updates >= plan.updates
    head = "done" if finished else "stopped"
    lines = [f"{head}: {run} ({result.updates} of {plan.updates} updates, {_n(result.env_steps)} env steps)"]
    ev = result.last_eval or {}
    if "eval/success" in ev:
        by_attempt = "  ".join(
            f"{k}: {ev[f'eval/success_attempt_{k}']:.2f}"
            for k in range(1, plan.attempts + 1) if f"eval/success_attempt_{k}" in ev
        )
        at = _last_eval_update(run)
        where = f"at update {at}" if at is not None else "last evaluation"
        lines.append(
            f"held-out (test split) success by attempt: {by_attempt}  (mean {ev['eval/success']:.2f}, "
            f"return {ev.get('eval/return', float('nan')):.2f})"
        )
        lines.append(
            f"  from {plan.eval_trials} trials ({plan.eval_envs} envs x {cfg.env.eval_trials} trial"
            f"{'s' if cfg.env.eval_trials != 1 else ''}) {where}, deterministic actions (the policy mean)"
        )
    else:
        lines.append("held-out (test split): no evaluation in this session")
    task = plan.spec.classes("test")[0]
    lines.append("next:")
    if not finished:
        resume = f"metarl train --resume {q}"
        if cfg.max_updates and result.updates >= cfg.max_updates:
            resume += " --set max_updates=0"
        lines.append(f"  {resume}")
    lines.append(f"  metarl evaluate {q} --deterministic")
    lines.append(f"  metarl plot {q} --out {shlex.quote(str(run / 'plots'))}")
    if _has_renderer(plan.spec):
        lines.append(f"  metarl record {q} --task {shlex.quote(task)} --out {shlex.quote(str(run / 'trial.mp4'))}")
    else:
        lines.append(f"  (no `metarl record`: {cfg.env.benchmark} has no renderer)")
    lines += shipped_hint(cfg.env.benchmark, result.env_steps)
    return "\n".join(lines)


def shipped_hint(benchmark: str, env_steps: int) -> list[str]:
    """Lines pointing to a shipped agent of ``benchmark`` trained far longer than this run:
    a few CPU minutes cannot teach Meta-World's held-out goals, and the user should know."""
    lines = []
    for name in pretrained.names():
        c = pretrained.card(name)
        if c.benchmark == benchmark and c.env_steps > 2 * env_steps:
            lines.append(f"  metarl evaluate pretrained:{name} --deterministic   # a shipped {benchmark} agent: "
                         f"{_n(c.env_steps)} env steps, held-out success {c.heldout_success:.2f} ({c.actions})")
    return lines


def _describe_source(config: str | None, overrides: list[str]) -> tuple[Path | None, str]:
    """The config path to load (None: built-in preset) and how the banner names it."""
    if config is None:
        source = "built-in default preset (metarl.config.DEFAULT_PRESET)"
        path = None
    else:
        path, preset = resolve_config(config)
        source = f"preset {preset} ({path.resolve()})" if preset else f"config {path.resolve()}"
    if overrides:
        source += " with --set " + " ".join(overrides)
    return path, source


def run(args: argparse.Namespace) -> int:
    from metarl.train import resume_config

    world = _world_size()
    main = _is_main_process()
    if args.resume is not None:
        if args.config is not None:
            raise CLIError("give either CONFIG or --resume DIR, not both")
        if args.run_dir is not None and args.run_dir != args.resume:
            raise CLIError("--resume continues in its own directory; drop --run-dir")
        if not args.resume.is_dir():
            raise FileNotFoundError(f"run directory not found: {args.resume}")
        if (args.resume / "checkpoints" / "last.zip").is_file():
            raise CLIError(f"{args.resume} is an SB3 baseline run: --resume is not supported for SB3 kinds, "
                           "start a new run")
        from metarl.checkpoint import load_checkpoint

        cfg = resume_config(args.resume, args.overrides)
        counters = load_checkpoint(args.resume)["counters"]
        run_dir = args.resume
        source = f"resuming {Path(run_dir).resolve()}" + (f" with --set {' '.join(args.overrides)}" if args.overrides else "")
        resume_at = (counters["update"], counters["env_steps"])
    else:
        path, source = _describe_source(args.config, args.overrides)
        cfg = load_config(path, args.overrides, preset=None if path is not None else DEFAULT_PRESET)
        run_dir = args.run_dir or _default_run_dir(cfg)
        if any((run_dir / "checkpoints" / name).exists() for name in ("last.pt", "last.zip")):
            raise CLIError(f"{run_dir} already holds a run; use --resume {run_dir} or another --run-dir")
        resume_at = None
    text = banner(cfg, source, run_dir, resume_at, world)  # unknown benchmark or device: one line, nothing printed
    if main:
        print(text, flush=True)
    result = trainer(cfg.agent.kind)(cfg, run_dir, resume=args.resume is not None)
    if main:
        print(summary(result, cfg, world), flush=True)
    return 130 if result.interrupted else 0
