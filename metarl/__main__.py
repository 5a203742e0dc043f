"""``python -m metarl`` (and ``torchrun -m metarl``) runs the CLI."""

from metarl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
