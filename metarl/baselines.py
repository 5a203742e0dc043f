"""SB3 baselines through ``metarl train``: SB3's PPO and sb3-contrib's RecurrentPPO on our trial envs.

Only glue; SB3's algorithms, policies and VecEnv adapters do the work
(``agent.kind: sb3-ppo | sb3-recurrent-ppo``, registry :mod:`metarl.kinds`):

- :class:`TrialAsEpisode`: SB3 resets a recurrent policy's state at every
  episode start, while a trial env ends a gymnasium episode at every attempt.
  So one trial is one SB3 episode; the attempts inside it are continued
  behind SB3's back. Observations (flags included), rewards and tasks are the
  trial env's, in a ``DummyVecEnv`` (``SubprocVecEnv`` with ``env.workers`` > 0).
- One update = one whole trial per env (``n_steps`` = trial length), as in
  ours; :func:`build_model` maps the ``ppo.*``/``agent.*`` keys onto SB3's
  arguments and ``normalize.*`` onto ``VecNormalize``.
- :class:`_Loop`, an SB3 callback, writes ``metrics.csv`` rows with metarl's
  columns, runs the held-out evaluation every ``eval_interval`` updates,
  drives the progress bar, stops on Ctrl-C and writes
  ``checkpoints/{last,best,step_<n>}.zip`` (and ``<name>.vecnormalize.pkl``).
- :class:`SB3Agent`: a trained model behind :class:`metarl.agent.Agent`'s
  interface, so ``metarl evaluate``, ``record`` and ``plot`` take SB3 runs.
"""

from __future__ import annotations

import math
import os
import pickle
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor, VecNormalize

from metarl.checkpoint import CHECKPOINT_DIR
from metarl.config import TrainConfig, config_from_dict, save_config
from metarl.envs import TRIAL_START, make_env
from metarl.interrupt import StopFlag
from metarl.kinds import get_kind
from metarl.logger import MetricsLogger, Progress
from metarl.rollout import derive_seed, make_envs
from metarl.train import EVAL_STREAM, TrainResult, metric_columns, resolve_device
from metarl.trials import AttemptStats, attempt_stats

#: agent kind -> (SB3 algorithm class, policy name)
SB3_ALGOS: dict[str, tuple[type, str]] = {
    "sb3-ppo": (PPO, "MlpPolicy"),
    "sb3-recurrent-ppo": (RecurrentPPO, "MlpLstmPolicy"),
}
NORM_SUFFIX = ".vecnormalize.pkl"
# SB3 logger key -> metarl metrics.csv column (SB3 logs the entropy *loss*, i.e. minus the entropy)
_LOSS_COLUMNS = {
    "train/policy_gradient_loss": "losses/policy_loss",
    "train/value_loss": "losses/value_loss",
    "train/approx_kl": "losses/approx_kl",
    "train/clip_fraction": "losses/clipfrac",
    "train/explained_variance": "losses/explained_variance",
    "train/learning_rate": "losses/lr",
}


def algo_class(kind: str) -> tuple[type, str]:
    """(SB3 algorithm class, policy name) of an SB3 agent kind; one-line ValueError otherwise."""
    get_kind(kind)
    if kind not in SB3_ALGOS:
        raise ValueError(f"agent kind '{kind}' is not an SB3 baseline (SB3 kinds: {', '.join(SB3_ALGOS)})")
    return SB3_ALGOS[kind]


class TrialAsEpisode(gym.Wrapper):
    """One RL² trial = one gymnasium episode (SB3 resets memory at every episode).

    Attempt ends inside the trial are hidden: the wrapper calls ``reset()`` and
    returns the next attempt's first observation. The trial's last step ends the
    episode: ``terminated`` with ``terminal=True`` (``ppo.trial_end: terminal``),
    else truncated (SB3 then bootstraps the value). Its info carries ``is_success``
    (the last attempt succeeded), ``attempt_success`` and ``attempt_return`` (one
    entry per attempt, in order).
    """

    def __init__(self, env: gym.Env, terminal: bool = False) -> None:
        super().__init__(env)
        self.terminal = terminal
        self.trial_length = env.trial_length
        self.episodes_per_trial = env.episodes_per_trial
        self._attempt_success: list[bool] = []
        self._attempt_return: list[float] = []

    def reset(self, **kwargs: Any):
        self._attempt_success, self._attempt_return = [], []
        obs, info = self.env.reset(**kwargs)
        if obs[TRIAL_START] < 0.5:  # not a trial start: finish the trial that was running
            obs, info = self.env.reset(options={"new_trial": True})
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self._attempt_success.append(bool(info["episode_success"]))
            self._attempt_return.append(float(info["episode_return"]))
            if info["trial_end"] or terminated:
                info = {**info, "is_success": self._attempt_success[-1],
                        "attempt_success": list(self._attempt_success), "attempt_return": list(self._attempt_return)}
                return obs, reward, self.terminal or terminated, not (self.terminal or terminated), info
            obs, _ = self.env.reset()  # next attempt, same task, memory kept
        return obs, reward, False, False, info


