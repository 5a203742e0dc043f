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
from metarl.agents.base import State
from metarl.agents.memory_loop import MemoryLoopCell

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


class NTMCell(MemoryLoopCell):
    """NTM cell. State ``(h, c, memory, weights, reads)``, batch first: h, c (B, C);
    memory (B, N, W); weights (B, heads + 1, N) (read heads first, then the write head);
    reads (B, heads*W).
    """

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
        self.build_controller(slots, width, heads, controller_size)
        K, W = heads, width
        # Per head (K reads + 1 write): key W, beta 1, gate 1, shift 3, gamma 1; plus erase W and add W.
        self.n_addr = W + 6
        self.head = nn.Linear(self.controller_size, (K + 1) * self.n_addr + 2 * W)
        self.build_output()
        self.init_memory = nn.Parameter(torch.randn(slots, width) * 0.05)

    def reset_state(self, batch_size: int, device: torch.device | str) -> State:
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
        return tuple(s.detach().clone() for s in self.reset_state(batch_size, device))

    def memory_step(self, h: Tensor, memory: State) -> tuple[State, Tensor, dict[str, Tensor]]:
        mem, weights = memory
        B, K, W, H = h.shape[0], self.heads, self.width, self.heads + 1
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
        return (mem, weights), r, {"read_weights": w_read, "write_weights": w_write}
