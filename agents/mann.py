"""MANN: memory-augmented network with least-recently-used writes (Santoro et al., 2016).

An LSTM controller reads ``heads`` vectors from an N x W memory by content
(cosine similarity, sharpened softmax) and writes one vector per step to a mix
of the slots it just read and the least-used slots. Usage decays every step, so
a slot nobody reads or writes becomes "least used" and is overwritten:
forgetting by disuse, at a fixed rate (``decay``), not learned.

Per step t (reads r_{t-1} from the previous step feed the controller):

    h_t, c_t   = LSTM([x_t; r_{t-1}], h_{t-1}, c_{t-1})
    lu_{t-1}   = 1 on the ``heads`` least-used slots of u_{t-1}, else 0
    w^w_t      = σ(α_t) mean_k w^r_{t-1,k} + (1 − σ(α_t)) lu_{t-1} / heads
    M_t        = M_{t-1} ∘ (1 − lu_{t-1} 1ᵀ) + w^w_t a_tᵀ       (least-used slots cleared first)
    w^r_{t,k}  = softmax_n(β_{t,k} cos(k_{t,k}, M_t[n]))
    r_t        = Σ_n w^r_t[n] M_t[n]
    u_t        = γ u_{t-1} + Σ_k w^r_{t,k} + w^w_t
    out_t      = tanh(W_o [h_t; r_t])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.agents.addressing import content_weights, read
from metarl.agents.base import State
from metarl.agents.memory_loop import MemoryLoopCell

#: Memory content at trial start: small and constant (an "empty" memory).
INIT_MEMORY = 1e-6


class MANNCell(MemoryLoopCell):
    """Santoro et al. (2016) MANN. State ``(h, c, memory, read_weights, usage, reads)``, batch first:
    h, c (B, C); memory (B, N, W); read_weights (B, heads, N); usage (B, N); reads (B, heads*W).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        slots: int = 32,
        width: int = 32,
        heads: int = 1,
        decay: float = 0.95,
        controller_size: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        if not 1 <= heads < slots:
            raise ValueError(f"need 1 <= heads < slots, got heads={heads}, slots={slots}")
        self.decay = decay
        self.build_controller(slots, width, heads, controller_size)
        K, W = heads, width
        # One projection for every head parameter: keys (K*W), betas (K), write gate (1), add vector (W).
        self.head = nn.Linear(self.controller_size, K * W + K + 1 + W)
        self.build_output()
        # Breaks exact usage ties (all zero at trial start) by slot index, identically on every device.
        self.register_buffer("tie_break", torch.arange(slots, dtype=torch.float32) * 1e-6, persistent=False)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        if device is None:
            device = self.head.weight.device
        B, C, N, W, K = batch_size, self.controller_size, self.slots, self.width, self.heads
        return (
            torch.zeros(B, C, device=device),  # h
            torch.zeros(B, C, device=device),  # c
            torch.full((B, N, W), INIT_MEMORY, device=device),  # memory
            torch.zeros(B, K, N, device=device),  # read weights (nothing read yet)
            torch.zeros(B, N, device=device),  # usage
            torch.zeros(B, K * W, device=device),  # reads
        )

    def memory_step(self, h: Tensor, memory: State) -> tuple[State, Tensor, dict[str, Tensor]]:
        mem, w_read, usage = memory
        B, K, W = h.shape[0], self.heads, self.width
        keys, beta, gate, add = self.head(h).split([K * W, K, 1, W], dim=-1)
        keys = keys.view(B, K, W)  # (B, K, W)
        beta = 1.0 + F.softplus(beta)  # (B, K) sharpness >= 1
        gate = torch.sigmoid(gate)  # (B, 1)
        add = torch.tanh(add)  # (B, W)
        # The `heads` least-used slots of the previous usage (exactly K of them).
        scored = usage + self.tie_break  # (B, N)
        lu = (scored <= scored.kthvalue(K, dim=-1, keepdim=True).values).to(h.dtype)  # (B, N)
        w_write = gate * w_read.mean(dim=1) + (1.0 - gate) * lu / K  # (B, N)
        mem = mem * (1.0 - lu).unsqueeze(-1) + w_write.unsqueeze(-1) * add.unsqueeze(1)  # (B, N, W)
        w_read = content_weights(keys, mem, beta)  # (B, K, N)
        r = read(w_read, mem)  # (B, K*W)
        usage = self.decay * usage + w_read.sum(dim=1) + w_write  # (B, N)
        return (mem, w_read, usage), r, {"read_weights": w_read, "write_weights": w_write, "usage": usage}
