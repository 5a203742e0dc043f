"""The worker side of ``TrialVectorEnv``: the shared block, stepping a block of envs, the worker process.

Every worker process steps a contiguous block of trial envs on the actions
in one shared-memory block and writes observations, rewards, flags and infos
back into it; its pipe carries only a tiny command and an acknowledgement
per step. :func:`balance` spreads envs over workers by estimated step cost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Iterator

import numpy as np

from metarl.envs.trial import TrialEnv

# name -> (dtype, trailing shape key); "D": obs dim, "A": action dim
FIELDS: dict[str, tuple[Any, str]] = {
    "actions": (np.float32, "A"),
    "obs": (np.float32, "D"),
    "final_obs": (np.float32, "D"),
    "rewards": (np.float64, ""),
    "terminated": (np.bool_, ""),
    "truncated": (np.bool_, ""),
    "task_id": (np.int64, ""),
    "goal": (np.int64, ""),
    "attempt": (np.int64, ""),
    "success": (np.bool_, ""),
    "trial_end": (np.bool_, ""),
    "episode_success": (np.bool_, ""),
    "episode_return": (np.float64, ""),
    "task_switched": (np.bool_, ""),
}
INFO_KEYS = ("task_id", "goal", "attempt", "success", "trial_end", "episode_success", "episode_return",
             "task_switched")


@dataclass(frozen=True)
class SharedLayout:
    """Byte offsets of every field of the shared block, for N envs."""

    num_envs: int
    obs_dim: int
    act_dim: int

    def shapes(self) -> dict[str, tuple[int, ...]]:
        dims = {"D": (self.obs_dim,), "A": (self.act_dim,), "": ()}
        return {k: (self.num_envs, *dims[key]) for k, (_, key) in FIELDS.items()}

    def nbytes(self) -> int:
        return sum(self._sizes().values())

    def _sizes(self) -> dict[str, int]:
        sizes = {}
        for k, shape in self.shapes().items():
            n = int(np.prod(shape)) * np.dtype(FIELDS[k][0]).itemsize
            sizes[k] = (n + 7) // 8 * 8  # keep every field 8-byte aligned
        return sizes

    def views(self, buffer: Any) -> dict[str, np.ndarray]:
        """Numpy views of every field on ``buffer`` (shared or local)."""
        raw = np.frombuffer(buffer, dtype=np.uint8)
        out, offset = {}, 0
        for k, shape in self.shapes().items():
            dtype = np.dtype(FIELDS[k][0])
            count = int(np.prod(shape))
            out[k] = raw[offset : offset + count * dtype.itemsize].view(dtype).reshape(shape)
            offset += self._sizes()[k]
        return out


def _write(buf: dict[str, np.ndarray], i: int, obs: np.ndarray, reward: float,
           truncated: bool, info: dict[str, Any]) -> None:
    buf["obs"][i] = obs
    buf["rewards"][i] = reward
    buf["terminated"][i] = False  # trials have a fixed length: never terminated
    buf["truncated"][i] = truncated
    for key in INFO_KEYS:
        buf[key][i] = info[key]


class EnvFailed(Exception):
    """Env ``index`` of a block raised; the original exception is the cause."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def step_block(envs: list[TrialEnv], indices: list[int], buf: dict[str, np.ndarray],
               trial_autoreset: bool = True) -> None:
    """Step ``envs`` (vector indices ``indices``) on ``buf["actions"]``; SAME_STEP autoreset
    (after a trial's last attempt only with ``trial_autoreset``)."""
    for j, (i, env) in enumerate(zip(indices, envs)):
        try:
            obs, reward, terminated, truncated, info = env.step(buf["actions"][i])
            if terminated or truncated:
                buf["final_obs"][i] = obs
                if trial_autoreset or not info["trial_end"]:
                    obs, _ = env.reset()  # next attempt, or a new trial after the last
            else:
                buf["final_obs"][i] = 0.0
        except Exception as exc:
            raise EnvFailed(j) from exc
        _write(buf, i, obs, reward, truncated, info)


