"""The benchmark registry: one place that maps names to benchmark specs.

A *benchmark spec* knows, for each split, its task classes and their goals,
and builds the per-class *core* environment that a trial env plays (see
``metarl.envs.core``). Errors for unknown names list the closest valid ones.
"""

from __future__ import annotations

import difflib
from typing import Callable

import numpy as np

from metarl.envs import metaworld_tasks, toy
from metarl.envs.core import BenchmarkSpec, TaskSet

SPLITS = ("train", "test")

# Fixed names registered eagerly; ML1/<task> names are resolved lazily because
# listing them needs the (slow-ish) Meta-World import.
_FACTORIES: dict[str, Callable[[], BenchmarkSpec]] = {}
_SPECS: dict[str, BenchmarkSpec] = {}


def register(name: str, factory: Callable[[], BenchmarkSpec]) -> None:
    """Register a benchmark under ``name``; ``factory`` builds its spec on first use."""
    _FACTORIES[name] = factory


def benchmarks() -> list[str]:
    """All valid benchmark names: toy tasks, ML10/ML25/ML45 and ``ML1/<task>``."""
    names = metaworld_tasks.all_task_names()
    return sorted(_FACTORIES) + [f"ML1/{t}" for t in names] + [f"MT1/{t}" for t in names]


def _closest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def get_benchmark(name: str | BenchmarkSpec) -> BenchmarkSpec:
    """The spec of benchmark ``name``; ValueError naming the closest valid names.

    A ``BenchmarkSpec`` instance is returned as is (custom benchmarks; it must
    be picklable to run in vector-env workers).
    """
    if isinstance(name, BenchmarkSpec):
        return name
    if name in _SPECS:
        return _SPECS[name]
    if name in _FACTORIES:
        spec = _FACTORIES[name]()
    elif name.startswith(("ML1/", "MT1/")):
        prefix, task = name[:4], name[4:]
        valid = metaworld_tasks.all_task_names()
        if task not in valid:
            hint = _closest(name, [f"{prefix}{t}" for t in valid])
            raise ValueError(
                f"unknown Meta-World task {task!r} in benchmark {name!r}"
                + (f"; {hint}" if hint else "; see `metarl envs` for the list")
            )
        spec = metaworld_tasks.MetaWorldBenchmark(name)
    else:
        valid = benchmarks()
        hint = _closest(name, valid)
        raise ValueError(
            f"unknown benchmark {name!r}"
            + (f"; {hint}" if hint else "")
            + f" (valid: {', '.join(sorted(_FACTORIES))}, ML1/<task>, MT1/<task>)"
        )
    _SPECS[name] = spec
    return spec


def check_split(split: str) -> str:
    """Return ``split`` if valid, else a one-line ValueError."""
    if split not in SPLITS:
        raise ValueError(f"invalid split {split!r}: must be one of {', '.join(SPLITS)}")
    return split


def tasks(benchmark: str, split: str = "train") -> list[str]:
    """The task class names of ``benchmark``'s ``split``, in task-id order."""
    return list(get_benchmark(benchmark).classes(check_split(split)))


def task_set(benchmark: str, split: str = "train") -> TaskSet:
    """Classes and goals of one split (Meta-World: built once, then cached on disk)."""
    return get_benchmark(benchmark).task_set(check_split(split))


def task_vectors(benchmark: str, split: str = "train") -> np.ndarray:
    """(C, G, F) hidden task parameters of a split: ``[task_id, goal]`` -> vector.

    Each class's ``task_vector``s, zero-padded to the longest, then a one-hot
    of the class when the split has several (classes with fewer goals than
    the most are padded with NaN rows, never indexed by a trial)."""
    spec = get_benchmark(benchmark)
    ts = spec.task_set(check_split(split))
    vecs = [[spec.task_vector(c, g) for g in ts.goals[c]] for c in ts.classes]
    C, G = len(ts.classes), max(len(v) for v in vecs)
    F = max(len(x) for v in vecs for x in v)
    out = np.full((C, G, F + (C if C > 1 else 0)), np.nan)
    for c, v in enumerate(vecs):
        out[c, : len(v)] = 0.0
        for g, x in enumerate(v):
            out[c, g, : len(x)] = x
        if C > 1:
            out[c, : len(v), F + c] = 1.0
    return out


def _register_builtin() -> None:
    for name in metaworld_tasks.ML_BENCHMARKS:
        register(name, lambda name=name: metaworld_tasks.MetaWorldBenchmark(name))
    register("point-nav", toy.PointNavBenchmark)
    register("point-nav-sparse", toy.PointNavSparseBenchmark)
    register("point-reach", toy.PointReachBenchmark)
    register("point-reach-visible", toy.PointReachVisibleBenchmark)
    register("point-reach-puck", toy.PointReachPuckBenchmark)
    register("bandit", toy.BanditBenchmark)
    register("bandit-onehot", toy.BanditOneHotBenchmark)


_register_builtin()
