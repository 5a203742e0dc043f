"""Content-based memory addressing shared by the memory cells."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def content_weights(keys: Tensor, memory: Tensor, beta: Tensor, eps: float = 1e-6) -> Tensor:
    """Softmax over slots of sharpened cosine similarity.

    keys (B, K, W) query vectors (K heads); memory (B, N, W); beta (B, K) > 0
    sharpness. Returns weights (B, K, N) summing to 1 over N. Extra leading dims
    are allowed as long as keys/memory/beta agree on them.
    """
    k = F.normalize(keys, dim=-1, eps=eps)
    m = F.normalize(memory, dim=-1, eps=eps)
    sim = torch.einsum("...kw,...nw->...kn", k, m)  # (..., K, N)
    return torch.softmax(beta.unsqueeze(-1) * sim, dim=-1)


def read(weights: Tensor, memory: Tensor) -> Tensor:
    """Weighted read: weights (B, K, N), memory (B, N, W) -> (B, K*W)."""
    r = torch.einsum("...kn,...nw->...kw", weights, memory)  # (B, K, W)
    return r.flatten(-2)
