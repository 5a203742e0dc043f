"""Data-parallel training across processes (``torchrun``) with ``torch.distributed``.

Each rank runs its own env workers with its own seed stream; gradients are
averaged with one flattened all-reduce per optimiser step, parameters are
broadcast from rank 0 at start, and normaliser statistics are merged from
every rank's rollout, so all ranks hold identical models. Only rank 0 writes.

We all-reduce gradients ourselves instead of wrapping the policy in
``DistributedDataParallel``: PPO calls ``policy.evaluate`` (not ``forward``),
which DDP's hooks do not see; the explicit reduction is the same arithmetic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


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


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not dist.is_initialized():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Average gradients across ranks with one flattened all-reduce."""
    if not dist.is_initialized():
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for p, g in zip(params, _unflatten_dense_tensors(flat, grads)):
        if p.grad is None:
            p.grad = g
        else:
            p.grad.copy_(g)


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


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
