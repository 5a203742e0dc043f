"""Run metrics: ``metrics.csv`` (one row per update), TensorBoard events, progress bar.

CSV columns are ``env_steps, update, wall_time`` then namespaced metrics
(``charts/``, ``losses/``, ``eval/``), empty where a metric was not computed.
When a metric appears for the first time the file is rewritten with the wider
header, so the CSV is always rectangular. On resume, rows of updates after the
checkpoint are dropped, so the file matches the run an uninterrupted run
would have written.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

FIXED = ["env_steps", "update", "wall_time"]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


class MetricsLogger:
    """Append-only metrics sink; ``enabled=False`` makes every call a no-op (non-zero ranks)."""

    def __init__(
        self,
        run_dir: str | Path,
        columns: list[str] | None = None,
        tensorboard: bool = True,
        resume_update: int | None = None,
        enabled: bool = True,
    ):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.csv"
        self.columns = list(FIXED) + [c for c in (columns or []) if c not in FIXED]
        self.writer = None
        if not enabled:
            return
        rows: list[dict[str, str]] = []
        if resume_update is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                reader = csv.DictReader(f)
                old = [c for c in (reader.fieldnames or []) if c not in self.columns]
                self.columns += old
                rows = [r for r in reader if r.get("update") and int(r["update"]) <= resume_update]
        self._rewrite(rows)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # slow to import; only with tensorboard on
            except ImportError:  # tensorboard is a dependency, but keep the run alive without it
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=None)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            for r in rows:
                w.writerow({c: r.get(c, "") for c in self.columns})
        os.replace(tmp, self.path)

    def log(self, env_steps: int, update: int, metrics: dict[str, float], wall_time: float | None = None) -> None:
        """One row for this update; also one TensorBoard scalar per metric at ``env_steps``."""
        if not self.enabled:
            return
        new = [k for k in metrics if k not in self.columns]
        if new:
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            self.columns += sorted(new)
            self._rewrite(rows)
        row = {"env_steps": env_steps, "update": update, "wall_time": wall_time if wall_time is not None else time.time()}
        row.update(metrics)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow({c: _fmt(row.get(c)) for c in self.columns})
        if self.writer is not None:
            for k, v in metrics.items():
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    self.writer.add_scalar(k, v, env_steps)

    def log_text(self, tag: str, text: str) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Progress:
    """tqdm bar over env steps: one labelled speed (env steps/s), elapsed time and ETA,
    the training success of the latest update and the latest held-out success once one exists.

    The speed is the bar's smoothed wall-clock rate over this process's updates (evaluations
    and checkpoints included), the same rate the ETA is computed from.
    """

    BAR_FORMAT = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} env steps [{elapsed} elapsed, ETA {remaining}, {rate_fmt}{postfix}]"

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, file=None):
        self.bar = None
        if enabled:
            self.bar = tqdm(total=total, initial=initial, unit=" env steps", unit_scale=True, dynamic_ncols=True,
                            smoothing=0.3, bar_format=self.BAR_FORMAT, file=file)

    @staticmethod
    def describe(train_success: float | None = None, held_out_success: float | None = None) -> str:
        """The bar's postfix: ``train success 0.12, held-out success 0.30`` (parts that are known)."""
        parts = []
        if train_success is not None and not math.isnan(train_success):
            parts.append(f"train success {train_success:.2f}")
        if held_out_success is not None and not math.isnan(held_out_success):
            parts.append(f"held-out success {held_out_success:.2f}")
        return ", ".join(parts)

    def update(self, steps: int, train_success: float | None = None, held_out_success: float | None = None) -> None:
        """Advance by ``steps`` env steps; ``held_out_success`` is the latest evaluation's (None before one)."""
        if self.bar is not None:
            postfix = self.describe(train_success, held_out_success)
            if postfix:
                self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(steps)

    def write(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
