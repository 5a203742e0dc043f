"""Every caller that plays trials gives what it gave before the one trial runner (``metarl.trials``).

``data/trials_before.json`` was written by ``_trial_cases.py`` on the code before
the four trial loops (training-time evaluation, ``metarl evaluate``, ``metarl
plot``'s memory trace, ``metarl record``) became one; the same seeded cases must
give the same records, actions and frames now. Discrete values (successes,
counts, goals, switches, frame counts) must match exactly; floats to float32
rounding, so that another CPU's kernels do not fail the test (on the machine
that wrote the file they match bit for bit).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from _trial_cases import capture  # tests/metarl is on sys.path (pytest rootdir import mode)

EXPECTED = Path(__file__).with_name("data") / "trials_before.json"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def assert_same(got: Any, want: Any, where: str = "") -> None:
    """Recursive comparison: exact for bools, ints and text, close for floats (and numeric CSV cells)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, bool) or want is None or isinstance(want, int) and not isinstance(want, bool):
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, float):
        assert isinstance(got, float) and (math.isnan(want) and math.isnan(got) or got == pytest.approx(want, rel=1e-5, abs=1e-6)), \
            f"{where}: {got!r} != {want!r}"
    elif isinstance(want, str) and _number(want) is not None and _number(got) is not None and got != want:
        assert _number(got) == pytest.approx(_number(want), rel=1e-4, abs=1e-6), f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def now() -> dict[str, Any]:
    return json.loads(json.dumps(capture()))


@pytest.fixture(scope="module")
def before() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text())


@pytest.mark.parametrize("caller", ["held_out_eval", "training_run", "rl2_evaluation", "memory_trace", "recordings"])
def test_caller_plays_the_same_trials_as_before(caller: str, now: dict, before: dict) -> None:
    assert_same(now[caller], before[caller], caller)
