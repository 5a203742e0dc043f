"""``TrialVectorEnv``: many trial envs, several per worker process.

Why not gymnasium's ``AsyncVectorEnv``: it runs one process per env and
pickles every observation and info dict through a pipe. Here each worker
process steps a contiguous block of envs; actions, observations, rewards,
flags and info arrays live in one shared-memory block, and the pipes carry
only a tiny command and an acknowledgement per worker per step. Envs are
spread over workers by estimated step cost (``balance``), since a vector
step waits for the slowest worker and Meta-World classes differ up to 2.4x. Toy
benchmarks (``spec.in_process``) step in the calling process: their step is
cheaper than any IPC.

Semantics (docs/interfaces.md): SAME_STEP autoreset, i.e. where an attempt
ended the returned obs is already the first obs of the next attempt or
trial, and ``infos["final_obs"]`` holds the ended attempt's last obs. The
other ``infos`` arrays (``task_id``, ``goal``, ``attempt``, ``success``,
``trial_end``, ``episode_success``, ``episode_return``, ``task_switched``)
describe the step just taken, i.e. the ended attempt; so ``task_switched``
(``task_switches`` > 0) is True at the first step of an attempt whose task
was just switched, where ``goal``/``task_id`` first name the new task.
``reset(seed=s)`` seeds env i with ``s + i``; ``reset()`` starts a new
trial in every env;
``reset(options={"tasks": [task or None per env]})`` pins env i's new trial
to ``tasks[i]`` = (class name or index, goal index), as a single env's
``reset(options={"task": ...})`` does (None: the task is drawn as usual).

``trial_autoreset=False`` leaves an env whose trial ended as it is (its
returned obs is the trial's last, equal to ``final_obs``) until the next
``reset()``; stepping it before then is an error. Attempts inside a trial
still reset in the same step. For a caller that resets every env at the
start of each trial anyway (the trainer's trial-aligned collection): it
saves one Meta-World reset per env and trial, which draws a task and
moves the arm for 100 simulator steps that the caller's reset would
discard (16 reach envs, 2 x 100-step attempts, 2 cores: collection 7-19%
faster in paired ``bench/train.py`` runs, the same rollouts).

Group steps (``split_groups``, ``step_group_async``, ``step_group_wait``)
step a subset of the envs without waiting: the caller computes one group's
actions while another group steps, so neither the workers nor the caller
idle (``metarl.rollout.collect`` pipelines two groups this way). Each worker
holds envs of every group; its pipe queues the group commands in order.

The calling process steps one block itself (``caller_share``, on by default
with automatic ``workers``) while the workers step theirs: on 2 cores a worker
that sleeps through the policy forward wakes slowly, and a caller that waits
idles a core. Paired one-off runs, 16 reach envs on 2 cores: 1 worker + the
caller stepped 2,258 random-action steps/s vs 1,886 for 2 workers.

Workers start with the ``forkserver`` method (fork hangs after the parent
has rendered); they receive the split's task set with their arguments, so no
worker rebuilds a Meta-World benchmark. A worker that raises or dies makes
the next call raise ``RuntimeError`` naming the envs and tasks it held.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Iterator

import gymnasium as gym
import numpy as np

from metarl.envs.core import BenchmarkSpec
from metarl.envs.registry import check_split, get_benchmark
from metarl.envs.trial import TrialEnv, check_positive, resolve_task

# name -> (dtype, trailing shape key); "D": obs dim, "A": action dim
_FIELDS: dict[str, tuple[Any, str]] = {
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
class _Layout:
    """Byte offsets of every field of the shared block, for N envs."""

    num_envs: int
    obs_dim: int
    act_dim: int

    def shapes(self) -> dict[str, tuple[int, ...]]:
        dims = {"D": (self.obs_dim,), "A": (self.act_dim,), "": ()}
        return {k: (self.num_envs, *dims[key]) for k, (_, key) in _FIELDS.items()}

    def nbytes(self) -> int:
        return sum(self._sizes().values())

    def _sizes(self) -> dict[str, int]:
        sizes = {}
        for k, shape in self.shapes().items():
            n = int(np.prod(shape)) * np.dtype(_FIELDS[k][0]).itemsize
            sizes[k] = (n + 7) // 8 * 8  # keep every field 8-byte aligned
        return sizes

    def views(self, buffer: Any) -> dict[str, np.ndarray]:
        """Numpy views of every field on ``buffer`` (shared or local)."""
        raw = np.frombuffer(buffer, dtype=np.uint8)
        out, offset = {}, 0
        for k, shape in self.shapes().items():
            dtype = np.dtype(_FIELDS[k][0])
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


class _EnvFailed(Exception):
    """Env ``index`` of a block raised; the original exception is the cause."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _step_block(envs: list[TrialEnv], indices: list[int], buf: dict[str, np.ndarray],
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
            raise _EnvFailed(j) from exc
        _write(buf, i, obs, reward, truncated, info)


