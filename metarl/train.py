"""RL² training with recurrent PPO: the whole loop, top to bottom.

One update = every env plays one whole trial (reset with a seed derived from
config seed, rank and update index, then exactly ``trial_length`` steps),
then PPO epochs over (chunk, env) sequences replayed from stored chunk-start
states. Counters, RNGs, normalisers and the optimizer go into the checkpoint,
so ``--resume`` continues exactly where the run stopped.

Trial end: by default the last step of a trial is terminal (the RL² episode
ends; the next trial is a new task with fresh memory). ``ppo.trial_end:
bootstrap`` treats it as a time-limit truncation instead and bootstraps with
the value of the final observation. Attempt ends inside a trial are never
done: returns and advantages flow across attempts, which is what credits
exploration in early attempts.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metarl import distributed as D
from metarl.agents import make_policy
from metarl.buffer import RolloutBuffer, chunk_length, compute_gae
from metarl.checkpoint import CHECKPOINT_DIR, capture_rng, load_checkpoint, restore_rng, save_checkpoint, task_dim
from metarl.config import TrainConfig, config_from_dict, config_to_dict, merge, parse_overrides, save_config
from metarl.envs.registry import get_benchmark, task_vectors
from metarl.graphstep import PolicyStepper
from metarl.interrupt import StopFlag, sigint_deferred
from metarl.logger import MetricsLogger, Progress
from metarl.normalize import ObsNormalizer, ReturnScaler, obs_mask
from metarl.ppo import learning_rate, ppo_update
from metarl.rollout import collect, derive_seed, evaluate_trials, make_envs

EVAL_STREAM = 1_000_003  # keeps eval seeds apart from training seeds


@dataclass
class TrainResult:
    run_dir: Path
    updates: int
    env_steps: int
    interrupted: bool
    last_eval: dict[str, float]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available, else cpu; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' requested but CUDA is not available; use device=auto or cpu")
    return device


def _make_envs_deferring_sigint(env_cfg, split: str, num_envs: int, **kwargs):
    """Build envs with SIGINT blocked: a Ctrl-C meanwhile is delivered once they exist, not lost.

    Env workers ignore SIGINT themselves (the trainer decides when to stop);
    blocking here only keeps a Ctrl-C from interrupting the build halfway.
    """
    with sigint_deferred():
        return make_envs(env_cfg, split, num_envs, **kwargs)


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train (or resume) a run in ``run_dir``; returns counters and the last evaluation."""
    run_dir = Path(run_dir)
    get_benchmark(cfg.env.benchmark)  # unknown names fail here, in one line, before any output
    device, dist = _start_process(cfg)
    ckpt = load_checkpoint(run_dir, map_location="cpu") if resume else None
    generator = _seed_everything(cfg, dist)
    # collect resets every env at each trial start: no new trial at the end of the last one
    envs = _make_envs_deferring_sigint(cfg.env, "train", cfg.env.num_envs, trial_autoreset=False)
    if dist.is_main:
        (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml", episodes_per_trial=envs.episodes_per_trial)
    run = _Run(cfg, run_dir, envs, device, dist, generator, ckpt)
    logger = MetricsLogger(run_dir, columns=metric_columns(envs.episodes_per_trial), tensorboard=cfg.tensorboard,
                           resume_update=run.update if resume else None, enabled=dist.is_main)
    if not resume:
        logger.log_text("config", "```yaml\n" + (run_dir / "config.yaml").read_text() + "\n```")
    progress = Progress(run.num_updates * run.steps_per_update, initial=run.env_steps,
                        enabled=cfg.progress and dist.is_main)
    stop = StopFlag()
    stop.install()
    last_eval: dict[str, float] = {}
    interrupted = False
    try:
        if ckpt is None:
            run.write_checkpoints(["last.pt"])  # a good checkpoint exists from the start
        while run.update < run.num_updates:
            # single process: Ctrl-C aborts collection; data parallel: ranks stop together below
            metrics = run.update_once(None if dist.enabled else stop)
            if metrics is None:
                interrupted = True
                break
            names = run.checkpoints_due()
            if dist.is_main and run.evaluation_due():
                last_eval = run.evaluate()
                metrics.update(last_eval)
                if run.is_best(last_eval):
                    names.append("best.pt")
            logger.log(run.env_steps, run.update, metrics, wall_time=run.wall_time())
            progress.update(run.steps_per_update, train_success=metrics.get("charts/success"),
                            held_out_success=last_eval.get("eval/success"))
            run.write_checkpoints(names)
            if cfg.max_updates and run.update >= cfg.max_updates and run.update < run.num_updates:
                if "last.pt" not in names:
                    run.write_checkpoints(["last.pt"])
                break
            if (D.all_reduce_mean(float(stop())) > 0) if dist.enabled else stop():
                interrupted = True
                if "last.pt" not in names:
                    run.write_checkpoints(["last.pt"])
                break
    finally:
        stop.uninstall()
        progress.close()
        logger.close()
        run.close()
    if interrupted and dist.is_main:
        print(f"interrupted: checkpoint at update {run.update} ({run.env_steps} env steps); "
              f"resume with --resume {run_dir}", flush=True)
    D.cleanup()
    return TrainResult(run_dir, run.update, run.env_steps, interrupted, last_eval)


def _start_process(cfg: TrainConfig) -> tuple[torch.device, D.DistInfo]:
    """This process's device, its place among the ranks (torchrun) and torch's settings."""
    device = resolve_device(cfg.device)
    dist = D.init_distributed(device)
    device = D.rank_device(device, dist)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    return device, dist


def _seed_everything(cfg: TrainConfig, dist: D.DistInfo) -> torch.Generator:
    """Seed torch, numpy and random per rank; returns the minibatch generator."""
    torch.manual_seed(derive_seed(cfg.seed, dist.rank))
    np.random.seed(derive_seed(cfg.seed, dist.rank, 1) % 2**32)
    random.seed(derive_seed(cfg.seed, dist.rank, 2))
    return torch.Generator().manual_seed(derive_seed(cfg.seed, dist.rank, 3))


class _Run:
    """A training run's learner state (policy, optimizer, normalisers, counters) and its steps:
    one update, the held-out evaluation, checkpoints. ``train`` drives it."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, envs, device: torch.device, dist: D.DistInfo,
                 generator: torch.Generator, ckpt: dict | None) -> None:
        self.cfg, self.run_dir, self.envs, self.device, self.dist = cfg, run_dir, envs, device, dist
        self.generator = generator
        self.update_threads = torch.get_num_threads()
        self.eval_envs = None
        self.obs_dim = envs.single_observation_space.shape[0]
        self.action_dim = envs.single_action_space.shape[0]
        T, N = envs.trial_length, envs.num_envs
        self.steps_per_update = T * N * dist.world_size
        self.num_updates = max(1, math.ceil(cfg.total_steps / self.steps_per_update))

        self.policy = make_policy(cfg.agent, self.obs_dim, self.action_dim, task_dim=task_dim(cfg)).to(device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.ppo.lr, eps=1e-5)
        mask = obs_mask(envs.obs_layout, cfg.normalize.obs, cfg.normalize.reward_input)
        self.obs_norm = ObsNormalizer(mask, clip=cfg.normalize.clip) if mask.any() else None
        self.return_scaler = ReturnScaler(cfg.ppo.gamma) if cfg.normalize.reward else None
        self.buffer = RolloutBuffer(T, N, self.obs_dim, self.action_dim, chunk_length(T, cfg.ppo.bptt_len), device)
        self.task_table = _task_targets(cfg.env.benchmark, cfg.ppo.task_dims) if cfg.ppo.task_coef > 0 else None  # (C, G, F)
        self.stepper = PolicyStepper(self.policy, device) if cfg.cuda_graph else None
        if self.stepper is not None and not self.stepper.use_graph and dist.is_main:
            print(f"note: cuda_graph has no effect here ({self.stepper.fallback_reason or 'device ' + device.type}): "
                  "policy steps run eagerly", flush=True)
        self.update, self.env_steps, self.best = 0, 0, (-math.inf, -math.inf)
        if ckpt is not None:
            self._restore(ckpt)
        # DDP under torchrun (copies rank 0's parameters, so after the restore); checkpoints save `policy`
        self.learner = D.ddp_learner(self.policy, device)
        # metrics' wall_time counts training seconds over every process of the run, resumes included
        self.start_time = time.time() - (float(ckpt["counters"].get("wall_time", 0.0)) if ckpt is not None else 0.0)

    def _restore(self, ckpt: dict) -> None:
        """Parameters, optimizer, normalisers, this rank's RNGs and the counters of a checkpoint."""
        self.policy.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(ckpt["obs_normalizer"])
        if self.return_scaler is not None:
            self.return_scaler.load_state_dict(ckpt["return_scaler"])
        rngs = ckpt["rng"]
        if len(rngs) == self.dist.world_size:
            restore_rng(rngs[self.dist.rank], self.generator)
        elif self.dist.is_main:
            print(f"note: checkpoint has {len(rngs)} rank(s), this run {self.dist.world_size}: "
                  "RNGs start fresh, so the resume is not bit-exact", flush=True)
        c = ckpt["counters"]
        self.update, self.env_steps, self.best = c["update"], c["env_steps"], (c["best_success"], c["best_return"])

    def wall_time(self) -> float:
        return time.time() - self.start_time

    # ---------------------------------------------------------------- one update

    def update_once(self, stop: StopFlag | None) -> dict[str, float] | None:
        """Collect one trial per env, update normalisers and policy; the update's metrics, or None
        if ``stop`` turned true during collection (then ``last.pt`` holds the update's start)."""
        cfg, envs, policy, device = self.cfg, self.envs, self.policy, self.device
        T, N = envs.trial_length, envs.num_envs
        t0 = time.time()
        lr = learning_rate(cfg.ppo, self.env_steps, self.num_updates * self.steps_per_update)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        # 1. collect one trial per env with frozen normalisers (an aborted collection changes
        # nothing but the RNGs, so the update's starting state is saved)
        rng_at_start = capture_rng(self.generator)
        if device.type == "cpu":
            torch.set_num_threads(1)  # small batched forwards; leave the cores to the env workers
        rollout = collect(
            envs, policy, self.buffer, self.obs_norm, derive_seed(cfg.seed, self.dist.rank, self.update),
            self.env_steps, stop, groups=cfg.env.collect_groups, stepper=self.stepper,
            obs_noise=cfg.normalize.obs_noise, noise_dims=envs.obs_layout.env,
        )
        torch.set_num_threads(self.update_threads)
        if rollout is None:
            save_checkpoint(self.checkpoint_state([rng_at_start]), self.run_dir / CHECKPOINT_DIR / "last.pt")
            return None
        t_collect = time.time() - t0

        # 2. bootstrap value at the trial end (0 if the trial end is terminal)
        last_value = torch.zeros(N, device=device)
        if cfg.ppo.trial_end == "bootstrap":
            final = self.obs_norm(rollout.final_obs) if self.obs_norm is not None else rollout.final_obs
            with torch.no_grad():
                last_value = policy.get_value(
                    torch.from_numpy(final).to(device), rollout.final_state, torch.zeros(N, dtype=torch.bool, device=device)
                )

        # 3. update normalisers from this rollout (all ranks' data)
        buffer = self.buffer
        if self.obs_norm is not None:
            obs = rollout.raw_obs.reshape(T * N, -1)  # (T, N, D) -> (T*N, D)
            self.obs_norm.update_from_moments(*D.merge_moments(obs[:, self.obs_norm.mask]))
        rewards = buffer.rewards
        if self.return_scaler is not None:
            returns = self.return_scaler.discounted_returns(buffer.rewards).reshape(-1, 1)  # (T, N) -> (T*N, 1)
            mean, var, count = D.merge_moments(returns.numpy())
            self.return_scaler.rms.update_from_moments(mean[0], var[0], count)
            rewards = self.return_scaler.scale(buffer.rewards)  # the critic (and last_value) live in scaled units

        # 4. advantages and PPO epochs (and the trials' task vectors for a task-inference loss)
        if self.task_table is not None:
            if rollout.step_tasks is None:  # one task per trial
                buffer.task_targets = self.task_table[rollout.tasks[:, 0], rollout.tasks[:, 1]].to(device)  # (N, F)
            else:  # the task switches mid-trial: each step's own task
                st = torch.from_numpy(rollout.step_tasks)  # (T, N, 2)
                buffer.task_targets = self.task_table[st[..., 0], st[..., 1]].to(device)  # (T, N, F)
        adv, ret = compute_gae(rewards, buffer.values, last_value, cfg.ppo.gamma, cfg.ppo.gae_lambda)
        buffer.advantages.copy_(adv)
        buffer.returns.copy_(ret)
        losses = ppo_update(
            policy, self.optimizer, buffer, cfg.ppo, self.generator,
            learner=self.learner,
            sync_scalar=D.all_reduce_mean if self.dist.enabled else None,
            step=self.env_steps,
        )
        self.update += 1
        self.env_steps += self.steps_per_update
        dt = time.time() - t0

        # 5. the update's metrics (training trials of every rank)
        metrics = D.sum_attempt_stats(rollout.stats, self.dist).metrics("charts")
        metrics["charts/sps"] = self.steps_per_update / dt
        metrics["charts/collect_sps"] = self.steps_per_update / t_collect
        metrics["losses/lr"] = lr
        metrics.update(losses)
        return metrics

    # ---------------------------------------------------------------- evaluation and checkpoints

    def evaluation_due(self) -> bool:
        every = self.cfg.eval_interval
        return bool(every and self.update % every == 0) or self.update == self.num_updates

    def evaluate(self) -> dict[str, float]:
        """The held-out evaluation: ``eval_trials`` deterministic trials per eval env, ``eval/`` metrics."""
        cfg = self.cfg
        if self.eval_envs is None:
            self.eval_envs = _make_envs_deferring_sigint(cfg.env, "test", cfg.env.eval_num_envs or self.envs.num_envs)
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        stats = evaluate_trials(self.eval_envs, self.policy, self.obs_norm, cfg.env.eval_trials,
                                derive_seed(cfg.seed, EVAL_STREAM, self.update), self.device)
        torch.set_num_threads(self.update_threads)
        return stats.metrics("eval")

    def is_best(self, evaluation: dict[str, float]) -> bool:
        """Whether ``evaluation`` beats the best so far (held-out success, then return); keeps it if so."""
        score = (evaluation.get("eval/success", 0.0), evaluation.get("eval/return", 0.0))
        if score > self.best:
            self.best = score
            return True
        return False

    def checkpoints_due(self) -> list[str]:
        """Checkpoint files this update writes: ``last.pt`` every ``checkpoint_interval``, kept steps."""
        cfg = self.cfg
        names = ["last.pt"] if self.update % cfg.checkpoint_interval == 0 or self.update == self.num_updates else []
        if cfg.save_interval and self.update % cfg.save_interval == 0:
            names.append(f"step_{self.env_steps}.pt")
        return names

    def checkpoint_state(self, rng_per_rank: list) -> dict:
        return {
            "config": config_to_dict(self.cfg),
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "model": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_normalizer": self.obs_norm.state_dict() if self.obs_norm is not None else None,
            "return_scaler": self.return_scaler.state_dict() if self.return_scaler is not None else None,
            "rng": rng_per_rank,
            "counters": {
                "update": self.update,
                "env_steps": self.env_steps,
                "best_success": self.best[0],
                "best_return": self.best[1],
                "wall_time": self.wall_time(),  # training seconds so far, carried across resumes
            },
            # Tasks need no sampler state: update u resets env i with derive_seed(seed, rank, u) + i.
            "sampler": {"seed": self.cfg.seed, "world_size": self.dist.world_size},
        }

    def write_checkpoints(self, names: list[str]) -> None:
        """Write ``names`` (rank 0) with every rank's RNGs; every rank must call it (collectives)."""
        rng = D.all_gather_objects(capture_rng(self.generator), self.dist)
        diff = D.rank_param_max_diff(self.policy) if self.dist.enabled and names else 0.0
        if self.dist.is_main and names:
            state = self.checkpoint_state(rng)
            state["counters"]["rank_param_max_diff"] = diff
            for name in names:
                save_checkpoint(state, self.run_dir / CHECKPOINT_DIR / name)

    def close(self) -> None:
        self.envs.close()
        if self.eval_envs is not None:
            self.eval_envs.close()


def _task_targets(benchmark: str, dims: list[int] | None = None) -> torch.Tensor:
    """(C, G, F) float32 training task vectors (only ``dims`` of them, if given), standardised per
    dim over the split's tasks (constant dims become 0), so every dim weighs alike in the loss."""
    table = task_vectors(benchmark, "train")  # (C, G, F), NaN rows pad classes with fewer goals
    if dims:
        bad = [d for d in dims if not 0 <= d < table.shape[-1]]
        if bad:
            raise ValueError(f"ppo.task_dims {bad} are outside {benchmark}'s {table.shape[-1]}-dim task vector")
        table = table[..., list(dims)]  # (C, G, len(dims))
    flat = table.reshape(-1, table.shape[-1])
    flat = flat[~np.isnan(flat).any(1)]
    mean, std = flat.mean(0), flat.std(0)
    std[std < 1e-8] = 1.0
    return torch.from_numpy(np.nan_to_num((table - mean) / std)).float()


def metric_columns(k: int) -> list[str]:
    """The metrics.csv columns known up front (more are added if they appear)."""
    cols = ["charts/success", "charts/return"]
    cols += [f"charts/{m}_attempt_{a}" for a in range(1, k + 1) for m in ("success", "return")]
    cols += ["charts/sps", "charts/collect_sps"]
    cols += [f"losses/{m}" for m in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "grad_norm",
                                     "explained_variance", "first_ratio_dev", "epochs", "lr")]
    cols += ["eval/success", "eval/return"]
    cols += [f"eval/{m}_attempt_{a}" for a in range(1, k + 1) for m in ("success", "return")]
    return cols


def resume_config(run_dir: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """The config stored in a run's last checkpoint, with optional ``--set`` overrides."""
    state = load_checkpoint(run_dir)
    return config_from_dict(merge(state["config"], parse_overrides(overrides)))
