"""Seeded tiny runs of every caller that plays trials, summarised as JSON-ready numbers.

``capture()`` plays, on toy benchmarks and tiny seeded policies: the training-time
held-out evaluation (``metarl.rollout.evaluate_trials``, and a two-update training
run that calls it), ``metarl evaluate``'s trials (``evaluate_agent``/``run_trials``,
sampled, deterministic with exploring attempts, task switches), ``metarl plot``'s
memory trace (``trace_memory``) and ``metarl record``'s videos and memory files.
``tests/metarl/data/trials_before.json`` holds what the code before the one trial
runner (``metarl.trials``) gave; ``test_trials.py`` checks today's code against it.

Regenerate (only when a change of behaviour is intended)::

    python tests/metarl/_trial_cases.py tests/metarl/data/trials_before.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _floats(x: Any) -> list:
    return np.asarray(x, dtype=np.float64).tolist()


def _summary(a: np.ndarray) -> dict[str, Any]:
    """Shape, sums and last row of an array: enough to see any change, small enough to store."""
    a = np.asarray(a)
    f = a.astype(np.float64)
    return {"shape": list(a.shape), "dtype": str(a.dtype), "sum": float(f.sum()), "sum_sq": float((f * f).sum()),
            "last": f.reshape(a.shape[0], -1)[-1].tolist() if a.ndim else [float(f)]}


def _policy(cell: str, obs_dim: int, action_dim: int, seed: int):
    from metarl.agents import AgentConfig, make_policy

    torch.manual_seed(seed)
    return make_policy(AgentConfig(cell, 16, encoder_sizes=[16]), obs_dim, action_dim)


def _normalizer(envs, seed: int):
    """An observation normaliser with statistics from random observations (so normalising matters)."""
    from metarl.normalize import ObsNormalizer, obs_mask

    norm = ObsNormalizer(obs_mask(envs.obs_layout, True, True))
    rng = np.random.default_rng(seed)
    norm.update(rng.normal(0.3, 0.7, (64, envs.single_observation_space.shape[0])).astype(np.float32))
    return norm


def _agent(cell: str, seed: int, benchmark: str = "point-nav"):
    from metarl.agent import Agent
    from metarl.envs import make_vec

    envs = make_vec(benchmark, num_envs=1)  # only its sizes and layout
    policy = _policy(cell, envs.single_observation_space.shape[0], envs.single_action_space.shape[0], seed)
    norm = _normalizer(envs, seed)
    envs.close()
    return Agent(policy=policy, normalize_obs=norm)


def held_out_eval() -> dict[str, Any]:
    """``evaluate_trials``: deterministic whole trials on a vector env, several trials per env."""
    from metarl.envs import make_vec
    from metarl.rollout import evaluate_trials

    out = {}
    for name, cell, kw in (("gru", "gru", {"benchmark": "point-nav", "max_episode_steps": 10}),
                           ("forget-memory_clock", "forget-memory", {"benchmark": "point-nav", "max_episode_steps": 10,
                                                                     "clock": True}),
                           ("bandit", "gru", {"benchmark": "bandit"})):
        envs = make_vec(split="test", num_envs=3, episodes_per_trial=2, **kw)
        policy = _policy(cell, envs.single_observation_space.shape[0], envs.single_action_space.shape[0], 11)
        stats = evaluate_trials(envs, policy, _normalizer(envs, 12), trials=2, seed=7, device="cpu")
        envs.close()
        out[name] = {"success": _floats(stats.success), "return": _floats(stats.ret), "count": _floats(stats.count),
                     "training_mode_kept": policy.training}
    return out


def training_run() -> dict[str, Any]:
    """Two updates of a tiny point-nav run with a held-out evaluation after each: metrics and checkpoint."""
    import csv

    from metarl.checkpoint import load_checkpoint
    from metarl.config import load_config
    from metarl.train import train

    overrides = ["env.benchmark=point-nav", "env.num_envs=4", "env.episodes_per_trial=2", "env.max_episode_steps=10",
                 "env.workers=0", "env.eval_num_envs=3", "env.eval_trials=2", "agent.cell=forget-memory",
                 "agent.hidden_size=16", "agent.encoder_sizes=[16]", "ppo.bptt_len=10", "ppo.epochs=1",
                 "eval_interval=1", "total_steps=160", "progress=false", "tensorboard=false", "device=cpu",
                 "torch_threads=1", "seed=3"]
    with tempfile.TemporaryDirectory() as tmp:
        train(load_config(None, overrides), Path(tmp))
        with open(Path(tmp) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        ckpt = load_checkpoint(Path(tmp))
    keep = [c for c in rows[0] if c.startswith(("charts/success", "charts/return", "eval/", "losses/")) and c != "losses/lr"]
    counters = {k: v for k, v in ckpt["counters"].items() if k != "wall_time"}
    return {
        "metrics": [{c: r[c] for c in keep} for r in rows],
        "counters": counters,
        # the env config as given, not all of the config: keys added later must not count
        "config_env": {k: ckpt["config"]["env"][k] for k in ("benchmark", "episodes_per_trial", "max_episode_steps")},
        "model": {k: _summary(v.numpy()) for k, v in ckpt["model"].items()},
        "obs_normalizer_mean": _floats(ckpt["obs_normalizer"]["rms"]["mean"]),
    }


def _records(records) -> list[dict[str, Any]]:
    return [{"task": r.task, "success": list(map(bool, r.success)), "returns": _floats(r.returns), "goal": r.goal,
             "switches": list(r.switches)} for r in records]


def rl2_evaluation() -> dict[str, Any]:
    """``evaluate_agent`` results (the JSON ``metarl evaluate`` writes) and ``run_trials`` records."""
    from metarl.evaluate import EvalSettings, evaluate_agent, resolve_settings, run_trials

    cases = {
        "sampled": dict(trials=5, episodes_per_trial=3, seed=3, num_envs=2, max_episode_steps=10),
        "explore_then_mean": dict(trials=4, episodes_per_trial=3, seed=4, num_envs=3, max_episode_steps=10,
                                  deterministic=True, explore_attempts=1),
        "task_switches": dict(trials=4, episodes_per_trial=3, seed=5, num_envs=2, max_episode_steps=10,
                              task_switches=1),
        "bandit_sampled": dict(benchmark="bandit", trials=6, episodes_per_trial=5, seed=6, num_envs=4),
        "bandit_task_switches": dict(benchmark="bandit", trials=6, episodes_per_trial=5, seed=7, num_envs=3,
                                     task_switches=2, deterministic=True, explore_attempts=2),
    }
    out: dict[str, Any] = {}
    for name, kw in cases.items():
        kw = {"benchmark": "point-nav", **kw}
        agent = _agent("gru", 21, kw["benchmark"])
        out[name] = {"result": json.loads(json.dumps(evaluate_agent(agent, **kw)))}
        s = resolve_settings(agent, EvalSettings(**kw))
        torch.manual_seed(s.seed)
        records, meta = run_trials(agent, s)
        out[name]["records"] = _records(records)
        out[name]["meta"] = meta
    return out


def memory_trace() -> dict[str, Any]:
    """``trace_memory``: one deterministic trial's memory diagnostics; {} for a cell without them."""
    from metarl.plot import trace_memory

    memory = trace_memory(_agent("forget-memory", 31), "point-nav", seed=4, episodes_per_trial=3, max_episode_steps=10)
    out = {k: _summary(v) for k, v in memory.items() if k not in ("successes", "episode_starts", "task")}
    out.update(successes=memory["successes"].tolist(), episode_starts=memory["episode_starts"].tolist(),
               task=str(memory["task"]))
    bandit = trace_memory(_agent("forget-memory", 33, "bandit"), "bandit", seed=5, episodes_per_trial=6)
    return {"forget-memory": out, "gru": trace_memory(_agent("gru", 32), "point-nav", seed=4),
            "bandit_successes": bandit["successes"].tolist(), "bandit_forget": _summary(bandit["forget"])}


