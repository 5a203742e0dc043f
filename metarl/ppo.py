"""Recurrent PPO: the clipped loss and one update over a rollout buffer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from metarl.buffer import Minibatch, RolloutBuffer
from metarl.config import PPOConfig


class NonFiniteError(ValueError):
    """A NaN or inf in observations, rewards or losses (message names source and step)."""


@dataclass
class LossTerms:
    loss: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    clipfrac: torch.Tensor
    ratio_max_dev: torch.Tensor  # max |ratio - 1|, exactly 0 at the first minibatch


def ppo_loss(
    new_log_prob: torch.Tensor,
    entropy: torch.Tensor,
    new_value: torch.Tensor,
    mb: Minibatch,
    cfg: PPOConfig,
) -> LossTerms:
    """Clipped surrogate + value loss - entropy bonus, averaged over (L, M)."""
    log_ratio = new_log_prob - mb.log_probs  # (L, M)
    ratio = log_ratio.exp()
    adv = mb.advantages
    if cfg.norm_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg1 = -adv * ratio
    pg2 = -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)
    policy_loss = torch.max(pg1, pg2).mean()
    if cfg.clip_vloss:
        v_clipped = mb.values + (new_value - mb.values).clamp(-cfg.clip_coef, cfg.clip_coef)
        value_loss = 0.5 * torch.max((new_value - mb.returns) ** 2, (v_clipped - mb.returns) ** 2).mean()
    else:
        value_loss = 0.5 * ((new_value - mb.returns) ** 2).mean()
    ent = entropy.mean()
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * ent
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()  # k3 estimator (Schulman)
        clipfrac = ((ratio - 1).abs() > cfg.clip_coef).float().mean()
        ratio_dev = (ratio - 1).abs().max()
    return LossTerms(loss, policy_loss, value_loss, ent, approx_kl, clipfrac, ratio_dev)


def task_inference_loss(pred: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the task head's (L, M, F) predictions against the trial's
    (M, F) task vector (or, where the task switches mid-trial, each step's (L, M, F) one),
    at every step: its minimiser is the posterior mean of the task given the trial so
    far, so the cell is taught to infer the task from what it saw."""
    if targets.dim() == 2:
        targets = targets.unsqueeze(0)  # (M, F) -> (1, M, F)
    return ((pred - targets) ** 2).mean()  # (L, M, F)


def learning_rate(cfg: PPOConfig, env_steps: int, total_steps: int) -> float:
    """Learning rate at ``env_steps`` (a pure function of counters, so resume is exact)."""
    if cfg.lr_schedule == "linear":
        return cfg.lr * max(0.0, 1.0 - env_steps / total_steps)
    return cfg.lr


def ppo_update(
    policy: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    buffer: RolloutBuffer,
    cfg: PPOConfig,
    generator: torch.Generator,
    learner: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None,
    sync_scalar: Callable[[float], float] | None = None,
    step: int = 0,
) -> dict[str, float]:
    """``cfg.epochs`` passes of minibatch SGD over the buffer; returns ``losses/...`` metrics.

    ``learner(obs, state, reset, actions)`` computes ``policy.evaluate`` for the
    loss; data parallel passes :func:`metarl.distributed.ddp_learner`'s DDP
    wrapper, whose backward averages gradients across ranks (default: the
    plain ``policy.evaluate``). ``sync_scalar`` averages a float across ranks
    (for the target-KL stop, so every rank runs the same number of steps).
    """
    params = [p for p in policy.parameters() if p.requires_grad]
    evaluate = learner if learner is not None else policy.evaluate
    sums: dict[str, float] = {}
    n = 0
    first_ratio_dev = float("nan")
    stop = False
    # forget-memory's surprise gates: their reward predictor learns from this loss alone
    with_surprise = cfg.surprise_coef > 0 and getattr(policy, "has_surprise", False)
    for epoch in range(cfg.epochs):
        for mb in buffer.minibatches(cfg.num_minibatches, generator):
            aux: dict[str, bool] = {}  # the auxiliary outputs asked of evaluate, in its order
            if cfg.task_coef > 0:
                if mb.task_targets is None:
                    raise ValueError("ppo.task_coef > 0 needs the buffer's task_targets")
                aux["with_task"] = True
            if with_surprise:
                aux["with_surprise"] = True
            log_prob, entropy, value, *extra = evaluate(mb.obs, mb.state0, mb.resets, mb.actions, **aux)  # each (L, M)
            terms = ppo_loss(log_prob, entropy, value, mb, cfg)
            if cfg.task_coef > 0:
                task_loss = task_inference_loss(extra[0], mb.task_targets)
                terms.loss = terms.loss + cfg.task_coef * task_loss
                sums["task_loss"] = sums.get("task_loss", 0.0) + float(task_loss.detach())
            if with_surprise:
                terms.loss = terms.loss + cfg.surprise_coef * extra[-1]
                sums["surprise_loss"] = sums.get("surprise_loss", 0.0) + float(extra[-1].detach())
            if not torch.isfinite(terms.loss):
                raise NonFiniteError(
                    f"non-finite PPO loss at env step {step} (epoch {epoch}): policy {terms.policy_loss.item():.4g}, "
                    f"value {terms.value_loss.item():.4g}, entropy {terms.entropy.item():.4g}"
                )
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()  # a DDP learner all-reduces (averages) gradients here
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            if not torch.isfinite(grad_norm):
                raise NonFiniteError(f"non-finite gradient norm at env step {step} (epoch {epoch})")
            optimizer.step()
            if n == 0:
                first_ratio_dev = terms.ratio_max_dev.item()
            n += 1
            for k, v in (
                ("policy_loss", terms.policy_loss),
                ("value_loss", terms.value_loss),
                ("entropy", terms.entropy),
                ("approx_kl", terms.approx_kl),
                ("clipfrac", terms.clipfrac),
                ("grad_norm", grad_norm),
            ):
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            if cfg.target_kl is not None:
                kl = float(terms.approx_kl)
                if sync_scalar is not None:
                    kl = sync_scalar(kl)
                if kl > cfg.target_kl:
                    stop = True
                    break
        if stop:
            break
    metrics = {f"losses/{k}": v / max(n, 1) for k, v in sums.items()}
    metrics["losses/first_ratio_dev"] = first_ratio_dev
    metrics["losses/explained_variance"] = explained_variance(buffer.values, buffer.returns)
    metrics["losses/epochs"] = float(epoch + 1)
    return metrics


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var[target - pred] / Var[target]; nan when the target is constant."""
    var = target.var().item()
    return float("nan") if var == 0 or math.isnan(var) else 1.0 - (target - pred).var().item() / var
