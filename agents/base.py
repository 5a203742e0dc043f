"""The one interface every recurrent cell implements, and shared helpers.

A cell maps a sequence ``x`` (T, B, I) to outputs (T, B, H), carrying a state
that is a tuple of tensors, each with the batch as dimension 0 (so rollout
buffers can slice it per env). ``reset`` (T, B) marks steps that start a new
trial: there the cell behaves as if its incoming state were the initial state.
See docs/interfaces.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


class Cell(nn.Module, ABC):
    """Base class: subclasses implement ``initial_state`` and ``forward``."""

    #: True when the cell has no memory (state is ``()``): the control.
    memoryless: bool = False
    #: False when a single step syncs with the host (so it cannot be captured in a CUDA graph).
    graph_safe: bool = True

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The state a trial starts from, for ``batch_size`` envs."""

    @abstractmethod
    def forward(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool = False):
        """``(out, state)``, or ``(out, state, diag)`` when ``diagnostics``."""

    def step(self, x: Tensor, state: State, reset: Tensor) -> tuple[Tensor, State]:
        """One step of B envs, x (B, I), reset (B,) -> (out (B, H), state): the rollout's call.

        The same math as ``forward`` on a length-1 sequence. Cells override it
        with fewer, fused ops: a rollout step of a small policy is a few hundred
        tiny ops, and on a CPU their per-op overhead, not arithmetic, is its cost.
        """
        out, state = self.forward(x.unsqueeze(0), state, reset.unsqueeze(0))
        return out.squeeze(0), state


def may_reset(reset: Tensor) -> bool:
    """False only when ``reset`` is on the CPU and all false, so a step can skip its reset ops.

    On an accelerator it answers True without looking: looking is a host sync,
    which stalls kernel launches and is illegal inside CUDA graph capture.
    """
    return reset.device.type != "cpu" or bool(reset.any())


def masked_reset(state: State, initial: State, reset: Tensor) -> State:
    """Where ``reset`` (B,) is true, replace each state tensor's row by the initial one."""
    out = []
    for s, s0 in zip(state, initial):
        mask = reset.reshape(reset.shape[0], *([1] * (s.dim() - 1)))  # (B, 1, ...)
        out.append(torch.where(mask, s0.to(s.dtype), s))
    return tuple(out)


def reset_spans(reset: Tensor) -> list[tuple[int, int]]:
    """Split [0, T) into spans that each start at 0 or at a step where any env resets.

    Inside a span no env resets after its first step, so a fused multi-step
    kernel (cuDNN LSTM/GRU) can run it in one call.
    """
    T = reset.shape[0]
    if T == 1:
        return [(0, 1)]
    cuts = torch.nonzero(reset[1:].any(dim=1)).flatten().add(1).tolist()  # one host sync
    bounds = [0, *cuts, T]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def run_fused_rnn(
    rnn: nn.LSTM | nn.GRU,
    x: Tensor,
    state: State,
    initial: State,
    reset: Tensor,
) -> tuple[Tensor, State]:
    """Run a torch ``nn.LSTM``/``nn.GRU`` (batch_first=False) over x with resets.

    ``state``/``initial`` hold (B, L, H) tensors (batch first, L layers): one for
    GRU, (h, c) for LSTM. One fused kernel call per reset span.
    """
    outs: list[Tensor] = []
    for a, b in reset_spans(reset):
        state = masked_reset(state, initial, reset[a])
        native = tuple(s.transpose(0, 1).contiguous() for s in state)  # (L, B, H)
        out, new = rnn(x[a:b], native if len(native) > 1 else native[0])
        new = new if isinstance(new, tuple) else (new,)
        state = tuple(s.transpose(0, 1) for s in new)  # (B, L, H)
        outs.append(out)
    return torch.cat(outs, dim=0) if len(outs) > 1 else outs[0], state


def stack_diagnostics(steps: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack per-step diagnostic dicts of (B, ...) tensors into (T, B, ...) tensors."""
    if not steps:
        return {}
    return {k: torch.stack([d[k] for d in steps], dim=0) for k in steps[0]}
