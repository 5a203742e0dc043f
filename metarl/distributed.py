"""Data-parallel training across processes (``torchrun``) with ``torch.distributed``.

Each rank runs its own env workers with its own seed stream. The learner is
the policy wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA):
DDP copies rank 0's parameters to every rank when it is built and averages
gradients during each backward. PPO's learner pass is ``policy.evaluate``, not
``forward``, so DDP wraps :class:`EvaluateForward`, whose ``forward`` is
``evaluate``; collection and evaluation call the plain policy. Normaliser
statistics are merged from every rank's rollout, so all ranks hold identical
models. Only rank 0 writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from metarl.trials import AttemptStats


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment (no-op without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda" and device.index is None:
        torch.cuda.set_device(local_rank % max(1, torch.cuda.device_count()))  # before NCCL starts
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """One GPU per local rank when training on CUDA."""
    if device.type == "cuda" and device.index is None:
        index = info.local_rank % max(1, torch.cuda.device_count()) if info.enabled else torch.cuda.current_device()
        device = torch.device("cuda", index)  # set_device needs an index
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


class EvaluateForward(nn.Module):
    """``policy.evaluate`` as ``forward``, so DDP's hooks see PPO's learner pass."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, state: tuple, reset: torch.Tensor, actions: torch.Tensor,
                with_task: bool = False, with_surprise: bool = False):
        """(log_prob, entropy, value), each (T, B), then the task prediction with ``with_task`` and the
        surprise loss with ``with_surprise``: see ``ActorCritic.evaluate``."""
        return self.policy.evaluate(obs, state, reset, actions, with_task=with_task, with_surprise=with_surprise)


def ddp_learner(policy: nn.Module, device: torch.device) -> nn.Module:
    """The module PPO calls for ``evaluate``: DDP-wrapped when a process group is up, else plain.

    Building the DDP wrapper broadcasts rank 0's parameters and buffers, so call
    it after a checkpoint is loaded. Every parameter gets a gradient from the
    PPO loss (tested for every registered cell), hence
    ``find_unused_parameters=False``. Buffers keep DDP's default (re-broadcast
    from rank 0 at each forward; only ``mann`` has one, a constant).
    Checkpoints save ``policy.state_dict()``, not the wrapper's.
    """
    learner = EvaluateForward(policy)
    if not dist.is_initialized():
        return learner
    return DistributedDataParallel(
        learner,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=False,
    )


def _comm_device() -> torch.device:
    """NCCL only moves CUDA tensors; gloo takes CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(value: float) -> float:
    """Mean of a float over ranks."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def all_gather_cat(x: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor's first dim over ranks (same shape on every rank); result on x's device."""
    if not dist.is_initialized():
        return x
    y = x.to(_comm_device()).contiguous()
    parts = [torch.empty_like(y) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, y)
    return torch.cat(parts, 0).to(x.device)


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` without a process group)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def merge_moments(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, variance and count of x (M, K) over every rank's rows, merged exactly in rank order."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    stats = torch.stack([t.mean(0), t.var(0, unbiased=False)])[None]  # (1, 2, K)
    stats = all_gather_cat(stats)  # (W, 2, K)
    n = float(t.shape[0])
    mean, var, count = stats[0, 0], stats[0, 1], torch.tensor(n, dtype=torch.float64)
    for w in range(1, stats.shape[0]):  # Chan et al. merge of equal-size batches
        delta = stats[w, 0] - mean
        total = count + n
        var = (var * count + stats[w, 1] * n + delta**2 * count * n / total) / total
        mean = mean + delta * n / total
        count = total
    return mean, var, count


def sum_attempt_stats(stats: AttemptStats, info: DistInfo) -> AttemptStats:
    """Per-attempt statistics summed over ranks."""
    if not info.enabled:
        return stats
    t = torch.from_numpy(np.stack([stats.success, stats.ret, stats.count]))[None]  # (1, 3, k)
    total = all_gather_cat(t).sum(0)  # (3, k)
    out = AttemptStats(stats.episodes_per_trial)
    out.success, out.ret, out.count = (total[i].numpy() for i in range(3))
    return out


def rank_param_max_diff(policy: nn.Module) -> float:
    """Largest |parameter difference| between any rank and rank 0 (0.0 when data parallel works)."""
    flat = torch.cat([p.detach().reshape(-1).cpu() for p in policy.parameters()])[None]  # (1, P)
    every = all_gather_cat(flat)  # (W, P)
    return float((every - every[:1]).abs().max())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
