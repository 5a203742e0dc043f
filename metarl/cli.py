"""The ``metarl`` command line: one subcommand per module.

Each subcommand module exposes ``add_parser(subparsers)`` (registers its
arguments) and ``run(args) -> int``. Modules are imported lazily so that
``metarl --help`` stays fast and one broken optional piece does not take the
others down. User errors print as one line; set ``METARL_DEBUG=1`` for the
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from metarl.errors import CLIError

# subcommand -> module implementing add_parser/run
COMMANDS: dict[str, str] = {
    "train": "metarl.train_cli",
    "evaluate": "metarl.evaluate_cli",
    "record": "metarl.record",
    "plot": "metarl.plot",
    "envs": "metarl.envs_cli",
    "pretrained": "metarl.pretrained",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metarl",
        description="Memory-based meta-RL (RL²) on Meta-World.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # subcommand not built yet
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError) as exc:
        if os.environ.get("METARL_DEBUG"):
            raise
        print(f"metarl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"metarl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