def _reset_block(envs: list[TrialEnv], indices: list[int], buf: dict[str, np.ndarray],
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


def _where(envs: list[TrialEnv], indices: list[int], j: int | None = None) -> str:
    """'env i (task t, goal g)' for one env, or every env of a block."""
    idx = range(len(envs)) if j is None else [j]
    return ", ".join(
        f"env {indices[k]} (task {envs[k].task[0] or '<none yet>'!r}, goal {envs[k].task[1]})"
        for k in idx
    )


def _worker(conn: Connection, shared: Any, layout: _Layout, indices: list[int],
            env_kwargs: dict[str, Any], seed: int | None, spin: float = 0.0,
            trial_autoreset: bool = True) -> None:
    """Worker process: build the envs ``indices``, then obey commands.

    ``spin`` > 0: poll for the next command for up to that many seconds before
    blocking, yielding the core between polls so that a caller sharing it
    (the policy forward on a 2-core machine) is not starved. Why: a worker
    that blocked steps its envs slower after waking (2-core VM, ML10: a 5-env
    block took 6.6 ms in a worker, 4.6 ms in a process that never sleeps).
    Off by default: in paired ``bench/train.py`` runs on 2 cores, 20 ms of
    polling raised random-action and collection steps/s alike, whole training
    not beyond noise (README, "Measured").
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
            if spin:
                deadline = time.perf_counter() + spin
                while not conn.poll(0) and time.perf_counter() < deadline:
                    os.sched_yield()
            cmd, arg = conn.recv()
            if cmd == "step":  # arg: positions in this block to step (None: all)
                sub_envs = envs if arg is None else [envs[j] for j in arg]
                sub_indices = indices if arg is None else [indices[j] for j in arg]
                try:
                    _step_block(sub_envs, sub_indices, buf, trial_autoreset)
                except _EnvFailed as exc:
                    tb = "".join(traceback.format_exception(exc.__cause__))
                    conn.send(("error", f"{_where(sub_envs, sub_indices, exc.index)} raised:\n{tb}"))
                    continue
            elif cmd == "reset":  # arg: (seed, one task or None per env of the block)
                _reset_block(envs, indices, buf, *arg)
            elif cmd == "close":
                break
            conn.send(("ok", None))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass  # parent went away
    except Exception:
        try:
            conn.send(("error", f"{_where(envs, indices) or f'envs {indices}'} "
                                f"raised:\n{traceback.format_exc()}"))
        except OSError:
            pass
    finally:
        for env in envs:
            env.close()
        conn.close()


class TrialVectorEnv(gym.vector.VectorEnv):
    """N trial envs of one benchmark split; see the module docstring."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        benchmark: str | BenchmarkSpec,
        *,
        split: str = "train",
        num_envs: int,
        episodes_per_trial: int | None = None,
        seed: int | None = None,
        max_episode_steps: int | None = None,
        reward_scale: float | None = None,
        workers: int | None = None,
        context: str = "forkserver",
        spin: float = 0.0,
        caller_share: float | None = None,
        trial_autoreset: bool = True,
        clock: bool = False,
        task_switches: int = 0,
        switch_class: bool = False,
    ) -> None:
        spec = get_benchmark(benchmark)
        check_split(split)
        self.num_envs = check_positive("num_envs", num_envs)
        if caller_share is None:
            caller_share = CALLER_SHARE if workers is None else 0.0
        if isinstance(caller_share, bool) or not isinstance(caller_share, (int, float)) or not 0 <= caller_share <= 1:
            raise ValueError(f"caller_share must be a fraction in [0, 1] of a worker's block "
                             f"(0: the caller steps no envs), got {caller_share!r}")
        caller_block = caller_share > 0
        if workers is None:  # one block per usable CPU, the caller's included
            workers = 0 if spec.in_process else min(self.num_envs, _usable_cpus()) - caller_block
        if isinstance(spin, bool) or not isinstance(spin, (int, float)) or not 0.0 <= spin <= 1.0:
            raise ValueError(f"spin must be seconds in [0, 1] (0: workers block at once), got {spin!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an integer >= 0 (0: in-process), got {workers!r}")
        if not isinstance(trial_autoreset, bool):
            raise ValueError(f"trial_autoreset must be True or False, got {trial_autoreset!r}")
        self.trial_autoreset = trial_autoreset
        self.num_workers = min(workers, self.num_envs - caller_block)
        env_kwargs = dict(
            benchmark=benchmark,
            split=split,
            episodes_per_trial=episodes_per_trial,
            max_episode_steps=max_episode_steps,
            reward_scale=reward_scale,
            num_envs=self.num_envs,
            task_set=spec.task_set(split),
            clock=clock,
            task_switches=task_switches,
            switch_class=switch_class,
        )
        # A template env in this process gives spaces and trial constants
        # (validates every argument, builds no MuJoCo model until reset).
        probe = TrialEnv(**env_kwargs)
        self.benchmark, self.split = spec.name, split
        self.task_names = probe.task_names
        self._task_set = probe.task_set
        self.episodes_per_trial = probe.episodes_per_trial
        self.max_episode_steps = probe.max_episode_steps
        self.trial_length = probe.trial_length
        self.reward_scale = probe.reward_scale
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        self.observation_space = gym.vector.utils.batch_space(probe.observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(probe.action_space, self.num_envs)
        self.render_mode = None
        probe.close()

        self._layout = _Layout(self.num_envs, probe.observation_space.shape[0], probe.action_space.shape[0])
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._groups: list[list[int]] = []  # env indices of each worker (its block)
        self._local: dict[int, TrialEnv] = {}  # env index -> env stepped in this process
        self._local_ids: list[int] = []  # its keys, kept as a list for the per-step calls
        self._failed: str | None = None
        # group steps sent and not yet waited for, oldest first: (env ids, workers told)
        self._pending: collections.deque[tuple[bytes, list[int]]] = collections.deque()
        self._busy = np.zeros(self.num_envs, dtype=bool)  # envs in a group step in flight
        self._plans: dict[bytes, list[tuple[int, list[int]]]] = {}  # env ids -> (worker, block positions)
        if self.num_workers == 0:
            self._shared = bytearray(self._layout.nbytes())
            self._buf = self._layout.views(self._shared)
            self._make_local(range(self.num_envs), env_kwargs, seed)
            return
        ctx = mp.get_context(context)
        if context == "forkserver":
            # Workers fork from a server that already imported the env code.
            ctx.set_forkserver_preload(["metarl.envs._preload"])
        self._shared = ctx.RawArray(ctypes.c_char, self._layout.nbytes())
        self._buf = self._layout.views(self._shared)
        # Classes differ up to 2.4x in step cost and a step waits for the slowest
        # worker: balance the estimated cost of each env's first-trial class.
        classes = self.task_names
        self._costs = [spec.step_cost(classes[i % len(classes)]) for i in range(self.num_envs)]
        blocks = balance(self._costs, self.num_workers, caller_share if caller_block else None)
        if caller_block:  # the last block is the caller's (sized by caller_share)
            self._make_local(blocks.pop(), env_kwargs, seed)
        for w, indices in enumerate(blocks):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker,
                args=(child, self._shared, self._layout, indices, env_kwargs, seed, float(spin), trial_autoreset),
                name=f"metarl-envs-{w}",
                daemon=True,
            )
            with _main_hidden():
                proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
            self._groups.append(indices)
        self._wait_all("starting")

    def _make_local(self, indices: Any, env_kwargs: dict[str, Any], seed: int | None) -> None:
        for i in indices:
            self._local[i] = TrialEnv(**env_kwargs, env_index=i, seed=None if seed is None else seed + i)
        self._local_ids = list(self._local)

    @property
    def caller_envs(self) -> list[int]:
        """Indices of the envs this process steps itself (all of them when ``num_workers`` is 0)."""
        return list(self._local_ids)

    # ------------------------------------------------------------ workers

    def _wait_all(self, what: str, workers: list[int] | None = None) -> None:
        """Collect one reply per worker (of ``workers``, default all); raise naming the envs of a failed one."""
        errors = []
        for w in range(len(self._conns)) if workers is None else workers:
            conn, proc = self._conns[w], self._procs[w]
            ready = wait([conn, proc.sentinel])
            try:
                if conn not in ready and not conn.poll():
                    raise EOFError
                status, msg = conn.recv()
            except (EOFError, ConnectionResetError, OSError):
                proc.join(timeout=1.0)
                held = ", ".join(
                    f"env {i} (task {self._task_name(i)!r})" for i in self._groups[w]
                )
                errors.append(
                    f"worker {w} (pid {proc.pid}) died with exit code {proc.exitcode} "
                    f"while {what}; it held {held}"
                )
                continue
            if status == "error":
                errors.append(f"worker {w} while {what}: {msg}")
        if errors:
            self._failed = errors[0]
            self._pending.clear()
            self._busy[:] = False
            self.close()
            raise RuntimeError("\n".join(errors))

    def _task_name(self, i: int) -> str:
        if self._buf["attempt"][i] == 0:  # never reset: no task drawn yet
            return "<none yet>"
        return self.task_names[int(self._buf["task_id"][i])]

    def _send_all(self, msg: tuple[str, Any]) -> None:
        self._send([(w, msg) for w in range(len(self._conns))])

    def _send(self, msgs: list[tuple[int, tuple[str, Any]]]) -> None:
        """Send each (worker, message); a broken pipe is reported by ``_wait_all``."""
        if self.closed:
            raise RuntimeError(
                "vector env is closed" + (f" after a failure: {self._failed}" if self._failed else "")
            )
        for w, msg in msgs:
            try:
                self._conns[w].send(msg)
            except (BrokenPipeError, OSError):
                pass  # reported by _wait_all with the env details

    def _finish_pending(self) -> None:
        """Wait for every group step still in flight (before a reset or full step)."""
        while self._pending:
            _, workers = self._pending.popleft()
            self._wait_all("stepping", workers)
        self._busy[:] = False

    # ------------------------------------------------------------ gym API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start a new trial in every env; ``seed`` seeds env i with ``seed + i``.

        ``options={"tasks": [...]}``: one entry per env, a (class name or
        index, goal index) pair that pins its new trial's task, or None to
        draw it as usual; checked here (one-line ValueError) before any env resets.
        """
        tasks = self._check_tasks((options or {}).get("tasks"))
        self._finish_pending()
        self._send([(w, ("reset", (seed, [tasks[i] for i in block]))) for w, block in enumerate(self._groups)])
        try:  # the caller's block resets while the workers reset theirs
            _reset_block(list(self._local.values()), self._local_ids, self._buf, seed, [tasks[i] for i in self._local_ids])
        finally:
            self._wait_all("resetting")
        return self._buf["obs"].copy(), self._infos()

    def _check_tasks(self, tasks: Any) -> list[tuple[int, int] | None]:
        """Per-env (class index, goal index) or None from the ``tasks`` reset option."""
        if tasks is None:
            return [None] * self.num_envs
        if isinstance(tasks, (str, bytes)) or not hasattr(tasks, "__len__") or len(tasks) != self.num_envs:
            got = f"{len(tasks)} entries" if hasattr(tasks, "__len__") else repr(tasks)
            raise ValueError(f"options['tasks'] must hold one (class, goal index) pair or None per env "
                             f"({self.num_envs} entries), got {got}")
        out = []
        for i, task in enumerate(tasks):
            try:
                out.append(None if task is None else resolve_task(self._task_set, task))
            except ValueError as exc:
                raise ValueError(f"options['tasks'][{i}]: {exc}") from None
        return out

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        self._finish_pending()
        self._check_trials_open(slice(None))
        self._buf["actions"][:] = np.asarray(actions, dtype=np.float32).reshape(
            self._buf["actions"].shape
        )  # (N, A)
        self._send_all(("step", None))
        try:  # the caller's block steps while the workers step theirs
            self._step_local(self._local_ids)
        finally:
            self._wait_all("stepping")
        b = self._buf
        return (
            b["obs"].copy(),
            b["rewards"].copy(),
            b["terminated"].copy(),
            b["truncated"].copy(),
            self._infos(),
        )

    def _check_trials_open(self, env_ids: Any) -> None:
        """Raise if an env of ``env_ids`` ended its trial and waits for ``reset()`` (no trial autoreset).

        Such an env's ``trial_end`` flag in the buffer stays set until its reset
        writes the new trial's, so the flag itself is the record; call after
        waiting for the envs' steps in flight."""
        ended = self._buf["trial_end"][env_ids]
        if not self.trial_autoreset and ended.any():
            over = np.arange(self.num_envs)[env_ids][ended]
            raise ValueError(f"envs {over.tolist()} ended their trial and wait for reset() "
                             f"(this vector env was made with trial_autoreset=False)")

    def _step_local(self, indices: list[int]) -> None:
        """Step the in-process envs ``indices`` on the actions in the buffer."""
        envs = [self._local[i] for i in indices]
        try:
            _step_block(envs, indices, self._buf, self.trial_autoreset)
        except _EnvFailed as exc:
            raise RuntimeError(f"{_where(envs, indices, exc.index)} raised") from exc.__cause__

    def _infos(self, env_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        rows = slice(None) if env_ids is None else env_ids
        infos = {k: self._buf[k][rows].copy() for k in INFO_KEYS}
        infos["final_obs"] = self._buf["final_obs"][rows].copy()  # (N or G, D)
        return infos

    # ------------------------------------------------------------ group steps

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
        caller's own envs of the group step here, synchronously. ``step``/``reset`` first wait for
        every group in flight.
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

    def close_extras(self, **kwargs: Any) -> None:
        for env in self._local.values():
            env.close()
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=1.0)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            try:
                self.close()
            except Exception:
                pass


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
def _main_hidden() -> Iterator[None]:
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


