"""``metarl envs [BENCHMARK] [--split S]``: list benchmarks, or one benchmark's task classes."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "envs",
        help="list benchmarks, or the task classes of one",
        description="Without BENCHMARK: every benchmark name. With it: the task classes "
        "of its split(s), the trial defaults, and the observation layout.",
    )
    p.add_argument("benchmark", nargs="?", help="e.g. ML10, ML45, ML1/reach-v3, point-nav, bandit")
    p.add_argument("--split", choices=["train", "test"], default=None, help="only this split")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metarl.envs.registry import benchmarks, get_benchmark

    if not args.benchmark:
        names = benchmarks()
        ml1 = [n for n in names if n.startswith("ML1/")]
        print("benchmarks:")
        for name in names:
            if not name.startswith("ML1/"):
                print(f"  {name}")
        print(f"  ML1/<task> for {len(ml1)} Meta-World v3 tasks:")
        for name in ml1:
            print(f"    {name}")
        return 0
    spec = get_benchmark(args.benchmark)  # ValueError with closest names
    print(
        f"{spec.name}: episodes_per_trial {spec.default_episodes_per_trial}, "
        f"max_episode_steps {spec.default_max_episode_steps}, reward_scale {spec.default_reward_scale}"
    )
    d_env, n_act = spec.observation_space().shape[0], spec.action_space().shape[0]
    print(
        f"observation ({d_env + n_act + 3}): env obs {d_env} | previous action {n_act} | "
        "previous reward * reward_scale 1 | episode-start flag 1 | trial-start flag 1"
    )
    for split in [args.split] if args.split else ["train", "test"]:
        classes = spec.classes(split)
        print(f"{split} ({len(classes)} classes):")
        for task_id, name in enumerate(classes):
            print(f"  {task_id:3d} {name}")
    return 0
