"""bench/run_all.py --quick: one table with every row, and the page it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "one process, the same envs one by one", "gymnasium AsyncVectorEnv", "ours, TrialVectorEnv",
    "EnvPool native Meta-World v3", "random actions (the vector env alone)", "collection with the policy in the loop",
    "metarl RL² PPO, forget-memory", "sb3-contrib RecurrentPPO", "| lstm |", "| gru |", "| forget-memory |",
    "RSS sum over processes", "PSS sum",
]


@pytest.mark.slow
def test_quick_run_prints_and_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = out.read_text()
    for text in (proc.stdout, page):
        rows = [line for line in text.splitlines() if line.startswith("| ") and "| --- |" not in line][1:]
        assert len(rows) == len(ROWS), rows
        for name, row in zip(ROWS, rows):
            assert name in row, (name, row)
            measured = "skipped" not in row
            assert measured == (row.split(" | ")[2] != "-"), row  # a figure, or a note saying why none
    for key in ("- date: ", "- cpu: ", "- gpu: ", "- libraries: torch ", "stable-baselines3 ", "sb3-contrib "):
        assert key in page, key
