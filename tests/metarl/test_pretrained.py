"""Shipped agents (``pretrained:NAME``): listed, loaded from the package, and as good as their cards say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from metarl import pretrained
from metarl.checkpoint import load_agent, load_checkpoint
from metarl.envs import tasks
from metarl.evaluate import evaluate_agent

from _gl import NO_GL, gl_available  # tests/metarl is on sys.path (pytest rootdir import mode)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Trials per shipped agent in the default suite, and the margin below its card's figure they
# may fall: a 20-trial mean has a standard error of about 0.1 at success 0.6.
TRIALS, TOLERANCE = 20, 0.25


def test_metarl_pretrained_lists_every_shipped_agent_with_its_figures():
    out = subprocess.run([sys.executable, "-m", "metarl", "pretrained"], capture_output=True, text=True, check=True,
                         cwd=Path.home()).stdout
    for name in pretrained.names():
        c = pretrained.card(name)
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert c.benchmark in row and f"{c.heldout_success:.2f}" in row and c.actions in row


def test_an_unknown_name_is_one_line_naming_the_closest_and_the_valid_ones():
    valid = pretrained.names()
    assert valid, "no shipped agents are installed (metarl/shipped/*.json)"
    wrong = valid[0][:-1] + "x"
    with pytest.raises(ValueError, match=rf"unknown pretrained agent '{wrong}'; did you mean '{valid[0]}'[^?]*\?.*valid: "):
        pretrained.card(wrong)
    proc = subprocess.run([sys.executable, "-m", "metarl", "evaluate", f"pretrained:{wrong}"], capture_output=True,
                          text=True, cwd=Path.home())
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and valid[0] in proc.stderr


@pytest.mark.parametrize("name", pretrained.names())
def test_shipped_agent_is_small_loads_and_evaluates_near_its_card(name):
    c = pretrained.card(name)
    assert pretrained.size_mb(name) < 5.0
    state = load_checkpoint(f"pretrained:{name}")
    assert "optimizer" not in state and state["counters"]["env_steps"] == c.env_steps
    agent = load_agent(f"pretrained:{name}")
    assert agent.config.env.benchmark == c.benchmark and agent.config.agent.cell == c.cell
    result = evaluate_agent(agent, split="test", trials=TRIALS, deterministic=c.actions == "deterministic", seed=1)
    assert result["final_success"]["mean"] >= c.heldout_success - TOLERANCE, (result["final_success"], c)
    # A held-out mean under the tolerance cannot fail the check above: such a card (ML10, ML45) names
    # its best held-out class, whose figure (final attempt, deterministic) must then hold too.
    assert c.heldout_success >= TOLERANCE or "heldout_by_class" in c.extra, c
    if "heldout_by_class" in c.extra:
        best = max(c.extra["heldout_by_class"], key=c.extra["heldout_by_class"].get)
        got = result["tasks"][best]["success_by_attempt"][-1]
        assert got >= c.extra["heldout_by_class"][best] - TOLERANCE, (best, got, c)


@pytest.mark.parametrize("name", pretrained.names())
def test_evaluate_and_record_a_shipped_agent_from_any_directory(name, tmp_path):
    """Outputs go to the working directory, never into the installed package."""
    c = pretrained.card(name)
    cmd = [sys.executable, "-m", "metarl", "evaluate", f"pretrained:{name}", "--trials", "2", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads((tmp_path / f"eval_{name}_test.json").read_text())
    assert out["benchmark"] == c.benchmark and out["trials"] == 2
    assert not list(pretrained.SHIPPED_DIR.glob("eval_*"))
    if not gl_available():
        pytest.skip(NO_GL)
    task = tasks(c.benchmark, "test")[0]  # ML1: its one class; ML10/ML45: a held-out class
    cmd = [sys.executable, "-m", "metarl", "record", f"pretrained:{name}", "--task", task, "--out", "trial.mp4",
           "--every", "10", "--size", "96", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "trial.mp4").stat().st_size > 1000


def test_a_short_run_is_pointed_to_the_shipped_agent_of_its_benchmark():
    from metarl.train_cli import shipped_hint

    for name in pretrained.names():
        c = pretrained.card(name)
        hint = "\n".join(shipped_hint(c.benchmark, 48_000))
        assert f"metarl evaluate pretrained:{name}" in hint and f"{c.heldout_success:.2f}" in hint
        assert not shipped_hint(c.benchmark, c.env_steps)  # not a longer-trained agent: no hint
        assert not shipped_hint("point-nav", 48_000) or c.benchmark == "point-nav"
