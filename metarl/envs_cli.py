"""``metarl envs [BENCHMARK] [--split S]``: list benchmarks, or one benchmark's task classes."""

from __future__ import annotations

import argparse

from metarl.config import DEFAULT_PRESET, ConfigError, load_config
from metarl.envs import CLOCK_DIMS, ObsLayout
from metarl.envs.registry import benchmarks, get_benchmark
from metarl.presets import preset_names, preset_path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "envs",
        help="list benchmarks, or the task classes of one",
        description="Without BENCHMARK: every benchmark name. With it: the task classes "
        "of its split(s), the benchmark's trial defaults, the presets that train on it, "
        "and the observation layout.",
    )
    p.add_argument("benchmark", nargs="?", help="e.g. ML10, ML45, ML1/reach-v3, point-nav, bandit")
    p.add_argument("--split", choices=["train", "test"], default=None, help="only this split")
    p.set_defaults(func=run)


def presets_using(spec) -> list[tuple[str, int, int]]:
    """``(preset, attempts, steps)`` for each preset in ``configs/`` and the built-in default
    preset of ``metarl train`` that trains on ``spec``; trial shape as the run would use it."""
    found = []
    for name in preset_names():
        try:
            found.append((name, load_config(preset_path(name))))
        except (ConfigError, OSError):  # a broken preset is `metarl train`'s error to report, not this listing's
            continue
    found.append(("the built-in default of `metarl train`", load_config(None, preset=DEFAULT_PRESET)))
    return [
        (name, cfg.env.episodes_per_trial or spec.default_episodes_per_trial,
         cfg.env.max_episode_steps or spec.default_max_episode_steps)
        for name, cfg in found
        if cfg.env.benchmark == spec.name
    ]


def run(args: argparse.Namespace) -> int:
    if not args.benchmark:
        names = benchmarks()
        ml1 = [n for n in names if n.startswith("ML1/")]
        print("benchmarks:")
        for name in names:
            if not name.startswith(("ML1/", "MT1/")):
                print(f"  {name}")
        print(f"  ML1/<task> for {len(ml1)} Meta-World v3 tasks (goal hidden):")
        for name in ml1:
            print(f"    {name}")
        print("  MT1/<task> for the same tasks with the goal visible (the oracle bound of ML1/<task>)")
        return 0
    spec = get_benchmark(args.benchmark)  # ValueError with closest names
    print(
        f"{spec.name}: benchmark defaults: episodes_per_trial {spec.default_episodes_per_trial}, "
        f"max_episode_steps {spec.default_max_episode_steps}, reward_scale {spec.default_reward_scale} "
        "(a config's env.* keys override them)"
    )
    users = presets_using(spec)
    if users:
        print(f"presets on {spec.name} (attempts x steps per trial): " + ", ".join(f"{n} {a} x {t}" for n, a, t in users))
    else:
        print(f"presets on {spec.name}: none (train on it with --set env.benchmark={spec.name})")
    lay = ObsLayout(spec.observation_space().shape[0], spec.action_space().shape[0])
    print(
        f"observation ({lay.dim}): env obs {lay.env_dim} | previous action {lay.action_dim} | "
        "previous reward * reward_scale 1 | episode-start flag 1 | trial-start flag 1 "
        f"(env.clock: true adds {CLOCK_DIMS} after the env obs)"
    )
    for split in [args.split] if args.split else ["train", "test"]:
        classes = spec.classes(split)
        print(f"{split} ({len(classes)} class{'' if len(classes) == 1 else 'es'}):")
        for task_id, name in enumerate(classes):
            print(f"  {task_id:3d} {name}")
    return 0
