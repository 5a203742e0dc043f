"""``TrialVectorEnv``: many trial envs, several per worker process.

Why not gymnasium's ``AsyncVectorEnv``: it runs one process per env and
pickles every observation and info dict through a pipe. Here each worker
process steps a contiguous block of envs; actions, observations, rewards,
flags and info arrays live in one shared-memory block, and the pipes carry
only a tiny command and an acknowledgement per worker per step
(``metarl.envs.workers``). Envs are spread over workers by estimated step
cost (``balance``), since a vector step waits for the slowest worker. Toy
benchmarks (``spec.in_process``) step in the calling process: their step is
cheaper than any IPC. Measured figures behind these choices: README,
"Measured" (``bench/envs.py``, ``bench/train.py``).

Semantics (docs/interfaces.md): SAME_STEP autoreset, i.e. where an attempt
ended the returned obs is already the first obs of the next attempt or
trial, and ``infos["final_obs"]`` holds the ended attempt's last obs. The
other ``infos`` arrays (``INFO_KEYS``) describe the step just taken, i.e.
the ended attempt; so ``task_switched`` (``task_switches`` > 0) is True at
the first step of an attempt whose task was just switched, where
``goal``/``task_id`` first name the new task. ``reset(seed=s)`` seeds env i
with ``s + i``; ``reset()`` starts a new trial in every env;
``reset(options={"tasks": [task or None per env]})`` pins env i's new trial
to ``tasks[i]`` = (class name or index, goal index), as a single env's
``reset(options={"task": ...})`` does (None: the task is drawn as usual).

``trial_autoreset=False`` leaves an env whose trial ended as it is (its
returned obs is the trial's last, equal to ``final_obs``) until the next
``reset()``; stepping it before then is an error. Attempts inside a trial
still reset in the same step. It is for a caller that resets every env at
the start of each trial anyway (the trainer's trial-aligned collection): it
saves the Meta-World reset that the caller's reset would discard.

The calling process steps one block itself (``caller_share``, on by default
with automatic ``workers``) while the workers step theirs, instead of idling
in a wait. Group steps and spinning workers, for pipelined collection, are
in the subclass ``metarl.envs.pipelined.PipelinedTrialVectorEnv``
(``make_vec(..., pipelined=True)``); members with one underscore here are
its interface.

Workers start with the ``forkserver`` method (fork hangs after the parent
has rendered); they receive the split's task set with their arguments, so no
worker rebuilds a Meta-World benchmark. A worker that raises or dies makes
the next call raise ``RuntimeError`` naming the envs and tasks it held.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from metarl.envs.checks import check_caller_share, check_positive, check_workers
from metarl.envs.core import BenchmarkSpec, resolve_task
from metarl.envs.registry import check_split, get_benchmark
from metarl.envs.trial import TrialEnv
from metarl.envs.workers import (INFO_KEYS, EnvFailed, SharedLayout, balance, main_hidden, reset_block, run_worker,
                                 step_block, usable_cpus, where)

__all__ = ["CALLER_SHARE", "INFO_KEYS", "TrialVectorEnv", "balance", "make_vec", "usable_cpus"]

#: The caller's block, relative to a worker's, when workers are chosen automatically (see
#: ``make_vec``); chosen with ``bench/train.py`` (README, "Measured").
CALLER_SHARE = 1.0


class TrialVectorEnv(gym.vector.VectorEnv):
    """N trial envs of one benchmark split; see the module docstring.

    Underscore members are shared only with the subclass ``PipelinedTrialVectorEnv``
    (``metarl.envs.pipelined``), which extends them; they are not API."""

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
        check_caller_share("caller_share", caller_share)
        caller_block = caller_share > 0
        if workers is None:  # one block per usable CPU, the caller's included
            workers = 0 if spec.in_process else min(self.num_envs, usable_cpus()) - caller_block
        workers = check_workers("workers", workers)
        if not isinstance(trial_autoreset, bool):
            raise ValueError(f"trial_autoreset must be True or False, got {trial_autoreset!r}")
        self.trial_autoreset = trial_autoreset
        self.num_workers = min(workers, self.num_envs - caller_block)
        env_kwargs = dict(benchmark=benchmark, split=split, episodes_per_trial=episodes_per_trial,
                          max_episode_steps=max_episode_steps, reward_scale=reward_scale, num_envs=self.num_envs,
                          task_set=spec.task_set(split), clock=clock, task_switches=task_switches,
                          switch_class=switch_class)
        self._describe(spec, TrialEnv(**env_kwargs))
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._groups: list[list[int]] = []  # env indices of each worker (its block)
        self._local: dict[int, TrialEnv] = {}  # env index -> env stepped in this process
        self._local_ids: list[int] = []  # its keys, kept as a list for the per-step calls
        self._failed: str | None = None
        if self.num_workers == 0:
            self._shared = bytearray(self._layout.nbytes())
            self._buf = self._layout.views(self._shared)
            self._make_local(range(self.num_envs), env_kwargs, seed)
            return
        self._start_workers(spec, env_kwargs, seed, context, caller_share if caller_block else None)

    def _describe(self, spec: BenchmarkSpec, probe: TrialEnv) -> None:
        """Spaces and trial constants from a template env (it validated every argument and
        builds no MuJoCo model until reset)."""
        self.benchmark, self.split = spec.name, probe.split
        self.task_names = probe.task_names
        self._task_set = probe.task_set
        self.episodes_per_trial = probe.episodes_per_trial
        self.task_switches = probe.task_switches  # task changes per trial (0: one task per trial)
        self.max_episode_steps = probe.max_episode_steps
        self.trial_length = probe.trial_length
        self.reward_scale = probe.reward_scale
        self.obs_layout = probe.obs_layout
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        self.observation_space = gym.vector.utils.batch_space(probe.observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(probe.action_space, self.num_envs)
        self.render_mode = None
        probe.close()
        self._layout = SharedLayout(self.num_envs, probe.observation_space.shape[0], probe.action_space.shape[0])

    def _start_workers(self, spec: BenchmarkSpec, env_kwargs: dict[str, Any], seed: int | None, context: str,
                       caller_share: float | None) -> None:
        ctx = mp.get_context(context)
        if context == "forkserver":
            # Workers fork from a server that already imported the env code.
            ctx.set_forkserver_preload(["metarl.envs._preload"])
        self._shared = ctx.RawArray(ctypes.c_char, self._layout.nbytes())
        self._buf = self._layout.views(self._shared)
        # Classes differ in step cost and a step waits for the slowest worker:
        # balance the estimated cost of each env's first-trial class.
        classes = self.task_names
        self._costs = [spec.step_cost(classes[i % len(classes)]) for i in range(self.num_envs)]
        blocks = balance(self._costs, self.num_workers, caller_share)
        if caller_share is not None:  # the last block is the caller's (sized by caller_share)
            self._make_local(blocks.pop(), env_kwargs, seed)
        target, lead = self._worker_target()
        for w, indices in enumerate(blocks):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=target,
                               args=(*lead, child, self._shared, self._layout, indices, env_kwargs, seed,
                                     self.trial_autoreset),
                               name=f"metarl-envs-{w}", daemon=True)
            with main_hidden():
                proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
            self._groups.append(indices)
        self._wait_all("starting")

    def _worker_target(self) -> tuple[Callable[..., None], tuple[Any, ...]]:
        """The worker process's function and the arguments it takes before ``run_worker``'s."""
        return run_worker, ()

    def _make_local(self, indices: Any, env_kwargs: dict[str, Any], seed: int | None) -> None:
        for i in indices:
            self._local[i] = TrialEnv(**env_kwargs, env_index=i, seed=None if seed is None else seed + i)
        self._local_ids = list(self._local)

    @property
    def caller_envs(self) -> list[int]:
        """Indices of the envs this process steps itself (all of them when ``num_workers`` is 0)."""
        return list(self._local_ids)

    @property
    def worker_blocks(self) -> list[list[int]]:
        """Indices of the envs each worker process steps, one list per worker."""
        return [list(b) for b in self._groups]

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes (none when ``num_workers`` is 0)."""
        return [p.pid for p in self._procs]

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
        self._send([(w, ("reset", (seed, [tasks[i] for i in block]))) for w, block in enumerate(self._groups)])
        try:  # the caller's block resets while the workers reset theirs
            reset_block(list(self._local.values()), self._local_ids, self._buf, seed,
                        [tasks[i] for i in self._local_ids])
        finally:
            self._wait_all("resetting")
        return self._buf["obs"].copy(), self._infos()

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        self._check_trials_open(slice(None))
        self._buf["actions"][:] = np.asarray(actions, dtype=np.float32).reshape(
            self._buf["actions"].shape
        )  # (N, A)
        self._send([(w, ("step", None)) for w in range(len(self._conns))])
        try:  # the caller's block steps while the workers step theirs
            self._step_local(self._local_ids)
        finally:
            self._wait_all("stepping")
        b = self._buf
        return b["obs"].copy(), b["rewards"].copy(), b["terminated"].copy(), b["truncated"].copy(), self._infos()

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

    def _check_trials_open(self, env_ids: Any) -> None:
        """Raise if an env of ``env_ids`` ended its trial and waits for ``reset()`` (no trial autoreset).

        Such an env's ``trial_end`` flag in the buffer stays set until its reset
        writes the new trial's, so the flag itself is the record."""
        ended = self._buf["trial_end"][env_ids]
        if not self.trial_autoreset and ended.any():
            over = np.arange(self.num_envs)[env_ids][ended]
            raise ValueError(f"envs {over.tolist()} ended their trial and wait for reset() "
                             f"(this vector env was made with trial_autoreset=False)")

    def _step_local(self, indices: list[int]) -> None:
        """Step the in-process envs ``indices`` on the actions in the buffer."""
        envs = [self._local[i] for i in indices]
        try:
            step_block(envs, indices, self._buf, self.trial_autoreset)
        except EnvFailed as exc:
            raise RuntimeError(f"{where(envs, indices, exc.index)} raised") from exc.__cause__

    def _infos(self, env_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        rows = slice(None) if env_ids is None else env_ids
        infos = {k: self._buf[k][rows].copy() for k in INFO_KEYS}
        infos["final_obs"] = self._buf["final_obs"][rows].copy()  # (N or G, D)
        return infos

    # ------------------------------------------------------------ workers

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
                held = ", ".join(f"env {i} (task {self._task_name(i)!r})" for i in self._groups[w])
                errors.append(f"worker {w} (pid {proc.pid}) died with exit code {proc.exitcode} "
                              f"while {what}; it held {held}")
                continue
            if status == "error":
                errors.append(f"worker {w} while {what}: {msg}")
        if errors:
            self._failed = errors[0]
            self.close()
            raise RuntimeError("\n".join(errors))

    def _task_name(self, i: int) -> str:
        if self._buf["attempt"][i] == 0:  # never reset: no task drawn yet
            return "<none yet>"
        return self.task_names[int(self._buf["task_id"][i])]

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
    caller_share: float | None = None,
    trial_autoreset: bool = True,
    clock: bool = False,
    task_switches: int = 0,
    switch_class: bool = False,
    pipelined: bool = False,
    spin: float = 0.0,
) -> TrialVectorEnv:
    """A vector env of ``num_envs`` trial envs (see ``TrialVectorEnv``).

    ``workers``: worker processes (``None``: in-process for toy benchmarks,
    else one block of envs per usable CPU, the caller's block included, i.e.
    ``min(num_envs, usable CPUs) - 1`` processes; 0: always in-process).
    ``caller_share`` > 0: this process steps a block of envs itself while
    the workers step theirs, instead of idling in a wait; the block's step
    cost is that fraction of a worker's (lower it where the caller's own work
    between steps is heavy; ``None``: ``CALLER_SHARE`` when ``workers`` is
    None, else 0). ``trial_autoreset=False``: an env whose trial ended waits
    for the next ``reset()`` instead of starting a new trial in the same step
    (see the module docstring). ``pipelined=True``, or ``spin`` (seconds a
    worker polls for its next command before blocking) other than 0, gives
    the pipelined variant with group steps (``metarl.envs.pipelined``).
    Other arguments as in ``make_env``; ``seed`` seeds env i with ``seed + i``.
    """
    kwargs = dict(split=split, num_envs=num_envs, episodes_per_trial=episodes_per_trial, seed=seed,
                  max_episode_steps=max_episode_steps, reward_scale=reward_scale, workers=workers,
                  caller_share=caller_share, trial_autoreset=trial_autoreset, clock=clock,
                  task_switches=task_switches, switch_class=switch_class)
    if not pipelined and isinstance(spin, (int, float)) and not isinstance(spin, bool) and spin == 0:
        return TrialVectorEnv(benchmark, **kwargs)
    # pipelined subclasses TrialVectorEnv: importing it at the top would be circular
    from metarl.envs.pipelined import PipelinedTrialVectorEnv

    return PipelinedTrialVectorEnv(benchmark, spin=spin, **kwargs)
