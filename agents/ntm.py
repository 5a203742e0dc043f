"""NTM: Neural Turing Machine memory (Graves et al., 2014) with erase and add vectors.

An LSTM controller drives ``heads`` read heads and one write head over an
N x W memory. Every head addresses memory the NTM way (content by sharpened
cosine similarity, interpolation with its previous weights, a circular shift by
-1/0/+1, sharpening), all heads in one batched call. Per step t:

    h_t, c_t = LSTM([x_t; r_{t-1}], h_{t-1}, c_{t-1})
    w_t      = address(heads of h_t, M_{t-1}, w_{t-1})         (K read heads + 1 write head)
    r_t      = Σ_n w^r_t[n] M_{t-1}[n]                           (reads see memory before this write)
    M_t      = M_{t-1} ∘ (1 − w^w_t e_tᵀ) + w^w_t a_tᵀ          (e_t ∈ (0,1)^W erase, a_t add)
    out_t    = tanh(W_o [h_t; r_t])

Forgetting happens only where the network chooses to erase, slot by slot.
Initial memory is a learned N x W tensor; initial head weights sit on slot 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.agents.addressing import content_weights, read
from metarl.agents.base import Cell, State, masked_reset, stack_diagnostics
from metarl.agents.basic import LSTMController

_EPS = 1e-8


def ntm_address(
    keys: Tensor, beta: Tensor, gate: Tensor, shift: Tensor, gamma: Tensor, memory: Tensor, prev: Tensor
) -> Tensor:
    """NTM addressing for H heads: keys (B, H, W), beta/gate/gamma (B, H), shift (B, H, 3)
    softmax over shifts (-1, 0, +1), memory (B, N, W), prev (B, H, N) -> weights (B, H, N)."""
    w = content_weights(keys, memory, beta)  # (B, H, N)
    g = gate.unsqueeze(-1)  # (B, H, 1)
    w = g * w + (1.0 - g) * prev  # interpolate with last step's weights
    s = shift.unsqueeze(-1)  # (B, H, 3, 1)
    # circular convolution: shift +1 moves weight from slot n-1 to slot n
    w = s[:, :, 0] * torch.roll(w, -1, dims=-1) + s[:, :, 1] * w + s[:, :, 2] * torch.roll(w, 1, dims=-1)
    # Sharpen. Dividing by the max first keeps w^gamma from underflowing to all zeros for large gamma.
    w = (w / w.amax(dim=-1, keepdim=True) + _EPS).pow(gamma.unsqueeze(-1))
    return w / w.sum(dim=-1, keepdim=True)


class NTMCell(Cell):
    """NTM cell. State ``(h, c, memory, weights, reads)``, batch first: h, c (B, C);
    memory (B, N, W); weights (B, heads + 1, N) (read heads first, then the write head);
    reads (B, heads*W).
    """

    graph_safe = False  # one host sync per call (which steps reset)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        slots: int = 32,
        width: int = 32,
        heads: int = 1,
        controller_size: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        if heads < 1 or slots < 2:
            raise ValueError(f"need heads >= 1 and slots >= 2, got heads={heads}, slots={slots}")
        self.slots, self.width, self.heads = slots, width, heads
        self.controller_size = controller_size or hidden_size
        C, K, W = self.controller_size, heads, width
        self.controller = LSTMController(input_size, K * W, C)
        # Per head (K reads + 1 write): key W, beta 1, gate 1, shift 3, gamma 1; plus erase W and add W.
        self.n_addr = W + 6
        self.head = nn.Linear(C, (K + 1) * self.n_addr + 2 * W)
        self.output = nn.Linear(C + K * W, hidden_size)
        self.init_memory = nn.Parameter(torch.randn(slots, width) * 0.05)

    def _initial(self, batch_size: int, device: torch.device | str) -> State:
        """Initial state, differentiable w.r.t. the learned initial memory."""
        B, C, N, K, W = batch_size, self.controller_size, self.slots, self.heads, self.width
        weights = torch.zeros(B, K + 1, N, device=device)
        weights[:, :, 0] = 1.0  # every head starts on slot 0
        return (
            torch.zeros(B, C, device=device),  # h
            torch.zeros(B, C, device=device),  # c
            self.init_memory.to(device).expand(B, N, W),  # memory
            weights,
            torch.zeros(B, K * W, device=device),  # reads
        )

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        if device is None:
            device = self.init_memory.device
        return tuple(s.detach().clone() for s in self._initial(batch_size, device))

    def forward(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool = False):
        T, B, _ = x.shape
        K, W, H = self.heads, self.width, self.heads + 1
        initial: State | None = None  # built on the first reset only
        # Input projection hoisted out of the loop; unbind (not x_proj[t]) keeps backward O(T).
        x_proj = self.controller.project(x).unbind(0)  # T x (B, 4C)
        any_reset = reset.any(dim=1).tolist()  # one host sync; most steps reset nobody
        hs, rs, diag = [], [], []
        for t in range(T):
            if any_reset[t]:
                initial = self._initial(B, x.device) if initial is None else initial
                state = masked_reset(state, initial, reset[t])
            h, c, mem, weights, r = state
            h, c = self.controller.step(x_proj[t], r, h, c)
            addr, erase, add = self.head(h).split([H * self.n_addr, W, W], dim=-1)
            keys, beta, gate, shift, gamma = addr.view(B, H, self.n_addr).split([W, 1, 1, 3, 1], dim=-1)
            weights = ntm_address(
                keys,  # (B, H, W)
                1.0 + F.softplus(beta.squeeze(-1)),  # (B, H) sharpness
                torch.sigmoid(gate.squeeze(-1)),  # (B, H) content vs previous
                torch.softmax(shift, dim=-1),  # (B, H, 3)
                1.0 + F.softplus(gamma.squeeze(-1)),  # (B, H) >= 1
                mem,
                weights,
            )
            w_read, w_write = weights[:, :K], weights[:, K]  # (B, K, N), (B, N)
            r = read(w_read, mem)  # (B, K*W)
            ww = w_write.unsqueeze(-1)  # (B, N, 1)
            mem = mem * (1.0 - ww * torch.sigmoid(erase).unsqueeze(1)) + ww * torch.tanh(add).unsqueeze(1)  # (B, N, W)
            state = (h, c, mem, weights, r)
            hs.append(h)
            rs.append(r)
            if diagnostics:
                diag.append({"read_weights": w_read, "write_weights": w_write})
        out = torch.tanh(self.output(torch.cat([torch.stack(hs), torch.stack(rs)], dim=-1)))  # (T, B, H)
        if diagnostics:
            return out, state, stack_diagnostics(diag)
        return out, state
