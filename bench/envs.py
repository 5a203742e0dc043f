"""Env-stepping speed and memory: single env vs gymnasium AsyncVectorEnv vs ours.

All three step the same trial envs (``metarl.envs.make_env`` with the same
round-robin task assignment) with the same random actions on the same
machine, in one run; the two vector envs are alive together and their
repeats alternate, so background load hits both alike. Reported: medians of
``--repeats`` timings in env steps per second, ours / gymnasium, and ours /
(usable cores x single-env rate).

    python bench/envs.py --benchmark ML10 --num-envs 10 --steps 300
    python bench/envs.py --benchmark ML45 --num-envs 45 --memory-only

``--memory-only`` builds ``make_vec`` alone, steps it, and reports resident
memory (RSS sum over the main and worker processes, and PSS, which counts
shared pages once). Pure CPU: no GPU involved; on a 16-core machine use
e.g. ``--num-envs 32``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import gymnasium as gym
import numpy as np

from metarl.envs import make_env, make_vec
from metarl.envs.vector import usable_cpus


def _single_rate(args: argparse.Namespace, rng: np.random.Generator) -> float:
    """Steps/s of one process stepping the same N envs one after another.

    Classes differ up to 5x in step cost (push vs drawer-close), so the fair
    single-core reference is the mix the vector envs step, not one env.
    """
    envs = [make_env(args.benchmark, split=args.split, max_episode_steps=args.max_episode_steps,
                     env_index=i, num_envs=args.num_envs, seed=i) for i in range(args.num_envs)]
    for env in envs:
        env.reset()
    steps = max(1, args.steps // 2)
    actions = rng.uniform(-1, 1, (steps, args.num_envs, *envs[0].action_space.shape)).astype(np.float32)
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        _step_one_by_one(envs, actions)
        rates.append(actions.shape[0] * actions.shape[1] / (time.perf_counter() - t0))
    for env in envs:
        env.close()
    return statistics.median(rates)


def _step_one_by_one(envs: list, actions: np.ndarray) -> None:
    """Step each env in turn on actions (steps, N, A), resetting where an attempt ends."""
    for a in actions:
        for env, a_i in zip(envs, a):
            _, _, term, trunc, _ = env.step(a_i)
            if term or trunc:
                env.reset()


def _independent_block(args: tuple) -> float:
    """Step one block of envs alone (no IPC) after a barrier; returns its wall seconds."""
    bench_args, indices, steps, barrier = args
    envs = [make_env(bench_args.benchmark, split=bench_args.split, max_episode_steps=bench_args.max_episode_steps,
                     env_index=i, num_envs=bench_args.num_envs, seed=i) for i in indices]
    for env in envs:
        env.reset()
    rng = np.random.default_rng(indices[0])
    actions = rng.uniform(-1, 1, (steps, len(envs), *envs[0].action_space.shape)).astype(np.float32)
    barrier.wait()
    t0 = time.perf_counter()
    _step_one_by_one(envs, actions)
    return time.perf_counter() - t0


def _independent_rate(args: argparse.Namespace, blocks: list[list[int]]) -> float:
    """Env steps/s of one process per block stepping its envs at the same time, with no IPC at all.

    The ceiling for any vector env on these cores: ``cores x single`` assumes a
    core runs as fast with its neighbours busy as alone, which shared caches,
    memory bandwidth, SMT siblings and turbo clocks can deny.
    """
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    steps = max(1, args.steps // 2)
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(blocks))
        with ctx.Pool(len(blocks)) as pool:
            secs = pool.map(_independent_block, [(args, b, steps, barrier) for b in blocks])
    return steps * sum(len(b) for b in blocks) / max(secs)


def _proc_cpu(pids: list[int]) -> np.ndarray:
    """User + system CPU seconds of each of ``pids`` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / tick)  # utime, stime
    return np.array(out)


