"""Ship a trained agent as package data: ``metarl/shipped/NAME.pt`` and its card ``NAME.json``.

The maintainers' step after a result is in docs/results.md: the card's figures
are the held-out evaluation JSON's, so the card says what was measured, not what
was hoped::

    python experiments/ship_agent.py RUN_DIR --name ml1-reach --eval RUN_DIR/eval_test.json \\
        --trained-by "metarl train ml1_reach --set seed=1 (commit abc1234)" --notes "2 cores, 1,050 s"
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from metarl.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from metarl.pretrained import KEEP_KEYS, SHIPPED_DIR, Card


def ship(checkpoint: str | Path, card: Card, out_dir: Path = SHIPPED_DIR) -> tuple[Path, Path]:
    """Write ``card.name``'s stripped checkpoint and its card into ``out_dir``."""
    state = load_checkpoint(checkpoint)
    slim = {k: state[k] for k in KEEP_KEYS if k in state}
    out_dir.mkdir(parents=True, exist_ok=True)
    pt = save_checkpoint(slim, out_dir / f"{card.name}.pt")
    js = out_dir / f"{card.name}.json"
    js.write_text(json.dumps(asdict(card), indent=2) + "\n")
    return pt, js


def card_from_eval(name: str, checkpoint: Path, eval_json: dict, measured_by: str, trained_by: str, notes: str,
                   wall_time_s: float, extra: dict) -> Card:
    """A card whose figures are those of a ``metarl evaluate`` JSON of ``checkpoint``."""
    state = load_checkpoint(checkpoint)
    cfg = state["config"]
    final = eval_json["final_success"]
    return Card(
        name=name, benchmark=cfg["env"]["benchmark"], cell=cfg["agent"]["cell"],
        env_steps=int(state["counters"]["env_steps"]),
        heldout_success=float(final["mean"]), heldout_ci=(float(final["low"]), float(final["high"])),
        actions="deterministic" if eval_json["deterministic"] else "sampled",
        trials=int(eval_json["trials"]), measured_by=measured_by,
        trained_by=trained_by, wall_time_s=wall_time_s, notes=notes, extra=extra)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="run directory or checkpoint file")
    p.add_argument("--name", required=True)
    p.add_argument("--eval", required=True, type=Path, help="the held-out evaluation JSON (metarl evaluate)")
    p.add_argument("--measured-by", required=True, help="the evaluate command that wrote --eval")
    p.add_argument("--trained-by", required=True)
    p.add_argument("--notes", default="")
    p.add_argument("--wall-time", type=float, default=0.0)
    p.add_argument("--extra", type=json.loads, default={}, help="JSON object of other measured figures")
    p.add_argument("--out-dir", type=Path, default=SHIPPED_DIR)
    args = p.parse_args()
    ckpt = resolve_checkpoint(args.source)
    card = card_from_eval(args.name, ckpt, json.loads(args.eval.read_text()), args.measured_by, args.trained_by, args.notes,
                          args.wall_time, args.extra)
    for path in ship(ckpt, card, args.out_dir):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
