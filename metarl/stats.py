"""Small statistics for evaluation tables and plots: bootstrap CIs and across-run spread.

Bootstrap intervals are ``scipy.stats.bootstrap``'s percentile method, seeded, so
reported intervals are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval."""

    mean: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def _checked(values: np.ndarray | list[float], confidence: float, caller: str) -> np.ndarray:
    """``values`` as a 1-D float array, refusing an empty one or a confidence outside (0, 1)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{caller} needs at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return x


def bootstrap_ci(
    values: np.ndarray | list[float],
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap CI of the mean of ``values`` (1-D).

    One value gives a zero-width interval; an empty input raises ValueError.
    """
    x = _checked(values, confidence, "bootstrap_ci")
    mean = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return Interval(mean, mean, mean)
    return Interval(mean, *_percentile_bootstrap((x,), np.mean, confidence, num_resamples, seed))


def stratified_bootstrap_ci(
    groups: list[np.ndarray] | list[list[float]],
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Bootstrap CI of the mean over groups of per-group means (e.g. tasks of one benchmark).

    Each group (a task's trial outcomes) is resampled within itself, so every task
    keeps its weight in the mean over tasks: the interval reflects trial noise,
    not which tasks happen to be in the benchmark.
    """
    arrays = [np.asarray(g, dtype=np.float64).reshape(-1) for g in groups]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("stratified_bootstrap_ci needs at least one value in every group")
    mean = float(np.mean([a.mean() for a in arrays]))
    if all(np.all(a == a[0]) for a in arrays):
        return Interval(mean, mean, mean)
    # scipy resamples each sample on its own (``paired=False``): a stratified bootstrap. It
    # refuses one-value samples, which every resample leaves as they are: their sum is a constant.
    varied = tuple(a for a in arrays if a.size > 1)
    fixed = float(sum(a[0] for a in arrays if a.size == 1))
    if not varied:
        return Interval(mean, mean, mean)

    def mean_over_groups(*samples: np.ndarray, axis: int) -> np.ndarray:
        return (np.sum([s.mean(axis=axis) for s in samples], axis=0) + fixed) / len(arrays)  # (R,)

    return Interval(mean, *_percentile_bootstrap(varied, mean_over_groups, confidence, num_resamples, seed))


def _percentile_bootstrap(samples: tuple[np.ndarray, ...], statistic: Callable[..., Any], confidence: float,
                          num_resamples: int, seed: int) -> tuple[float, float]:
    """(low, high) of ``scipy.stats.bootstrap``'s seeded percentile interval of ``statistic``."""
    res = sps.bootstrap(samples, statistic, n_resamples=num_resamples, confidence_level=confidence,
                        method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def t_ci(values: np.ndarray | list[float], confidence: float = 0.95) -> Interval:
    """Student-t CI of the mean of ``values`` (1-D), for a few paired differences across seeds,
    where a bootstrap of 3 values can only return their range. One value: no interval (NaN bounds)."""
    x = _checked(values, confidence, "t_ci")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, float("nan"), float("nan"))
    half = float(sps.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return Interval(mean, mean - half, mean + half)


def mean_and_std(values: np.ndarray | list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) across runs."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("mean_and_std needs at least one value")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def mean_ci_across_runs(curves: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise mean and normal-approximation CI of (runs, points) curves, NaNs ignored.

    Returns (mean, low, high), each (points,). With one run the band is the curve itself.
    """
    c = np.asarray(curves, dtype=np.float64)  # (R, P)
    if c.ndim != 2:
        raise ValueError(f"curves must be (runs, points), got shape {c.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.sum(~np.isnan(c), axis=0)  # (P,)
        mean = np.nanmean(np.where(n[None] > 0, c, 0.0), axis=0)
        std = np.nanstd(c, axis=0, ddof=1) if c.shape[0] > 1 else np.zeros(c.shape[1])
        z = {0.9: 1.645, 0.95: 1.96, 0.99: 2.576}.get(round(confidence, 2), 1.96)
        half = np.where(n > 1, z * std / np.sqrt(np.maximum(n, 1)), 0.0)
    mean = np.where(n > 0, mean, np.nan)
    return mean, mean - half, mean + half
