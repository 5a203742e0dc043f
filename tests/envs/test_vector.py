"""The vector env: same results as stepping the envs one by one, trial-aligned, clean close."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from metarl.envs import TRIAL_START, make_env, make_vec
from metarl.envs.toy import PointNavBenchmark, PointNavCore
from metarl.envs.vector import INFO_KEYS, balance

K, L = 2, 5


def _compare_with_single_envs(benchmark: str, num_envs: int, workers: int | None, trials: int = 2,
                              spin: float = 0.0, caller_share: float | None = 0.0) -> None:
    envs = make_vec(benchmark, num_envs=num_envs, episodes_per_trial=K, max_episode_steps=L,
                    workers=workers, seed=100, spin=spin, caller_share=caller_share)
    if caller_share and envs.num_workers:
        assert 0 < len(envs.caller_envs) < num_envs
    singles = [make_env(benchmark, episodes_per_trial=K, max_episode_steps=L,
                        env_index=i, num_envs=num_envs) for i in range(num_envs)]
    try:
        assert envs.trial_length == singles[0].trial_length == K * L
        assert envs.single_observation_space == singles[0].observation_space
        obs, infos = envs.reset(seed=40)
        expected = [e.reset(seed=40 + i) for i, e in enumerate(singles)]
        np.testing.assert_array_equal(obs, np.stack([o for o, _ in expected]))
        assert list(infos["task_id"]) == [info["task_id"] for _, info in expected]
        rng = np.random.default_rng(0)
        n_act = envs.single_action_space.shape[0]
        for step in range(trials * envs.trial_length):
            actions = rng.uniform(-1.2, 1.2, (num_envs, n_act)).astype(np.float32)
            obs, rew, term, trunc, infos = envs.step(actions)
            assert set(INFO_KEYS) | {"final_obs"} <= set(infos)
            assert all(infos[k].shape[0] == num_envs for k in infos)
            for i, env in enumerate(singles):
                o, r, te, tr, info = env.step(actions[i])
                assert rew[i] == r and term[i] == te and trunc[i] == tr
                for key in INFO_KEYS:
                    assert infos[key][i] == info[key], (step, i, key)
                if tr:
                    np.testing.assert_array_equal(infos["final_obs"][i], o)
                    o, _ = env.reset()
                np.testing.assert_array_equal(obs[i], o)
            last = (step + 1) % envs.trial_length == 0
            assert infos["trial_end"].all() == last and infos["trial_end"].any() == last
            if last:
                assert np.all(obs[:, TRIAL_START] == 1.0)  # already the next trial's first obs
    finally:
        envs.close()
        for env in singles:
            env.close()


def test_vector_matches_single_envs_metaworld_workers() -> None:
    # 3 envs < 10 classes: envs change class between trials; 2 workers, uneven blocks
    _compare_with_single_envs("ML10", num_envs=3, workers=2)


def test_vector_matches_single_envs_toy_in_process_and_workers() -> None:
    _compare_with_single_envs("point-nav", num_envs=4, workers=0)
    _compare_with_single_envs("bandit", num_envs=3, workers=2)


def test_caller_block_matches_single_envs() -> None:
    # ML10: 4 envs, 2 workers + the caller's block, classes changing between trials
    _compare_with_single_envs("ML10", num_envs=4, workers=2, caller_share=1.0)
    _compare_with_single_envs("bandit", num_envs=3, workers=1, caller_share=0.5)


def test_automatic_workers_leave_one_block_to_the_caller(monkeypatch) -> None:
    import metarl.envs.vector as vector

    monkeypatch.setattr(vector, "usable_cpus", lambda: 3)
    envs = make_vec("ML1/reach-v3", num_envs=8, episodes_per_trial=K, max_episode_steps=L)
    try:
        assert envs.num_workers == 2 and len(envs._procs) == 2
        assert sorted(i for b in [*envs._groups, envs.caller_envs] for i in b) == list(range(8))
        assert [len(b) for b in envs._groups] == [3, 3] and len(envs.caller_envs) == 2  # equal shares, the caller last
    finally:
        envs.close()
    envs = make_vec("ML1/reach-v3", num_envs=5, episodes_per_trial=K, max_episode_steps=L, caller_share=0)
    assert envs.num_workers == 3 and envs.caller_envs == []
    envs.close()
    for bad in (1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match=r"caller_share must be a fraction in \[0, 1\]") as err:
            make_vec("bandit", num_envs=2, caller_share=bad)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("benchmark,workers,caller_share", [
    ("ML1/reach-v3", 1, 1.0),  # a worker's block and the caller's
    ("bandit", 0, None),  # in process
])
def test_without_trial_autoreset_an_ended_trial_waits_for_reset(benchmark, workers, caller_share) -> None:
    kw = dict(num_envs=3, episodes_per_trial=K, max_episode_steps=L, workers=workers, caller_share=caller_share)
    auto, held = make_vec(benchmark, **kw), make_vec(benchmark, trial_autoreset=False, **kw)
    try:
        rng = np.random.default_rng(0)
        n_act = auto.single_action_space.shape[0]
        for trial in range(2):
            np.testing.assert_array_equal(auto.reset(seed=40 + trial)[0], held.reset(seed=40 + trial)[0])
            for step in range(auto.trial_length):
                actions = rng.uniform(-1, 1, (3, n_act)).astype(np.float32)
                a, h = auto.step(actions), held.step(actions)
                for x, y in zip(a[1:4], h[1:4]):
                    np.testing.assert_array_equal(x, y)
                for key in a[4]:
                    np.testing.assert_array_equal(a[4][key], h[4][key], err_msg=key)
                if step < auto.trial_length - 1:
                    np.testing.assert_array_equal(a[0], h[0])
            assert h[4]["trial_end"].all()
            np.testing.assert_array_equal(h[0], h[4]["final_obs"])  # the trial's last obs, no new trial
            assert np.all(a[0][:, TRIAL_START] == 1.0) and not np.any(h[0][:, TRIAL_START] == 1.0)
            with pytest.raises(ValueError, match=r"envs \[0, 1, 2\] ended their trial and wait for reset\(\)") as err:
                held.step(actions)
            assert "\n" not in str(err.value)
        held.reset(seed=0)
        held.step(np.zeros((3, n_act), dtype=np.float32))  # a reset opens the next trial
    finally:
        auto.close()
        held.close()
    with pytest.raises(ValueError, match="trial_autoreset must be True or False, got 'no'"):
        make_vec("bandit", num_envs=2, trial_autoreset="no")


def test_attributes_and_round_robin_task_ids() -> None:
    envs = make_vec("ML10", split="test", num_envs=7, episodes_per_trial=K, max_episode_steps=L, workers=0)
    assert (envs.episodes_per_trial, envs.max_episode_steps, envs.trial_length) == (K, L, K * L)
    assert envs.observation_space.shape == (7, 39 + 4 + 3)
    assert envs.action_space.shape == (7, 4)
    _, infos = envs.reset(seed=0)
    assert list(infos["task_id"]) == [0, 1, 2, 3, 4, 0, 1]  # round-robin by env index
    for _ in range(envs.trial_length):
        _, _, _, _, infos = envs.step(np.zeros((7, 4)))
    assert infos["trial_end"].all()
    _, _, _, _, infos = envs.step(np.zeros((7, 4)))
    assert list(infos["task_id"]) == [(i + 7) % 5 for i in range(7)]  # second trial
    envs.close()


def test_reset_without_seed_starts_new_trial_everywhere() -> None:
    envs = make_vec("point-nav", num_envs=3, seed=0)
    envs.reset()
    envs.step(np.zeros((3, 2)))
    obs, infos = envs.reset()
    assert np.all(obs[:, TRIAL_START] == 1.0) and np.all(infos["attempt"] == 1)
    envs.close()


def test_balance_spreads_step_cost_over_workers() -> None:
    costs = [0.7, 2.6, 2.5, 1.3, 0.8, 0.6, 1.1, 0.9, 2.0, 0.6]  # ML10 train, ms per step
    groups = balance(costs, 2)
    assert sorted(i for g in groups for i in g) == list(range(10))  # each env exactly once
    loads = [sum(costs[i] for i in g) for g in groups]
    assert max(loads) - min(loads) <= 0.3  # contiguous halves would differ by 1.6
    assert all(len(g) >= 1 for g in balance([5.0, 1.0, 1.0], 3))
    # the caller's block (last) runs at the given speed: a third of the load at share 0.5
    *workers, caller = balance([1.0] * 10, 2, caller_share=0.5)
    assert [len(g) for g in workers] == [4, 4] and len(caller) == 2
    assert all(len(g) == 1 for g in balance([1.0] * 3, 2, caller_share=0.01))  # still one env per block


def _children() -> set[int]:
    return {p.pid for p in mp.active_children()}


def test_dead_worker_is_reported_with_env_and_task() -> None:
    envs = make_vec("ML10", num_envs=3, episodes_per_trial=K, max_episode_steps=L, workers=2, seed=0)
    envs.reset(seed=0)
    w = next(w for w, group in enumerate(envs._groups) if 2 in group)  # the worker holding env 2
    victim = envs._procs[w]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=10)
    with pytest.raises(RuntimeError) as err:
        envs.step(np.zeros((3, 4)))
    msg = str(err.value)
    assert f"worker {w}" in msg and "env 2 (task 'pick-place-v3')" in msg, msg
    assert envs.closed
    assert all(p.exitcode is not None for p in envs._procs) or not envs._procs


class _BrokenCore(PointNavCore):
    def step(self, action):
        if self.pos[0] > 0.25:  # three steps right
            raise FloatingPointError("simulated physics blow-up")
        return super().step(action)


class BrokenNav(PointNavBenchmark):
    """point-nav whose core raises once the point has moved right far enough."""

    def make_core(self, class_name, *, max_episode_steps, render_mode=None, camera=None):
        return _BrokenCore()


@pytest.mark.parametrize(("workers", "caller_share"), [(0, 0.0), (2, 0.0), (1, 1.0)])
def test_env_error_names_env_and_task(workers: int, caller_share: float) -> None:
    envs = make_vec(BrokenNav(), num_envs=3, workers=workers, seed=0, caller_share=caller_share)
    envs.reset(seed=0)
    actions = np.zeros((3, 2), np.float32)
    actions[2, 0] = 1.0  # only env 2 moves right
    with pytest.raises(RuntimeError) as err:
        for _ in range(5):
            envs.step(actions)
    msg = str(err.value) + repr(err.value.__cause__)
    assert "env 2 (task 'point-nav'" in msg and "simulated physics blow-up" in msg, msg
    envs.close()


def test_workers_ignore_ctrl_c() -> None:
    """A terminal's Ctrl-C reaches every process of the group; workers leave stopping to the caller."""
    envs = make_vec("point-nav", num_envs=4, workers=2, seed=0)
    try:
        envs.reset(seed=0)
        for proc in envs._procs:
            os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        assert all(p.is_alive() for p in envs._procs)
        envs.step(np.zeros((4, 2), np.float32))
    finally:
        envs.close()


def test_close_leaves_no_child_processes() -> None:
    before = _children()
    envs = make_vec("point-nav", num_envs=4, workers=2, seed=0)
    procs = list(envs._procs)
    assert len(procs) == 2 and all(p.is_alive() for p in procs)
    envs.reset()
    envs.close()
    deadline = time.time() + 10
    while any(p.is_alive() for p in procs) and time.time() < deadline:
        time.sleep(0.05)
    assert all(p.exitcode == 0 for p in procs)  # exited cleanly, and reaped
    assert _children() <= before


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_45_ml45_envs_fit_in_6_gb() -> None:
    envs = make_vec("ML45", num_envs=45, max_episode_steps=20, episodes_per_trial=2, seed=0)
    try:
        envs.reset(seed=0)
        for _ in range(2 * envs.trial_length):  # two whole trials, autoresets included
            envs.step(np.zeros((45, 4)))
        total = _rss_mb(os.getpid()) + sum(_rss_mb(p.pid) for p in envs._procs)
        assert total < 6 * 1024, f"{total:.0f} MB resident for 45 ML45 envs"
    finally:
        envs.close()