def recordings() -> dict[str, Any]:
    """``record`` on point-nav (frames drawn by the toy): per trial its frames and memory file."""
    from PIL import Image

    from metarl.record import RecordSettings, record

    out: dict[str, Any] = {}
    for name, cell, kw in (("forget-memory_sampled", "forget-memory", {"deterministic": False}),
                           ("gru_deterministic_no_diagnostics", "gru", {"deterministic": True, "diagnostics": False})):
        with tempfile.TemporaryDirectory() as tmp:
            s = RecordSettings(task="point-nav", out=Path(tmp) / "v.gif", benchmark="point-nav", every=3, size=64,
                               seed=2, episodes_per_trial=2, max_episode_steps=10, trials=2, progress=False, **kw)
            trials = []
            for path in record(_agent(cell, 41), s):
                gif = Image.open(path)
                means = []
                for i in range(gif.n_frames):
                    gif.seek(i)
                    means.append(float(np.asarray(gif.convert("RGB"), dtype=np.float64).mean()))
                memory = dict(np.load(path.with_suffix(".memory.npz")))
                summary = {k: _summary(v) for k, v in memory.items()
                           if k not in ("successes", "episode_starts", "task", "frames", "fps")}
                summary.update(successes=memory["successes"].tolist(), episode_starts=memory["episode_starts"].tolist(),
                               task=str(memory["task"]), frames=int(memory["frames"]), fps=int(memory["fps"]))
                trials.append({"name": path.name, "size": list(gif.size), "n_frames": gif.n_frames,
                               "frame_means": means, "memory": summary})
        out[name] = trials
    return out


def capture() -> dict[str, Any]:
    """Every case above, on one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {"held_out_eval": held_out_eval(), "training_run": training_run(), "rl2_evaluation": rl2_evaluation(),
                "memory_trace": memory_trace(), "recordings": recordings()}
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(capture(), indent=1, sort_keys=True) + "\n")
