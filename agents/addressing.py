"""Content-based memory addressing shared by the memory cells."""

from __future__ import annotations

import torch
from torch import Tensor


def content_weights(keys: Tensor, memory: Tensor, beta: Tensor, eps: float = 1e-6) -> Tensor:
    """Softmax over slots of sharpened cosine similarity.

    keys (B, K, W) query vectors (K heads); memory (B, N, W); beta (B, K) > 0
    sharpness. Returns weights (B, K, N) summing to 1 over N. Extra leading dims
    are allowed as long as keys/memory/beta agree on them.
    """
    # Same as dotting F.normalize(keys) with F.normalize(memory), but divides the
    # (…, K, N) dot products instead of materialising a normalised memory copy.
    dot = keys @ memory.transpose(-1, -2)  # (..., K, N); a plain matmul: fewer ops than einsum
    k_norm = keys.norm(dim=-1).clamp_min(eps)  # (..., K)
    m_norm = memory.norm(dim=-1).clamp_min(eps)  # (..., N)
    sim = dot / (k_norm.unsqueeze(-1) * m_norm.unsqueeze(-2))
    return torch.softmax(beta.unsqueeze(-1) * sim, dim=-1)


def read(weights: Tensor, memory: Tensor) -> Tensor:
    """Weighted read: weights (B, K, N), memory (B, N, W) -> (B, K*W)."""
    r = weights @ memory  # (B, K, W)
    return r.flatten(-2)