def reset_block(envs: list[TrialEnv], indices: list[int], buf: dict[str, np.ndarray],
                seed: int | None, tasks: list[tuple[int, int] | None]) -> None:
    """Start a new trial in each env; ``tasks`` (one per env, None: drawn) pins its task."""
    for i, env, task in zip(indices, envs, tasks):
        if task is not None:
            obs, info = env.reset(seed=None if seed is None else seed + i, options={"task": task})
        elif seed is None:
            obs, info = env.reset(options={"new_trial": True})
        else:
            obs, info = env.reset(seed=seed + i)
        buf["final_obs"][i] = 0.0
        _write(buf, i, obs, 0.0, False, info)


def where(envs: list[TrialEnv], indices: list[int], j: int | None = None) -> str:
    """'env i (task t, goal g)' for one env, or every env of a block."""
    idx = range(len(envs)) if j is None else [j]
    return ", ".join(
        f"env {indices[k]} (task {envs[k].task[0] or '<none yet>'!r}, goal {envs[k].task[1]})"
        for k in idx
    )


def run_worker(conn: Connection, shared: Any, layout: SharedLayout, indices: list[int],
               env_kwargs: dict[str, Any], seed: int | None, trial_autoreset: bool = True) -> None:
    """Worker process: build the envs ``indices``, then obey commands until ``close``.

    ``conn`` needs only ``send``/``recv``/``close`` (``metarl.envs.pipelined`` wraps it to poll).
    Commands: ``("step", positions in the block or None for all)``,
    ``("reset", (seed, one task or None per env of the block))``, ``("close", None)``.
    """
    # Ctrl-C in a terminal reaches the whole process group: the caller decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    envs: list[TrialEnv] = []
    try:
        buf = layout.views(shared)
        for i in indices:
            envs.append(TrialEnv(**env_kwargs, env_index=i, seed=None if seed is None else seed + i))
        conn.send(("ok", None))
        while True:
            cmd, arg = conn.recv()
            if cmd == "step":
                sub_envs = envs if arg is None else [envs[j] for j in arg]
                sub_indices = indices if arg is None else [indices[j] for j in arg]
                try:
                    step_block(sub_envs, sub_indices, buf, trial_autoreset)
                except EnvFailed as exc:
                    tb = "".join(traceback.format_exception(exc.__cause__))
                    conn.send(("error", f"{where(sub_envs, sub_indices, exc.index)} raised:\n{tb}"))
                    continue
            elif cmd == "reset":
                reset_block(envs, indices, buf, *arg)
            elif cmd == "close":
                break
            conn.send(("ok", None))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass  # parent went away
    except Exception:
        try:
            conn.send(("error", f"{where(envs, indices) or f'envs {indices}'} "
                                f"raised:\n{traceback.format_exc()}"))
        except OSError:
            pass
    finally:
        for env in envs:
            env.close()
        conn.close()


def balance(costs: list[float], workers: int, caller_share: float | None = None) -> list[list[int]]:
    """Env indices per worker, longest-cost-first onto the least-loaded worker.

    Greedy LPT scheduling: the most expensive env goes first, each to the
    worker where it would finish first, its summed cost over its speed
    (ties: fewer envs, lower id). Workers have speed 1; ``caller_share``
    adds one last block of that speed, the caller's. Every block gets at
    least one env when there are at least as many envs as blocks.
    """
    speeds = [1.0] * workers + ([] if caller_share is None else [float(caller_share)])
    loads = [0.0] * len(speeds)
    groups: list[list[int]] = [[] for _ in speeds]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        empty = [w for w in range(len(speeds)) if not groups[w]]
        left = len(costs) - sum(map(len, groups))
        pool = empty if len(empty) >= left else range(len(speeds))  # keep one env for every block
        w = min(pool, key=lambda w: ((loads[w] + costs[i]) / speeds[w], len(groups[w]), w))
        groups[w].append(i)
        loads[w] += costs[i]
    return [sorted(g) for g in groups]


@contextlib.contextmanager
def main_hidden() -> Iterator[None]:
    """Keep workers from re-running the caller's script.

    forkserver/spawn children import ``__main__`` by path to unpickle objects
    defined there; our worker needs nothing from it, and re-running an
    unguarded script (no ``if __name__ == "__main__"``) would fail.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__.pop(k) for k in ("__file__", "__spec__") if main and k in main.__dict__}
    if main is not None:
        main.__spec__ = None  # spawn reads it; None means "nothing to import"
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
