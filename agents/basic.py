"""Baseline cells: the memoryless MLP control and fused GRU/LSTM.

``gru`` and ``lstm`` run torch's fused kernels (cuDNN on CUDA, ATen on CPU)
over the spans between resets (:func:`run_fused_rnn`), never a Python step
loop. ``mlp`` has no state at all: an RL² agent built on it cannot remember
anything across steps, which makes it the control for every memory claim.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metarl.agents.base import Cell, State, may_reset, run_fused_rnn


class MLPCell(Cell):
    """Memoryless control: ``out_t = tanh(W x_t + b)``; state ``()``, resets ignored."""

    memoryless = True

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.linear = nn.Linear(input_size, hidden_size)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        return ()

    def forward(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool = False):
        out = torch.tanh(self.linear(x))  # (T, B, H)
        return (out, (), {}) if diagnostics else (out, ())


class _FusedRNNCell(Cell):
    """Shared body of the GRU/LSTM cells: state tensors are (B, L, H), zeros at trial start."""

    rnn_type: type[nn.RNNBase] = nn.GRU
    n_state: int = 1  # 1 for GRU (h), 2 for LSTM (h, c)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__(input_size, hidden_size)
        self.num_layers = num_layers
        self.rnn = self.rnn_type(input_size, hidden_size, num_layers=num_layers)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        if device is None:
            device = next(self.parameters()).device
        z = torch.zeros(batch_size, self.num_layers, self.hidden_size, device=device)  # (B, L, H)
        return tuple(z.clone() for _ in range(self.n_state))

    def forward(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool = False):
        initial = tuple(torch.zeros_like(s) for s in state)  # (B, L, H) each
        out, state = run_fused_rnn(self.rnn, x, state, initial, reset)  # out (T, B, H)
        return (out, state, {}) if diagnostics else (out, state)

    def step(self, x: Tensor, state: State, reset: Tensor) -> tuple[Tensor, State]:
        """One step as one ``torch.gru_cell``/``lstm_cell`` call on the layer's weights."""
        if self.num_layers != 1:
            return super().step(x, state, reset)
        s = tuple(t[:, 0] for t in state)  # (B, H) each
        if may_reset(reset):
            keep = (~reset).to(x.dtype).unsqueeze(-1)  # (B, 1): the initial state is zero
            s = tuple(t * keep for t in s)
        rnn = self.rnn
        weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
        if self.n_state == 2:
            h, c = torch.lstm_cell(x, s, *weights)
            return h, (h.unsqueeze(1), c.unsqueeze(1))
        h = torch.gru_cell(x, s[0], *weights)
        return h, (h.unsqueeze(1),)


class GRUCell(_FusedRNNCell):
    """GRU baseline (the usual RL² policy); state ``(h,)`` with h (B, L, H)."""

    rnn_type = nn.GRU
    n_state = 1


class LSTMCell(_FusedRNNCell):
    """LSTM baseline; state ``(h, c)``, each (B, L, H)."""

    rnn_type = nn.LSTM
    n_state = 2


class LSTMController(nn.Module):
    """An LSTM cell for memory cells that must step in a Python loop.

    Its input is split in two: the sequence input ``x`` (projected for all T
    steps in one matmul by :meth:`project`, outside the loop) and a per-step
    ``extra`` vector (e.g. the previous memory read) that only exists inside
    the loop. Gates: ``W_x x_t + U [extra; h_{t-1}] + b``; forget bias starts at 1.
    """

    def __init__(self, input_size: int, extra_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = nn.Linear(input_size, 4 * hidden_size)
        self.recurrent = nn.Linear(extra_size + hidden_size, 4 * hidden_size, bias=False)
        with torch.no_grad():
            self.input_proj.bias.zero_()
            self.input_proj.bias[hidden_size : 2 * hidden_size].fill_(1.0)  # forget gate

    def project(self, x: Tensor) -> Tensor:
        """x (T, B, I) -> input part of the gates (T, B, 4H)."""
        return self.input_proj(x)

    def step(self, x_proj: Tensor, extra: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One step: x_proj (B, 4H), extra (B, E), h/c (B, H) -> new h, c."""
        gates = x_proj + self.recurrent(torch.cat([extra, h], dim=-1))  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
