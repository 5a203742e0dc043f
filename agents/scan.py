"""Chunkwise parallel scan for a slot-gated matrix memory.

The recurrence, per batch row and slot n (memory M has N slots of width W):

    M_t[n] = f_t[n] * M_{t-1}[n] + w_t[n] * v_t            f_t in (0, 1]

with a reset at step t meaning "M_{t-1} is the initial memory M0 here". When
f, w and v do not depend on M (they come from the input stream), every M_t is
a closed form of the chunk's inputs:

    M_t = P_t * M_carry  +  sum_{s<=t} D[t, s] * (w_s v_s^T + [reset_s] f_s M0)

    D[t, s][n] = prod_{s<u<=t} f_u[n] = exp(L_t[n] - L_s[n]),   L = cumsum(log f)

A reset at step r cuts the chain: D[t, s] = 0 for s < r <= t (as if f_r = 0),
and M0 is re-injected at r (gated by f_r, as the memory before step r). Within a chunk of C steps all D[t, s] form one
dense (C, C, B, N) tensor and the chunk's memories one batched matmul; chunks
run one after another, each starting from the last memory of the previous one.

Numerical care: L and the differences are computed in float64, every exponent
is <= 0 (pairs with s > t or across a reset are masked to -inf *before* the
exp), so no exp of a large positive number and no inf * 0 in the backward pass.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor


def gated_scan_chunks(
    log_f: Tensor,
    write: Tensor,
    value: Tensor,
    reset: Tensor,
    memory: Tensor,
    initial: Tensor,
    chunk_size: int = 32,
) -> Iterator[tuple[int, int, Tensor]]:
    """Yield ``(a, b, M[a:b])`` with M[a:b] (b-a, B, N, W): the memory after each step.

    log_f (T, B, N) log forget gates (<= 0); write (T, B, N) write weights;
    value (T, B, W) written values; reset (T, B) bool; memory (B, N, W) the
    memory before step 0; initial (B, N, W) or (N, W) the memory a reset
    restores. The last yielded chunk's last row is the final memory.
    Differentiable in every tensor argument.
    """
    T = log_f.shape[0]
    dtype = write.dtype
    initial = initial.expand_as(memory)  # (B, N, W)
    carry = memory
    for a in range(0, T, chunk_size):
        b = min(a + chunk_size, T)
        mem = _chunk(log_f[a:b], write[a:b], value[a:b], reset[a:b], carry, initial, dtype)
        carry = mem[-1]
        yield a, b, mem


def gated_scan(
    log_f: Tensor,
    write: Tensor,
    value: Tensor,
    reset: Tensor,
    memory: Tensor,
    initial: Tensor,
    chunk_size: int = 32,
) -> Tensor:
    """All memories (T, B, N, W) of the recurrence (see :func:`gated_scan_chunks`)."""
    chunks = [m for _, _, m in gated_scan_chunks(log_f, write, value, reset, memory, initial, chunk_size)]
    return torch.cat(chunks, dim=0)


def gated_scan_loop(
    log_f: Tensor,
    write: Tensor,
    value: Tensor,
    reset: Tensor,
    memory: Tensor,
    initial: Tensor,
) -> Tensor:
    """Reference step loop for the same recurrence: all memories (T, B, N, W)."""
    initial = initial.expand_as(memory)
    out = []
    for t in range(log_f.shape[0]):
        memory = torch.where(reset[t][:, None, None], initial, memory)  # (B, N, W)
        memory = log_f[t].exp().unsqueeze(-1) * memory + write[t].unsqueeze(-1) * value[t].unsqueeze(-2)
        out.append(memory)
    return torch.stack(out, dim=0)


def _chunk(
    log_f: Tensor, write: Tensor, value: Tensor, reset: Tensor, carry: Tensor, initial: Tensor, dtype: torch.dtype
) -> Tensor:
    """Memories (C, B, N, W) of one chunk, from the memory ``carry`` (B, N, W) before it."""
    C = log_f.shape[0]
    # A reset step's own forget gate never matters (the chain is cut there).
    lf = log_f.to(torch.float64).masked_fill(reset.unsqueeze(-1), 0.0)  # (C, B, N)
    L = lf.cumsum(0)  # (C, B, N)
    segment = reset.long().cumsum(0)  # (C, B): resets seen up to and including t
    steps = torch.arange(C, device=log_f.device)
    causal = steps[:, None] >= steps[None, :]  # (C, C) [t, s]: s <= t
    same = segment[:, None, :] == segment[None, :, :]  # (C, C, B)
    valid = (causal[:, :, None] & same).unsqueeze(-1)  # (C, C, B, 1)
    diff = L[:, None] - L[None, :]  # (C, C, B, N): sum of log f over (s, t]
    decay = diff.masked_fill(~valid, float("-inf")).exp().to(dtype)  # (C, C, B, N), in [0, 1]

    # Writes: mem[t, b, n, :] = sum_s decay[t, s, b, n] * write[s, b, n] * value[s, b, :]
    mem = torch.einsum("tsbn,sbw->tbnw", decay * write.unsqueeze(0), value)  # (C, B, N, W)
    # Initial memory re-injected at resets as the memory *before* that step, so
    # the reset step's own forget gate applies to it: coefficient f_r at r.
    at_reset = log_f.exp().to(dtype) * reset.unsqueeze(-1).to(dtype)  # (C, B, N)
    injected = (decay * at_reset.unsqueeze(0)).sum(1)  # (C, B, N)
    mem = mem + injected.unsqueeze(-1) * initial.unsqueeze(0)
    # Carry from the previous chunk, until the first reset of the chunk.
    kept = L.masked_fill((segment > 0).unsqueeze(-1), float("-inf")).exp().to(dtype)  # (C, B, N)
    return mem + kept.unsqueeze(-1) * carry.unsqueeze(0)