def make_sb3_vec_env(cfg: TrainConfig, split: str = "train", num_envs: int | None = None, seed: int | None = None):
    """An SB3 VecEnv of trial envs as ``cfg.env`` describes them, each trial one SB3 episode."""
    e, n = cfg.env, num_envs or cfg.env.num_envs
    seed = cfg.seed if seed is None else seed
    terminal = cfg.ppo.trial_end == "terminal"

    def factory(i: int):
        def make() -> gym.Env:
            env = make_env(e.benchmark, split=split, episodes_per_trial=e.episodes_per_trial,
                           max_episode_steps=e.max_episode_steps, reward_scale=e.reward_scale, clock=e.clock,
                           task_switches=e.task_switches, switch_class=e.switch_class,
                           seed=seed + i, env_index=i, num_envs=n)
            return TrialAsEpisode(env, terminal=terminal)

        return make

    vec_cls = SubprocVecEnv if (e.workers or 0) > 0 else DummyVecEnv
    return VecMonitor(vec_cls([factory(i) for i in range(n)]), info_keywords=("is_success",))


def build_model(cfg: TrainConfig, venv) -> Any:
    """The SB3 model ``cfg`` describes on ``venv``: one trial per env per update, metarl's PPO settings.

    Networks: PPO's MlpPolicy gets ``encoder_sizes + [hidden_size]`` tanh layers;
    RecurrentPPO's MlpLstmPolicy an LSTM of ``hidden_size`` on the observation,
    then ``encoder_sizes`` tanh layers (SB3 puts its MLP after the LSTM).
    """
    cls, policy = algo_class(cfg.agent.kind)
    trial_length = int(venv.get_attr("trial_length")[0])
    p = cfg.ppo
    lr = p.lr
    schedule = (lambda remaining: lr * remaining) if p.lr_schedule == "linear" else lr  # remaining: 1 -> 0
    policy_kwargs: dict[str, Any] = {"activation_fn": torch.nn.Tanh, "log_std_init": cfg.agent.init_log_std}
    if cls is RecurrentPPO:
        policy_kwargs.update(lstm_hidden_size=cfg.agent.hidden_size, net_arch=list(cfg.agent.encoder_sizes))
    else:
        policy_kwargs.update(net_arch=list(cfg.agent.encoder_sizes) + [cfg.agent.hidden_size])
    return cls(
        policy, venv, learning_rate=schedule, n_steps=trial_length,
        batch_size=max(1, trial_length * venv.num_envs // p.num_minibatches), n_epochs=p.epochs,
        gamma=p.gamma, gae_lambda=p.gae_lambda, clip_range=p.clip_coef,
        clip_range_vf=p.clip_coef if p.clip_vloss else None, normalize_advantage=p.norm_adv,
        ent_coef=p.ent_coef, vf_coef=p.vf_coef, max_grad_norm=p.max_grad_norm, target_kl=p.target_kl,
        policy_kwargs=policy_kwargs, seed=cfg.seed, device=str(resolve_device(cfg.device)), verbose=0,
    )


class SB3Agent:
    """A trained SB3 model as ``evaluate``/``record``/``plot`` see an agent (:class:`metarl.agent.Agent`).

    Resets the LSTM where the observation's trial-start flag is set; normalises
    observations with the run's VecNormalize statistics. No memory diagnostics.
    """

    def __init__(self, model: Any, norm: VecNormalize | None, config: TrainConfig, checkpoint_text: str = "") -> None:
        self.model, self.norm, self.config = model, norm, config
        self.recurrent = isinstance(model, RecurrentPPO)
        self.obs_dim = int(model.observation_space.shape[0])
        self.action_dim = int(model.action_space.shape[0])
        self.device = model.device
        self.checkpoint_text = checkpoint_text

    def initial_state(self, batch_size: int) -> Any:
        return None  # RecurrentPPO starts from zeros; PPO has no state

    def act(self, obs: np.ndarray, state: Any, deterministic: bool = True, diagnostics: bool = False):
        obs = np.asarray(obs, dtype=np.float32)  # (B, D)
        starts = obs[:, TRIAL_START] > 0.5
        x = self.norm.normalize_obs(obs) if self.norm is not None and self.norm.norm_obs else obs
        if self.recurrent:
            action, state = self.model.predict(x, state=state, episode_start=starts, deterministic=deterministic)
        else:
            action, _ = self.model.predict(x, deterministic=deterministic)
        return (action, state, {}) if diagnostics else (action, state)


class _Loop(BaseCallback):
    """metarl's per-update bookkeeping inside ``model.learn``: metrics row, held-out eval, checkpoints,
    progress bar, Ctrl-C. An update's row is written once SB3 has trained on it (at the next rollout start)."""

    def __init__(self, model: Any, cfg: TrainConfig, run_dir: Path, norm: VecNormalize | None, spu: int,
                 num_updates: int, k: int, logger: MetricsLogger, progress: Progress, stop: StopFlag) -> None:
        super().__init__()
        self.model = model  # SB3 sets it again in learn(); saving before learn needs it now
        self.cfg, self.run_dir, self.norm, self.spu, self.num_updates, self.k = cfg, run_dir, norm, spu, num_updates, k
        self.metrics_log, self.progress, self.stop = logger, progress, stop
        self.update, self.best, self.last_eval, self.interrupted = 0, (-math.inf, -math.inf), {}, False
        self.started, self.t_start, self.t_collect, self.stats = time.time(), None, 1.0, AttemptStats(k)
        self.eval_envs = None

    def _on_rollout_start(self) -> None:
        if self.t_start is not None:
            self._finish_update()
        self.t_start, self.stats = time.time(), AttemptStats(self.k)

    def _on_step(self) -> bool:
        for i in np.flatnonzero(self.locals["dones"]):
            info = self.locals["infos"][i]
            self.stats.add(np.arange(len(info["attempt_success"])), np.asarray(info["attempt_success"]),
                           np.asarray(info["attempt_return"]))
        if self.stop():
            self.interrupted = True
            return False
        return True

    def _on_rollout_end(self) -> None:
        self.t_collect = time.time() - self.t_start

    def _on_training_end(self) -> None:
        if self.t_start is not None and not self.interrupted:
            self._finish_update()

    def _finish_update(self) -> None:
        self.update += 1
        env_steps = self.update * self.spu
        metrics = self.stats.metrics("charts")
        metrics["charts/sps"] = self.spu / (time.time() - self.t_start)
        metrics["charts/collect_sps"] = self.spu / self.t_collect
        logged = self.model.logger.name_to_value
        metrics.update({col: float(logged[key]) for key, col in _LOSS_COLUMNS.items() if key in logged})
        if "train/entropy_loss" in logged:
            metrics["losses/entropy"] = -float(logged["train/entropy_loss"])
        cfg = self.cfg
        names = ["last"] if self.update % cfg.checkpoint_interval == 0 or self.update == self.num_updates else []
        if cfg.save_interval and self.update % cfg.save_interval == 0:
            names.append(f"step_{env_steps}")
        if (cfg.eval_interval and self.update % cfg.eval_interval == 0) or self.update == self.num_updates:
            self.last_eval = self.evaluate()
            metrics.update(self.last_eval)
            score = (self.last_eval.get("eval/success", 0.0), self.last_eval.get("eval/return", 0.0))
            if score > self.best:
                self.best = score
                names.append("best")
        self.metrics_log.log(env_steps, self.update, metrics, wall_time=time.time() - self.started)
        self.progress.update(self.spu, train_success=metrics.get("charts/success"),
                             held_out_success=self.last_eval.get("eval/success"))
        for name in names:
            self.save(name)

    def evaluate(self) -> dict[str, float]:
        """The held-out evaluation training runs: eval_num_envs x eval_trials trials, deterministic."""
        if self.eval_envs is None:
            self.eval_envs = make_envs(self.cfg.env, "test", self.cfg.env.eval_num_envs or self.cfg.env.num_envs)
        agent = SB3Agent(self.model, self.norm, self.cfg)
        seed = derive_seed(self.cfg.seed, EVAL_STREAM, self.update)
        return attempt_stats(agent, self.eval_envs, self.cfg.env.eval_trials, seed).metrics("eval")

    def save(self, name: str) -> None:
        """``checkpoints/<name>.zip`` (and the VecNormalize statistics), each written then renamed."""
        folder = self.run_dir / CHECKPOINT_DIR
        tmp = folder / f".{name}.tmp.zip"
        self.model.save(tmp)
        os.replace(tmp, folder / f"{name}.zip")
        if self.norm is not None:
            tmp = folder / f".{name}.tmp.pkl"
            self.norm.save(tmp)
            os.replace(tmp, folder / f"{name}{NORM_SUFFIX}")

    def close(self) -> None:
        if self.eval_envs is not None:
            self.eval_envs.close()


def train_sb3(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train an SB3 baseline into ``run_dir`` (the layout of :func:`metarl.train.train`)."""
    from metarl.envs.registry import get_benchmark

    if resume:
        raise ValueError(f"--resume is not supported for agent.kind={cfg.agent.kind}: start a new run")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(f"agent.kind={cfg.agent.kind} trains in one process: run it without torchrun")
    algo_class(cfg.agent.kind)
    get_benchmark(cfg.env.benchmark)
    run_dir = Path(run_dir)
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    venv = make_sb3_vec_env(cfg)
    k, trial_length = int(venv.get_attr("episodes_per_trial")[0]), int(venv.get_attr("trial_length")[0])
    save_config(cfg, run_dir / "config.yaml", episodes_per_trial=k)
    norm = None
    if cfg.normalize.obs or cfg.normalize.reward:
        venv = norm = VecNormalize(venv, norm_obs=cfg.normalize.obs, norm_reward=cfg.normalize.reward,
                                   clip_obs=cfg.normalize.clip, clip_reward=cfg.normalize.clip, gamma=cfg.ppo.gamma)
    model = build_model(cfg, venv)
    spu = trial_length * venv.num_envs
    num_updates = max(1, math.ceil(cfg.total_steps / spu))
    planned = min(num_updates, cfg.max_updates) if cfg.max_updates else num_updates
    logger = MetricsLogger(run_dir, columns=metric_columns(k), tensorboard=cfg.tensorboard)
    progress = Progress(num_updates * spu, enabled=cfg.progress)
    stop = StopFlag()
    loop = _Loop(model, cfg, run_dir, norm, spu, num_updates, k, logger, progress, stop)
    stop.install()
    try:
        loop.save("last")  # a loadable checkpoint exists from the start
        model.learn(total_timesteps=planned * spu, callback=loop, log_interval=None)
        loop.save("last")
    finally:
        stop.uninstall()
        progress.close()
        logger.close()
        loop.close()
        venv.close()
    if loop.interrupted:
        print(f"interrupted: checkpoint at update {loop.update} ({loop.update * spu} env steps)", flush=True)
    return TrainResult(run_dir, loop.update, loop.update * spu, loop.interrupted, loop.last_eval)


def is_sb3_source(source: str | Path) -> bool:
    """Whether a run directory or checkpoint file holds an SB3 baseline (``checkpoints/last.zip``)."""
    p = Path(source)
    return p.suffix == ".zip" or (p.is_dir() and (p / CHECKPOINT_DIR / "last.zip").is_file())


def load_sb3_agent(source: str | Path, device: str | torch.device = "cpu") -> SB3Agent:
    """The :class:`SB3Agent` of an SB3 run directory (``checkpoints/last.zip``) or one of its checkpoints."""
    p = Path(source)
    if not p.exists():
        raise FileNotFoundError(f"no such run directory or checkpoint: {p}")
    path = p / CHECKPOINT_DIR / "last.zip" if p.is_dir() else p
    run_dir = path.parent.parent
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{path} is not inside a metarl run directory (no {run_dir / 'config.yaml'})")
    cfg = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    cls, _ = algo_class(cfg.agent.kind)
    model = cls.load(path, device=device)
    norm = None
    norm_path = path.with_name(path.stem + NORM_SUFFIX)
    if norm_path.is_file():
        with norm_path.open("rb") as f:  # SB3's own format (VecNormalize.save pickles itself)
            norm = pickle.load(f)
        norm.training, norm.norm_reward = False, False
    spu = model.n_steps * model.n_envs
    text = f"{path.resolve()} ({cfg.agent.kind}, update {model.num_timesteps // spu}, {model.num_timesteps:,} env steps)"
    return SB3Agent(model, norm, cfg, checkpoint_text=text)
