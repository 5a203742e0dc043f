"""Training throughput: metarl's RL² PPO vs sb3-contrib's RecurrentPPO on the same env and cores.

Both train on the same trial env (``metarl.envs.make_env``), ``--num-envs``
copies in one process, for about ``--steps`` env steps; each side reports env
steps per second of wall time for the whole ``learn``/``train`` call
(collection + updates). sb3 runs with its default settings (MlpLstmPolicy,
n_steps 128, 4 epochs) unless overridden; metarl with the given cell.

    python bench/sb3.py                         # ML1/reach-v3, 1 env, CPU
    python bench/sb3.py --num-envs 8 --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from metarl.config import load_config
from metarl.envs import make_env
from metarl.train import train


def sb3_sps(a: argparse.Namespace) -> float:
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    def factory(i: int):
        return lambda: make_env(a.benchmark, episodes_per_trial=a.episodes_per_trial, max_episode_steps=a.max_episode_steps,
                                env_index=i, num_envs=a.num_envs, seed=i)

    venv = DummyVecEnv([factory(i) for i in range(a.num_envs)])
    device = "cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device)
    model = RecurrentPPO("MlpLstmPolicy", venv, device=device, seed=0, verbose=0)
    model.learn(total_timesteps=min(a.steps, 512))  # warm-up (imports, first allocations)
    t0 = time.perf_counter()
    model.learn(total_timesteps=a.steps, reset_num_timesteps=True)
    sps = a.steps / (time.perf_counter() - t0)
    venv.close()
    return sps


def metarl_sps(a: argparse.Namespace) -> float:
    trial = a.episodes_per_trial * a.max_episode_steps
    cfg = load_config(None, [
        f"env.benchmark={a.benchmark}", f"env.num_envs={a.num_envs}", "env.workers=0",
        f"env.episodes_per_trial={a.episodes_per_trial}", f"env.max_episode_steps={a.max_episode_steps}",
        f"agent.cell={a.cell}", f"ppo.bptt_len={a.max_episode_steps}", f"device={a.device}",
        "eval_interval=0", "env.eval_num_envs=1", "progress=false", "tensorboard=false",
        f"total_steps={max(a.steps, trial * a.num_envs)}",
    ])
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result = train(cfg, d)
        # Subtract nothing: setup and the final evaluation count against metarl, so this is conservative.
        return result.env_steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="ML1/reach-v3")
    p.add_argument("--num-envs", type=int, default=1)
    p.add_argument("--episodes-per-trial", type=int, default=2)
    p.add_argument("--max-episode-steps", type=int, default=500)
    p.add_argument("--steps", type=int, default=4000, help="env steps each side trains for")
    p.add_argument("--cell", default="forget-memory")
    p.add_argument("--device", default="auto")
    a = p.parse_args()
    ours = metarl_sps(a)
    theirs = sb3_sps(a)
    print(f"{a.benchmark}  {a.num_envs} env(s)  {torch.get_num_threads()} torch threads")
    print(f"sb3-contrib RecurrentPPO (defaults)  {theirs:8.0f} env steps/s")
    print(f"metarl RL² PPO ({a.cell})      {ours:8.0f} env steps/s   ({ours / theirs:.1f}x)")


if __name__ == "__main__":
    main()
