"""``PipelinedTrialVectorEnv``: ``TrialVectorEnv`` plus group steps and spinning workers.

For pipelined collection (``metarl.rollout.collect(..., groups=G)``, config
``env.collect_groups``): the caller computes one group's actions while
another group steps, so neither the workers nor the caller idle. Off by
default: on the machines measured so far it did not pay (README,
"Measured"; ``bench/train.py --groups 2``). ``make_vec(..., pipelined=True)``
builds it; everything else is ``TrialVectorEnv``'s.

- ``split_groups(G)`` splits the env indices into G groups such that every
  worker holds envs of every group; ``step_group_async(ids, actions)`` sends
  one group's actions and returns at once; ``step_group_wait(ids)`` returns
  that group's ``(obs, rewards, terminated, truncated, infos)``. Groups are
  waited for in the order sent; ``step``/``reset`` first finish groups in flight.
- ``spin`` > 0: a worker polls for its next command for up to that many
  seconds before blocking, yielding its core between polls (workers that
  block step slower after waking on some VMs; ``bench/envs.py --spin``).
"""

from __future__ import annotations

import collections
import os
import time
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

from metarl.envs.checks import check_spin
from metarl.envs.vector import TrialVectorEnv
from metarl.envs.workers import balance, run_worker


class _SpinningConn:
    """A worker's pipe whose ``recv`` polls for up to ``spin`` seconds before it blocks."""

    def __init__(self, conn: Connection, spin: float) -> None:
        self._conn, self._spin = conn, spin

    def recv(self) -> Any:
        deadline = time.perf_counter() + self._spin
        while not self._conn.poll(0) and time.perf_counter() < deadline:
            os.sched_yield()
        return self._conn.recv()

    def send(self, msg: Any) -> None:
        self._conn.send(msg)

    def close(self) -> None:
        self._conn.close()


def run_spinning_worker(spin: float, conn: Connection, *args: Any) -> None:
    """``run_worker`` whose waits for a command spin first (module docstring)."""
    run_worker(_SpinningConn(conn, spin) if spin else conn, *args)


class PipelinedTrialVectorEnv(TrialVectorEnv):
    """``TrialVectorEnv`` with group steps and spinning workers; see the module docstring."""

    def __init__(self, benchmark: Any, *, spin: float = 0.0, **kwargs: Any) -> None:
        self._spin = float(check_spin("spin", spin))
        # group steps sent and not yet waited for, oldest first: (env ids, workers told)
        self._pending: collections.deque[tuple[bytes, list[int]]] = collections.deque()
        self._plans: dict[bytes, tuple[list[tuple[int, list[int]]], list[int]]] = {}  # env ids -> plan
        self._busy = np.zeros(0, dtype=bool)  # envs in a group step in flight (sized below)
        super().__init__(benchmark, **kwargs)
        self._busy = np.zeros(self.num_envs, dtype=bool)

    def _worker_target(self) -> tuple[Callable[..., None], tuple[Any, ...]]:
        return run_spinning_worker, (self._spin,)

    def _wait_all(self, what: str, workers: list[int] | None = None) -> None:
        try:
            super()._wait_all(what, workers)
        except RuntimeError:
            self._pending.clear()
            self._busy[:] = False
            raise

    def _finish_pending(self) -> None:
        """Wait for every group step still in flight (before a reset or full step)."""
        while self._pending:
            _, workers = self._pending.popleft()
            self._wait_all("stepping", workers)
        self._busy[:] = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._finish_pending()
        return super().reset(seed=seed, options=options)

    def step(self, actions: np.ndarray):
        self._finish_pending()
        return super().step(actions)

    def split_groups(self, groups: int) -> list[np.ndarray]:
        """Partition the env indices into ``groups`` sorted arrays for ``step_group_async``.

        Every worker's block is spread over the groups (balanced by step cost
        within the block), so each worker has envs to step in every group and
        none idles while another group's actions are computed.
        """
        if isinstance(groups, bool) or not isinstance(groups, int) or not 1 <= groups <= self.num_envs:
            raise ValueError(f"groups must be an integer in [1, num_envs={self.num_envs}], got {groups!r}")
        if not self._conns:  # one process steps everything: contiguous blocks
            return [np.asarray(g, dtype=np.int64) for g in np.array_split(np.arange(self.num_envs), groups)]
        out: list[list[int]] = [[] for _ in range(groups)]
        for block in [*self._groups, self._local_ids] if self._local else self._groups:
            for g, positions in enumerate(balance([self._costs[i] for i in block], groups)):
                out[g] += [block[j] for j in positions]
        return [np.asarray(sorted(g), dtype=np.int64) for g in out]

    def _plan(self, env_ids: np.ndarray) -> tuple[bytes, list[tuple[int, list[int]]], list[int]]:
        """(key, [(worker, positions in its block)], the caller's envs) for a group of env indices, cached."""
        key = env_ids.tobytes()
        if key not in self._plans:
            if env_ids.ndim != 1 or len(np.unique(env_ids)) != len(env_ids) or not (
                    (0 <= env_ids) & (env_ids < self.num_envs)).all():
                raise ValueError(f"env_ids must be distinct indices in [0, {self.num_envs}), got {env_ids.tolist()}")
            wanted = set(env_ids.tolist())
            plan = [(w, [j for j, i in enumerate(block) if i in wanted]) for w, block in enumerate(self._groups)]
            self._plans[key] = ([(w, pos) for w, pos in plan if pos], [i for i in self._local if i in wanted])
        return key, *self._plans[key]

    def step_group_async(self, env_ids: np.ndarray, actions: np.ndarray) -> None:
        """Start stepping only the envs ``env_ids`` (G,) with ``actions`` (G, A); return at once.

        Collect the results with ``step_group_wait(env_ids)``; several groups
        may be in flight (disjoint ones: an env must be waited for before it is
        stepped again) and are waited for in the order they were sent. The
        caller's own envs of the group step here, synchronously.
        """
        env_ids = np.asarray(env_ids, dtype=np.int64)
        key, plan, local = self._plan(env_ids)
        if self._busy[env_ids].any():
            raise ValueError(f"envs {env_ids[self._busy[env_ids]].tolist()} are still stepping; wait for them first")
        self._check_trials_open(env_ids)
        self._busy[env_ids] = True
        self._buf["actions"][env_ids] = np.asarray(actions, dtype=np.float32).reshape(
            len(env_ids), self._buf["actions"].shape[1]
        )  # (G, A)
        self._send([(w, ("step", positions)) for w, positions in plan])
        self._pending.append((key, [w for w, _ in plan]))
        self._step_local(local)  # the caller's share, while the workers step theirs

    def step_group_wait(
        self, env_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Results of the oldest group step in flight, which must be ``env_ids``; rows in ``env_ids`` order.

        Same as ``step``'s return restricted to those envs: obs (G, D),
        rewards, terminated, truncated (G,) and infos arrays with leading dim G.
        """
        env_ids = np.asarray(env_ids, dtype=np.int64)
        if not self._pending or self._pending[0][0] != env_ids.tobytes():
            raise ValueError("step_group_wait must name the oldest group in flight (wait in the order sent)")
        _, workers = self._pending.popleft()
        self._busy[env_ids] = False
        if workers:
            self._wait_all("stepping", workers)
        b = self._buf
        return (
            b["obs"][env_ids],  # fancy indexing copies
            b["rewards"][env_ids],
            b["terminated"][env_ids],
            b["truncated"][env_ids],
            self._infos(env_ids),
        )
