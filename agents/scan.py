"""Chunkwise parallel scan for a slot-gated matrix memory.

The recurrence, per batch row and slot n (memory M has N slots of width W):

    M_t[n] = f_t[n] * M_{t-1}[n] + w_t[n] * v_t            f_t in (0, 1)

with a reset at step t meaning "M_{t-1} is the initial memory M0 here". When
f, w and v do not depend on M (they come from the input stream), every M_t of
a chunk is a closed form of the chunk's inputs:

    M_t = P_t * M_carry  +  sum_{s<=t} D[t, s] * (w_s v_s^T + [reset_s] f_s M0)

    D[t, s][n] = prod_{s<u<=t} f_u[n] = exp(sum_{s<u<=t} log f_u[n])

A reset at step r cuts the chain: D[t, s] = 0 for s < r <= t, P_t = 0 from r
on, and M0 is re-injected at r as the memory before that step (so f_r still
applies to it). Within a chunk of C steps all D form one dense (B, C, N, C)
tensor and the chunk's memories one batched matmul; chunks run one after the
other, each from the last memory of the previous one (the sequential carry).

Numerical care: each exponent sum_{s<u<=t} log f_u is accumulated directly
(a cumulative sum over a masked (B, C, N, C) tensor, not a difference of two
large prefix sums, so no cancellation in float32); every exponent is <= 0 and
pairs with s > t or across a reset are set to -inf *before* the exp, so there
is no exp of a positive number and no inf * 0 in the backward pass. Decays
below e^-40 are set to exactly 0 (see ``LOG_DECAY_FLOOR``): arithmetic on subnormal
float32 numbers is far slower on CPUs, and such terms are far below float32
resolution next to any unit-scale write.

Layout: batch first, (B, T, ...), so each chunk's memories come out as
(B, C, N, W), ready for batched content addressing with keys (B, C, K, W).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

#: Log of the smallest decay the scan keeps; smaller ones are exactly zero.
LOG_DECAY_FLOOR = -40.0


def gated_scan_chunks(
    log_f: Tensor,
    write: Tensor,
    value: Tensor,
    reset: Tensor,
    memory: Tensor,
    initial: Tensor,
    chunk_size: int = 32,
) -> Iterator[tuple[int, int, Tensor]]:
    """Yield ``(a, b, M[:, a:b])`` with M[:, a:b] (B, b-a, N, W): the memory after each step.

    log_f (B, T, N) log forget gates (< 0); write (B, T, N) write weights;
    value (B, T, W) written values; reset (B, T) bool; memory (B, N, W) the
    memory before step 0; initial (B, N, W) or (N, W) the memory a reset
    restores. The last yielded chunk's last step is the final memory.
    Differentiable in every tensor argument.
    """
    initial = initial.expand_as(memory)  # (B, N, W)
    # Which chunks contain a reset: one host sync, then no per-chunk syncs.
    steps_with_reset = set(torch.nonzero(reset.any(0)).flatten().tolist())
    carry = memory
    a = 0
    # split, not [:, a:b]: one slice's backward would allocate a full (B, T, .) gradient per chunk
    chunks = zip(*(t.split(chunk_size, dim=1) for t in (log_f, write, value, reset)))
    for lf, w, v, r in chunks:
        b = a + lf.shape[1]
        has_reset = any(t in steps_with_reset for t in range(a, b))
        mem = _chunk(lf, w, v, r if has_reset else None, carry, initial)
        carry = mem[:, -1]
        yield a, b, mem
        a = b


def gated_scan(
    log_f: Tensor,
    write: Tensor,
    value: Tensor,
    reset: Tensor,
    memory: Tensor,
    initial: Tensor,
    chunk_size: int = 32,
) -> Tensor:
    """All memories (B, T, N, W) of the recurrence (see :func:`gated_scan_chunks`)."""
    chunks = [m for _, _, m in gated_scan_chunks(log_f, write, value, reset, memory, initial, chunk_size)]
    return torch.cat(chunks, dim=1)


def gated_scan_loop(
    log_f: Tensor,
    write: Tensor,
    value: Tensor,
    reset: Tensor,
    memory: Tensor,
    initial: Tensor,
) -> Tensor:
    """Step loop for the same recurrence: all memories (B, T, N, W).

    The reference the chunked scan is tested against, and the CPU path of
    ``forget-memory``: gates and writes of all steps are computed up front,
    leaving one ``addcmul`` per step (plus a ``where`` on steps where some env resets).
    """
    initial = initial.expand_as(memory)
    forget = log_f.exp().unsqueeze(-1).unbind(1)  # T x (B, N, 1)
    added = (write.unsqueeze(-1) * value.unsqueeze(-2)).unbind(1)  # T x (B, N, W)
    resets = reset.unbind(1)  # T x (B,)
    any_reset = reset.any(0).tolist() if reset.device.type == "cpu" else [True] * len(resets)
    out = []
    for t in range(len(resets)):
        if any_reset[t]:
            memory = torch.where(resets[t][:, None, None], initial, memory)  # (B, N, W)
        memory = torch.addcmul(added[t], forget[t], memory)  # f * M + w vᵀ
        out.append(memory)
    return torch.stack(out, dim=1)


def _chunk(
    log_f: Tensor, write: Tensor, value: Tensor, reset: Tensor | None, carry: Tensor, initial: Tensor
) -> Tensor:
    """Memories (B, C, N, W) of one chunk from the memory ``carry`` (B, N, W) before it.

    ``reset`` (B, C) bool, or None when no step of the chunk resets.
    """
    B, C, N = log_f.shape
    W = value.shape[-1]
    steps = torch.arange(C, device=log_f.device)
    if reset is not None:
        # A reset step's own gate never links to earlier steps: the chain is cut there.
        log_f_in = log_f.masked_fill(reset.unsqueeze(-1), 0.0)  # (B, C, N)
    else:
        log_f_in = log_f
    # exponent[b, t, n, s] = sum_{s<u<=t} log f_u[b, n]: cumulative sum over u of a
    # (B, C_u, N, C_s) tensor holding log f_u where u > s, else 0.
    later = (steps[:, None] > steps[None, :]).view(1, C, 1, C)  # (1, C_u, 1, C_s)
    exponent = log_f_in.unsqueeze(-1).expand(B, C, N, C).masked_fill(~later, 0.0).cumsum(1)  # (B, C_t, N, C_s)
    linked = (steps[:, None] >= steps[None, :]).view(1, C, 1, C)  # s <= t
    if reset is not None:
        segment = reset.long().cumsum(1)  # (B, C): resets seen up to and including t
        linked = linked & (segment[:, :, None] == segment[:, None, :]).unsqueeze(2)  # (B, C_t, 1, C_s)
    # Decays below e^-40 (4e-18) become exactly 0: keeps float32 out of subnormal
    # numbers, which make CPU arithmetic far slower, at no visible cost in accuracy.
    keep = linked & (exponent > LOG_DECAY_FLOOR)
    decay = exponent.masked_fill(~keep, float("-inf")).exp()  # (B, C_t, N, C_s), in [0, 1]

    # mem[b, t, n, :] = sum_s decay[b, t, n, s] * write[b, s, n] * value[b, s, :]
    coeff = decay * write.transpose(1, 2).unsqueeze(1)  # (B, C_t, N, C_s)
    mem = torch.bmm(coeff.view(B, C * N, C), value).view(B, C, N, W)  # (B, C, N, W)
    # Carry from the previous chunk, until the chunk's first reset.
    prefix = log_f_in.cumsum(1)  # (B, C, N)
    if reset is not None:
        prefix = prefix.masked_fill((segment > 0).unsqueeze(-1), float("-inf"))
        # Initial memory re-injected at resets as the memory *before* that step.
        at_reset = log_f.exp() * reset.unsqueeze(-1)  # (B, C, N): f_r at reset steps, else 0
        injected = (decay * at_reset.transpose(1, 2).unsqueeze(1)).sum(-1)  # (B, C, N)
        mem = mem + injected.unsqueeze(-1) * initial.unsqueeze(1)
    prefix = prefix.masked_fill(prefix <= LOG_DECAY_FLOOR, float("-inf"))
    return mem + prefix.exp().unsqueeze(-1) * carry.unsqueeze(1)