#: The caller's block, relative to a worker's, when workers are chosen automatically (see
#: ``make_vec``). bench/train.py on 2 cores (16 reach envs, forget-memory 128, one run each):
#: full training 948 env steps/s at 1.0, 842 at 0.6, 717 at 0.35, 822 with no caller block.
CALLER_SHARE = 1.0


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_vec(
    benchmark: str | BenchmarkSpec,
    *,
    split: str = "train",
    num_envs: int,
    episodes_per_trial: int | None = None,
    seed: int | None = None,
    max_episode_steps: int | None = None,
    reward_scale: float | None = None,
    workers: int | None = None,
    spin: float = 0.0,
    caller_share: float | None = None,
    trial_autoreset: bool = True,
    clock: bool = False,
    task_switches: int = 0,
    switch_class: bool = False,
) -> TrialVectorEnv:
    """A vector env of ``num_envs`` trial envs (see ``TrialVectorEnv``).

    ``workers``: worker processes (``None``: in-process for toy benchmarks,
    else one block of envs per usable CPU, the caller's block included, i.e.
    ``min(num_envs, usable CPUs) - 1`` processes; 0: always in-process).
    ``caller_share`` > 0: this process steps a block of envs itself while
    the workers step theirs, instead of idling in a wait; the block's step
    cost is that fraction of a worker's (lower it where the caller's own work
    between steps is heavy; ``None``: ``CALLER_SHARE`` when ``workers`` is
    None, else 0). ``spin``:
    seconds a worker polls for its next command before blocking (0: block at
    once; see ``_worker``). ``trial_autoreset=False``: an env whose trial
    ended waits for the next ``reset()`` instead of starting a new trial in
    the same step (see the module docstring). Other arguments as in
    ``make_env``; ``seed`` seeds env i with ``seed + i``.
    """
    return TrialVectorEnv(
        benchmark,
        split=split,
        num_envs=num_envs,
        episodes_per_trial=episodes_per_trial,
        seed=seed,
        max_episode_steps=max_episode_steps,
        reward_scale=reward_scale,
        workers=workers,
        spin=spin,
        caller_share=caller_share,
        trial_autoreset=trial_autoreset,
        clock=clock,
        task_switches=task_switches,
        switch_class=switch_class,
    )
