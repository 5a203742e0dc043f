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
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metarl import distributed as D
from metarl.buffer import RolloutBuffer, chunk_length, compute_gae
from metarl.agents import make_policy
from metarl.checkpoint import CHECKPOINT_DIR, capture_rng, load_checkpoint, restore_rng, save_checkpoint, task_dim
from metarl.config import TrainConfig, config_from_dict, config_to_dict, save_config
from metarl.graphstep import PolicyStepper
from metarl.logger import MetricsLogger, Progress
from metarl.normalize import ObsNormalizer, ReturnScaler, obs_mask
from metarl.ppo import learning_rate, ppo_update
from metarl.rollout import AttemptStats, collect, derive_seed, evaluate_trials, make_envs

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


class StopFlag:
    """First Ctrl-C asks the loop to stop at a safe point; a second one interrupts at once."""

    def __init__(self) -> None:
        self.set = False
        self._old = None

    def _handler(self, signum, frame) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def install(self) -> None:
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread
            self._old = None

    def uninstall(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def __call__(self) -> bool:
        return self.set


def _make_envs_deferring_sigint(env_cfg, split: str, num_envs: int, **kwargs):
    """Build envs with SIGINT blocked: a Ctrl-C meanwhile is delivered once they exist, not lost.

    Env workers ignore SIGINT themselves (the trainer decides when to stop);
    blocking here only keeps a Ctrl-C from interrupting the build halfway.
    """
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        return make_envs(env_cfg, split, num_envs, **kwargs)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return make_envs(env_cfg, split, num_envs, **kwargs)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _merge_moments(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, variance and count of x (M, K) over every rank's rows, merged exactly in rank order."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    stats = torch.stack([t.mean(0), t.var(0, unbiased=False)])[None]  # (1, 2, K)
    stats = D.all_gather_cat(stats)  # (W, 2, K)
    n = float(t.shape[0])
    mean, var, count = stats[0, 0], stats[0, 1], torch.tensor(n, dtype=torch.float64)
    for w in range(1, stats.shape[0]):  # Chan et al. merge of equal-size batches
        delta = stats[w, 0] - mean
        total = count + n
        var = (var * count + stats[w, 1] * n + delta**2 * count * n / total) / total
        mean = mean + delta * n / total
        count = total
    return mean, var, count


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train (or resume) a run in ``run_dir``; returns counters and the last evaluation."""
    run_dir = Path(run_dir)
    # ---------------------------------------------------------------- setup
    from metarl.envs.registry import get_benchmark

    get_benchmark(cfg.env.benchmark)  # unknown names fail here, in one line, before any output
    device = resolve_device(cfg.device)
    dist = D.init_distributed(device)
    device = D.rank_device(device, dist)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    update_threads = torch.get_num_threads()
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    ckpt = load_checkpoint(run_dir, map_location="cpu") if resume else None
    if dist.is_main:
        (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")

    torch.manual_seed(derive_seed(cfg.seed, dist.rank))
    np.random.seed(derive_seed(cfg.seed, dist.rank, 1) % 2**32)
    random.seed(derive_seed(cfg.seed, dist.rank, 2))
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, dist.rank, 3))

    # ---------------------------------------------------------------- envs, policy, learner state
    # collect resets every env at each trial start: no new trial at the end of the last one
    envs = _make_envs_deferring_sigint(cfg.env, "train", cfg.env.num_envs, trial_autoreset=False)
    eval_envs = None
    obs_dim = envs.single_observation_space.shape[0]
    action_dim = envs.single_action_space.shape[0]
    T, N, k = envs.trial_length, envs.num_envs, envs.episodes_per_trial
    L = chunk_length(T, cfg.ppo.bptt_len)
    steps_per_update = T * N * dist.world_size
    num_updates = max(1, math.ceil(cfg.total_steps / steps_per_update))

    policy = make_policy(cfg.agent, obs_dim, action_dim, task_dim=task_dim(cfg)).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.ppo.lr, eps=1e-5)
    mask = obs_mask(envs.obs_layout, cfg.normalize.obs, cfg.normalize.reward_input)
    obs_norm = ObsNormalizer(mask, clip=cfg.normalize.clip) if mask.any() else None
    return_scaler = ReturnScaler(cfg.ppo.gamma) if cfg.normalize.reward else None
    buffer = RolloutBuffer(T, N, obs_dim, action_dim, L, device)
    task_table = _task_targets(cfg.env.benchmark, cfg.ppo.task_dims) if cfg.ppo.task_coef > 0 else None  # (C, G, F)
    stepper = PolicyStepper(policy, device) if cfg.cuda_graph else None
    if stepper is not None and not stepper.use_graph and dist.is_main:
        print(f"note: cuda_graph has no effect here ({stepper.fallback_reason or 'device ' + device.type}): "
              "policy steps run eagerly", flush=True)

    update, env_steps, best = 0, 0, (-math.inf, -math.inf)
    if ckpt is not None:
        policy.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if obs_norm is not None:
            obs_norm.load_state_dict(ckpt["obs_normalizer"])
        if return_scaler is not None:
            return_scaler.load_state_dict(ckpt["return_scaler"])
        rngs = ckpt["rng"]
        if len(rngs) == dist.world_size:
            restore_rng(rngs[dist.rank], generator)
        elif dist.is_main:
            print(f"note: checkpoint has {len(rngs)} rank(s), this run {dist.world_size}: "
                  "RNGs start fresh, so the resume is not bit-exact", flush=True)
        c = ckpt["counters"]
        update, env_steps, best = c["update"], c["env_steps"], (c["best_success"], c["best_return"])
    learner = D.ddp_learner(policy, device)  # DDP under torchrun (copies rank 0's parameters); checkpoints save `policy`

    logger = MetricsLogger(
        run_dir,
        columns=metric_columns(k),
        tensorboard=cfg.tensorboard,
        resume_update=update if resume else None,
        enabled=dist.is_main,
    )
    if not resume:
        logger.log_text("config", "```yaml\n" + (run_dir / "config.yaml").read_text() + "\n```")
    progress = Progress(num_updates * steps_per_update, initial=env_steps, enabled=cfg.progress and dist.is_main)
    stop = StopFlag()
    stop.install()

    def checkpoint_state(rng_per_rank: list) -> dict:
        return {
            "config": config_to_dict(cfg),
            "obs_dim": obs_dim,
            "action_dim": action_dim,
            "model": policy.state_dict(),
            "optimizer": optimizer.state_dict(),
            "obs_normalizer": obs_norm.state_dict() if obs_norm is not None else None,
            "return_scaler": return_scaler.state_dict() if return_scaler is not None else None,
            "rng": rng_per_rank,
            "counters": {
                "update": update,
                "env_steps": env_steps,
                "best_success": best[0],
                "best_return": best[1],
                "wall_time": time.time() - start_time,  # training seconds so far, carried across resumes
            },
            # Tasks need no sampler state: update u resets env i with derive_seed(seed, rank, u) + i.
            "sampler": {"seed": cfg.seed, "world_size": dist.world_size},
        }

    def write_checkpoints(names: list[str]) -> None:
        rng = _gather_rng(generator, dist)
        diff = _rank_param_diff(policy) if dist.enabled and names else 0.0
        if dist.is_main and names:
            state = checkpoint_state(rng)
            state["counters"]["rank_param_max_diff"] = diff
            for name in names:
                save_checkpoint(state, run_dir / CHECKPOINT_DIR / name)

    def run_eval() -> dict[str, float]:
        nonlocal eval_envs
        if eval_envs is None:
            eval_envs = _make_envs_deferring_sigint(cfg.env, "test", cfg.env.eval_num_envs or N)
        if device.type == "cpu":
            torch.set_num_threads(1)
        stats = evaluate_trials(
            eval_envs, policy, obs_norm, cfg.env.eval_trials, derive_seed(cfg.seed, EVAL_STREAM, update), device
        )
        torch.set_num_threads(update_threads)
        return stats.metrics("eval")

    # ---------------------------------------------------------------- the loop
    last_eval: dict[str, float] = {}
    interrupted = False
    # metrics' wall_time counts training seconds over every process of the run, resumes included
    start_time = time.time() - (float(ckpt["counters"].get("wall_time", 0.0)) if ckpt is not None else 0.0)
    try:
        if ckpt is None:
            write_checkpoints(["last.pt"])  # a good checkpoint exists from the start
        while update < num_updates:
            t0 = time.time()
            lr = learning_rate(cfg.ppo, env_steps, num_updates * steps_per_update)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # 1. collect one trial per env with frozen normalisers
            # (single process: Ctrl-C aborts collection, which changes nothing but the RNGs,
            # so the update's starting state is saved; data parallel: ranks stop together below)
            rng_at_start = capture_rng(generator)
            if device.type == "cpu":
                torch.set_num_threads(1)  # small batched forwards; leave the cores to the env workers
            rollout = collect(
                envs, policy, buffer, obs_norm, derive_seed(cfg.seed, dist.rank, update), env_steps,
                None if dist.enabled else stop, groups=cfg.env.collect_groups, stepper=stepper,
                obs_noise=cfg.normalize.obs_noise, noise_dims=envs.obs_layout.env,
            )
            torch.set_num_threads(update_threads)
            if rollout is None:
                interrupted = True
                save_checkpoint(checkpoint_state([rng_at_start]), run_dir / CHECKPOINT_DIR / "last.pt")
                break
            t_collect = time.time() - t0

            # 2. bootstrap value at the trial end (0 if the trial end is terminal)
            last_value = torch.zeros(N, device=device)
            if cfg.ppo.trial_end == "bootstrap":
                final = obs_norm(rollout.final_obs) if obs_norm is not None else rollout.final_obs
                with torch.no_grad():
                    last_value = policy.get_value(
                        torch.from_numpy(final).to(device), rollout.final_state, torch.zeros(N, dtype=torch.bool, device=device)
                    )

            # 3. update normalisers from this rollout (all ranks' data)
            if obs_norm is not None:
                obs_norm.update_from_moments(*_merge_moments(rollout.raw_obs.reshape(T * N, -1)[:, obs_norm.mask]))
            rewards = buffer.rewards
            if return_scaler is not None:
                returns = return_scaler.discounted_returns(buffer.rewards).reshape(-1, 1)  # (T*N, 1)
                mean, var, count = _merge_moments(returns.numpy())
                return_scaler.rms.update_from_moments(mean[0], var[0], count)
                rewards = return_scaler.scale(buffer.rewards)  # the critic (and last_value) live in scaled units

            # 4. advantages and PPO epochs (and the trials' task vectors for a task-inference loss)
            if task_table is not None:
                buffer.task_targets = task_table[rollout.tasks[:, 0], rollout.tasks[:, 1]].to(device)  # (N, F)
            adv, ret = compute_gae(rewards, buffer.values, last_value, cfg.ppo.gamma, cfg.ppo.gae_lambda)
            buffer.advantages.copy_(adv)
            buffer.returns.copy_(ret)
            losses = ppo_update(
                policy, optimizer, buffer, cfg.ppo, generator,
                learner=learner,
                sync_scalar=D.all_reduce_mean if dist.enabled else None,
                step=env_steps,
            )
            update += 1
            env_steps += steps_per_update
            dt = time.time() - t0

            # 5. metrics, evaluation, checkpoints
            stats = _reduce_stats(rollout.stats, dist)
            metrics = stats.metrics("charts")
            metrics["charts/sps"] = steps_per_update / dt
            metrics["charts/collect_sps"] = steps_per_update / t_collect
            metrics["losses/lr"] = lr
            metrics.update(losses)
            names = ["last.pt"] if update % cfg.checkpoint_interval == 0 or update == num_updates else []
            if cfg.save_interval and update % cfg.save_interval == 0:
                names.append(f"step_{env_steps}.pt")
            if dist.is_main and ((cfg.eval_interval and update % cfg.eval_interval == 0) or update == num_updates):
                last_eval = run_eval()
                metrics.update(last_eval)
                score = (last_eval.get("eval/success", 0.0), last_eval.get("eval/return", 0.0))
                if score > best:
                    best = score
                    names.append("best.pt")
            logger.log(env_steps, update, metrics, wall_time=time.time() - start_time)
            progress.update(steps_per_update, train_success=metrics.get("charts/success"), held_out_success=last_eval.get("eval/success"))
            write_checkpoints(names)
            if cfg.max_updates and update >= cfg.max_updates and update < num_updates:
                if "last.pt" not in names:
                    write_checkpoints(["last.pt"])
                break
            if (D.all_reduce_mean(float(stop())) > 0) if dist.enabled else stop():
                interrupted = True
                if "last.pt" not in names:
                    write_checkpoints(["last.pt"])
                break
    finally:
        stop.uninstall()
        progress.close()
        logger.close()
        envs.close()
        if eval_envs is not None:
            eval_envs.close()
    if interrupted and dist.is_main:
        print(f"interrupted: checkpoint at update {update} ({env_steps} env steps); resume with --resume {run_dir}", flush=True)
    D.cleanup()
    return TrainResult(run_dir, update, env_steps, interrupted, last_eval)


def _task_targets(benchmark: str, dims: list[int] | None = None) -> torch.Tensor:
    """(C, G, F) float32 training task vectors (only ``dims`` of them, if given), standardised per
    dim over the split's tasks (constant dims become 0), so every dim weighs alike in the loss."""
    from metarl.envs.registry import task_vectors

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


def _reduce_stats(stats: AttemptStats, dist: D.DistInfo) -> AttemptStats:
    """Sum per-attempt statistics over ranks."""
    if not dist.enabled:
        return stats
    t = torch.from_numpy(np.stack([stats.success, stats.ret, stats.count]))[None]  # (1, 3, k)
    total = D.all_gather_cat(t).sum(0)  # (3, k)
    out = AttemptStats(stats.episodes_per_trial)
    out.success, out.ret, out.count = (total[i].numpy() for i in range(3))
    return out


def _rank_param_diff(policy: torch.nn.Module) -> float:
    """Largest |parameter difference| between any rank and rank 0 (0.0 when data parallel works)."""
    flat = torch.cat([p.detach().reshape(-1).cpu() for p in policy.parameters()])[None]  # (1, P)
    every = D.all_gather_cat(flat)  # (W, P)
    return float((every - every[:1]).abs().max())


def _gather_rng(generator: torch.Generator, dist: D.DistInfo) -> list:
    """Every rank's RNG states (rank order), so a data-parallel resume is exact too."""
    rng = capture_rng(generator)
    if not dist.enabled:
        return [rng]
    import torch.distributed as tdist

    out: list = [None] * dist.world_size
    tdist.all_gather_object(out, rng)
    return out


def resume_config(run_dir: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """The config stored in a run's last checkpoint, with optional ``--set`` overrides."""
    from metarl.config import merge, parse_overrides

    state = load_checkpoint(run_dir)
    return config_from_dict(merge(state["config"], parse_overrides(overrides)))