def _vector_rate(envs: gym.vector.VectorEnv, pids: list[int], actions: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(env steps per wall second, env steps per CPU second over all processes, this one included,
    and each worker's busy share: its CPU seconds / wall seconds).

    A worker blocks in ``recv`` while idle, so its CPU time is its busy time: one
    worker near 1.0 with the rest lower means imbalance (the step waits for it);
    all well below 1.0 means the time goes to messaging and waiting.
    """
    c0, p0, t0 = time.process_time(), _proc_cpu(pids), time.perf_counter()
    for a in actions:
        envs.step(a)
    wall = time.perf_counter() - t0
    per_worker = _proc_cpu(pids) - p0  # (W,)
    cpu = time.process_time() - c0 + per_worker.sum()
    n = actions.shape[0] * actions.shape[1]
    return n / wall, n / cpu, per_worker / wall


def _make_gym_async(args: argparse.Namespace) -> gym.vector.AsyncVectorEnv:
    def thunk(i: int):
        return lambda: make_env(args.benchmark, split=args.split,
                                max_episode_steps=args.max_episode_steps,
                                env_index=i, num_envs=args.num_envs)

    return gym.vector.AsyncVectorEnv(
        [thunk(i) for i in range(args.num_envs)],
        context="forkserver",
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def _memory(pids: list[int]) -> tuple[float, float]:
    """(RSS sum, PSS sum) in MB over ``pids`` (Linux /proc)."""
    rss = pss = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
    return rss, pss


def memory_only(args: argparse.Namespace) -> dict[str, float]:
    """Build and step ``make_vec`` alone; print and return its resident memory (MB) and build time (s)."""
    t0 = time.perf_counter()
    envs = make_vec(args.benchmark, split=args.split, num_envs=args.num_envs,
                    max_episode_steps=args.max_episode_steps, workers=args.workers, seed=0)
    built = time.perf_counter() - t0
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(args.steps):
        envs.step(rng.uniform(-1, 1, envs.action_space.shape))
    pids = [os.getpid()] + envs.worker_pids
    rss, pss = _memory(pids)
    print(f"{args.benchmark} {args.split}: {args.num_envs} envs, {envs.num_workers} workers "
          f"+ {len(envs.caller_envs)} envs in the main process, "
          f"built in {built:.1f} s")
    print(f"resident memory: RSS sum {rss:.0f} MB, PSS sum {pss:.0f} MB "
          f"({len(pids)} processes, main included)")
    workers = envs.num_workers
    envs.close()
    return {"rss_mb": rss, "pss_mb": pss, "build_s": built, "processes": len(pids), "workers": workers}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--benchmark", default="ML10")
    p.add_argument("--split", default="train")
    p.add_argument("--num-envs", type=int, default=10)
    p.add_argument("--workers", type=int, default=None, help="ours: worker processes (default: usable cores)")
    p.add_argument("--steps", type=int, default=300, help="vector steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-episode-steps", type=int, default=None)
    p.add_argument("--spin", type=float, default=0.0,
                   help="ours: seconds a worker polls for its next command before blocking (make_vec spin)")
    p.add_argument("--memory-only", action="store_true")
    args = p.parse_args()
    if args.memory_only:
        memory_only(args)
        return

    cores = usable_cpus()
    rng = np.random.default_rng(0)
    single = _single_rate(args, rng)

    ours = make_vec(args.benchmark, split=args.split, num_envs=args.num_envs,
                    max_episode_steps=args.max_episode_steps, workers=args.workers, spin=args.spin)
    theirs = _make_gym_async(args)
    ours.reset(seed=0)
    theirs.reset(seed=0)
    actions = rng.uniform(-1, 1, (args.steps, *ours.action_space.shape)).astype(np.float32)
    ours_pids = ours.worker_pids
    theirs_pids = [p.pid for p in theirs.processes]
    _vector_rate(ours, ours_pids, actions[:20])  # warm-up: first steps build lazy state
    _vector_rate(theirs, theirs_pids, actions[:20])
    ours_rates, theirs_rates = [], []
    for _ in range(args.repeats):
        theirs_rates.append(_vector_rate(theirs, theirs_pids, actions))
        ours_rates.append(_vector_rate(ours, ours_pids, actions))
    blocks = ours.worker_blocks + ([ours.caller_envs] if ours.caller_envs else [])
    ours.close()
    theirs.close()
    independent = _independent_rate(args, blocks)

    o, t = (statistics.median(r[0] for r in rates) for rates in (ours_rates, theirs_rates))
    o_cpu, t_cpu = (statistics.median(r[1] for r in rates) for rates in (ours_rates, theirs_rates))
    load = os.getloadavg()[0]
    print(f"{args.benchmark} {args.split}, {args.num_envs} envs, {cores} usable cores, "
          f"ours with {ours.num_workers} workers + {len(ours.caller_envs)} envs in the caller "
          f"(spin {args.spin * 1e3:g} ms), {args.steps} steps x {args.repeats} repeats (medians)")
    print(f"single process, same envs one by one: {single:.0f} steps/s")
    print(f"gymnasium AsyncVectorEnv: {t:.0f} env steps/s")
    print(f"ours (TrialVectorEnv): {o:.0f} env steps/s")
    print(f"ours / gymnasium: {o / t:.2f}x")
    print(f"ours / (cores x single): {o / (cores * single):.2f}")
    print(f"independent processes, ours' blocks, no IPC: {independent:.0f} env steps/s "
          f"({independent / (cores * single):.2f} of cores x single: the hardware's own scaling); "
          f"ours / independent: {o / independent:.2f}")
    print(f"per CPU-second (all processes): gymnasium {t_cpu:.0f}, ours {o_cpu:.0f} env steps, "
          f"ratio {o_cpu / t_cpu:.2f}x")
    busy = np.median(np.stack([r[2] for r in ours_rates]), axis=0)  # (W,) per worker, median over repeats
    print(f"ours, worker busy share of wall time: mean {busy.mean():.2f}, min {busy.min():.2f}, "
          f"max {busy.max():.2f} over {len(busy)} workers (CPU clock ticks: coarse for short runs)")
    print(f"load average during the run: {load:.1f} (wall-clock ratios are fair only near {cores})")


if __name__ == "__main__":
    main()
