"""The experiment scripts run end to end in their --smoke mode (slow: trains tiny agents)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_forgetting_experiment_smoke_writes_a_switch_aligned_table_per_task_and_cell(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "forgetting.py"), "--smoke", "--out", str(tmp_path),
         "--tasks", "point-nav", "bandit", "--cells", "forget-memory-noforget", "gru"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"point-nav", "bandit"}
    for task, cells in results.items():
        assert set(cells) == {"forget-memory-noforget", "gru"}
        for cell in cells.values():
            assert len(cell["per_seed"]) == 2 and cell["summary"]["seeds"] == 2
            assert cell["summary"]["offsets"] == [-2, -1, 0, 1, 2, 3]
    assert (tmp_path / "recovery_point-nav.png").is_file() and (tmp_path / "recovery_bandit.png").is_file()
    table = (tmp_path / "table.md").read_text()
    assert "forget-memory-noforget" in table and "attempt -1" in table
    cfg = (tmp_path / "bandit" / "forget-memory-noforget" / "seed1" / "config.yaml").read_text()
    assert "learn_forget: false" in cfg and "task_switches: 1" in cfg
    runs = results["bandit"]["gru"]["runs"]
    assert [r["run"] for r in runs] == ["seed1", "seed2"] and all(r["env_steps"] >= 2_000 and r["wall_s"] > 0 for r in runs)

    # --collect trains nothing and finds the same runs and evaluations
    (tmp_path / "results.json").unlink()
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "forgetting.py"), "--collect", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    collected = json.loads((tmp_path / "results.json").read_text())
    assert collected["point-nav"]["gru"]["per_seed"] == results["point-nav"]["gru"]["per_seed"]
    assert set(collected["bandit"]) == {"forget-memory-noforget", "gru"}
