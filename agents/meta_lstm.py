"""The Meta-LSTM: an LSTM whose gates also read an external memory matrix.

From the founding document:

    i_t = σ(W_i x_t + U_i h_{t-1} + V_i m_t)      (likewise f_t, o_t)
    g_t = tanh(W_g x_t + U_g h_{t-1} + V_g m_t)    (the candidate reads m_t too)
    c_t = f_t ∘ c_{t-1} + i_t ∘ g_t,   h_t = o_t ∘ tanh(c_t)

``V m_t`` is just extra input columns of an LSTM fed ``[x_t; m_t]``, so the
controller is a plain ``nn.LSTM(input + heads*width, hidden)``; stepping it by
hand below uses exactly its weights and gate order (i, f, g, o).

Each step, in this order (keys and writes see both x_t and h_{t-1}, so a value
can be stored and a query answered in the step its cue arrives):

1. write: the document's M_t = M_{t-1} + w_t k_t v_tᵀ with write strength
   w_t = σ(gate) (scalar), slot address k_t = softmax(·) over the N slots and
   value v_t = tanh(·) (W); additive, it never forgets;
2. read: m_t = Σ_n a_t[n] M_t[n] with a_t the content weights (sharpened
   cosine softmax) of a key from the controller, per read head;
3. the LSTM update above.

This module also holds the pieces :mod:`metarl.agents.forget_memory` reuses
(:class:`MemoryHeads`, :class:`MemoryLSTMBase`): the forget-memory cell is this
controller over a memory whose slots have learned forget gates.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.agents.addressing import content_weights, read
from metarl.agents.base import Cell, State, may_reset, stack_diagnostics


class MemoryHeads(nn.Module):
    """Linear read/write heads: one projection split into the named parts.

    ``split`` returns ``(write (…, N), value (…, W), key (…, K, W), beta (…, K),
    log_forget (…, N) or None)``. The projection is ``x @ Wx + b`` plus, when
    ``hidden_size`` > 0, ``h @ Wh`` (so the x part can be computed for a whole
    sequence at once). ``forget`` with ``learn_forget=False``: the projection
    has no forget rows and ``log_forget`` is exactly 0 (gates fixed at 1, no
    parameter feeds them).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        slots: int,
        width: int,
        heads: int,
        forget: bool,
        forget_init: float = 0.9,
        learn_forget: bool = True,
    ) -> None:
        super().__init__()
        self.slots, self.width, self.heads, self.forget = slots, width, heads, forget
        self.learn_forget = learn_forget
        learned = forget and learn_forget
        # (name, size) in the order of the projection's outputs.
        self.sizes = [slots, 1, width, heads * width, heads] + ([slots] if learned else [])
        total = sum(self.sizes)
        self.from_x = nn.Linear(input_size, total)
        self.from_h = nn.Linear(hidden_size, total, bias=False) if hidden_size > 0 else None
        if learned:
            # σ(b) = forget_init: slots start out remembering.
            with torch.no_grad():
                self.from_x.bias[-slots:] = math.log(forget_init / (1.0 - forget_init))

    def split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        parts = torch.split(z, self.sizes, dim=-1)
        address, gate, value, key, beta = parts[:5]
        write = torch.sigmoid(gate) * torch.softmax(address, dim=-1)  # (…, N)
        key = key.unflatten(-1, (self.heads, self.width))  # (…, K, W)
        beta = 1.0 + F.softplus(beta)  # (…, K)
        if not self.forget:
            log_forget = None
        elif self.learn_forget:
            log_forget = F.logsigmoid(parts[5])  # (…, N)
        else:  # fixed gates f = 1: log f = 0, a constant (no gradient, no parameter)
            log_forget = z.new_zeros(z.shape[:-1] + (self.slots,))  # (…, N)
        return write, torch.tanh(value), key, beta, log_forget


class MemoryLSTMBase(Cell):
    """An LSTM controller reading an (N, W) memory matrix; state ``(h, c, M)``.

    State: h, c (B, 1, H) (batch first, one layer, as ``run_fused_rnn`` wants)
    and M (B, N, W). The initial h, c are zero; the initial memory is a learned
    (N, W) parameter shared by all envs, so a reset is deterministic.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        slots: int = 32,
        width: int = 32,
        heads: int = 1,
        forget: bool = False,
        heads_read_h: bool = True,
        forget_init: float = 0.9,
        learn_forget: bool = True,
        head_input_size: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        if min(slots, width, heads) < 1:
            raise ValueError(f"slots, width and heads must be >= 1, got {slots}, {width}, {heads}")
        self.slots, self.width, self.heads = slots, width, heads
        self.forget = forget
        self.heads_read_h = heads_read_h
        self.controller = nn.LSTM(input_size + heads * width, hidden_size)
        self.memory_heads = MemoryHeads(  # the heads read x_t, or what head_input_size says (forget-memory)
            input_size if head_input_size is None else head_input_size,
            hidden_size if heads_read_h else 0, slots, width, heads, forget, forget_init, learn_forget,
        )
        self.memory0 = nn.Parameter(0.1 * torch.randn(slots, width))
        # surprise gates (forget-memory's ``surprise``): set by the subclass, None here
        self.reward_predictor: nn.Module | None = None
        self.surprise_gates: nn.Linear | None = None
        self.surprise_action_dim = 0

    def _surprise(self, z: Tensor, h: Tensor, x: Tensor, reset: Tensor) -> tuple[Tensor, Tensor | None]:
        """The heads' projection z (B, Z) with the forget logits moved by the reward-prediction error,
        and that error (B,); (z, None) without surprise gates. x's last 1 + A dims are the previous
        action and reward (the policy appends them raw); the prediction of that reward is made from
        h_{t-1}, the state that chose the action, and the action. At a reset the error is 0. The gates
        read the error detached: only the auxiliary loss trains the predictor."""
        if self.reward_predictor is None:
            return z, None
        a = self.surprise_action_dim
        pred = self.reward_predictor(torch.cat([h, x[:, -a - 1:-1]], dim=-1)).squeeze(-1)  # (B,)
        delta = torch.where(reset, torch.zeros_like(pred), x[:, -1] - pred)  # (B,)
        feat = torch.stack([delta, delta.abs()], dim=-1).detach()  # (B, 2)
        n = self.slots  # the forget logits are the projection's last N outputs
        return torch.cat([z[:, :-n], z[:, -n:] + self.surprise_gates(feat)], dim=-1), delta

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        p = self.memory0
        device = p.device if device is None else torch.device(device)
        h = torch.zeros(batch_size, 1, self.hidden_size, device=device, dtype=p.dtype)
        # Detached: rollout buffers store states; memory0 learns through resets in forward.
        mem = p.detach().to(device).unsqueeze(0).expand(batch_size, -1, -1).clone()  # (B, N, W)
        return h, h.clone(), mem

    def step(self, x: Tensor, state: State, reset: Tensor, head_x: Tensor | None = None) -> tuple[Tensor, State]:
        """One step of ``_step_loop``'s math in fewer ops: reset ops only where an env resets,
        the memory update as one ``addcmul``, the LSTM update as one ``torch.lstm_cell`` on [x; m].
        ``head_x`` (B, *): what the memory heads read instead of x (None: x)."""
        h, c, mem = state[0][:, 0], state[1][:, 0], state[2]  # (B, H), (B, H), (B, N, W)
        if may_reset(reset):
            keep = (~reset).to(x.dtype).unsqueeze(-1)  # (B, 1); initial h, c are zero
            h, c = h * keep, c * keep
            mem = torch.where(reset[:, None, None], self.memory0.to(x.dtype), mem)
        heads = self.memory_heads
        z = heads.from_x(x if head_x is None else head_x)
        z = z + heads.from_h(h) if heads.from_h is not None else z
        z, _ = self._surprise(z, h, x, reset)
        write, value, key, beta, log_f = heads.split(z)
        if log_f is not None:
            mem = log_f.exp().unsqueeze(-1) * mem  # (B, N, W)
        mem = torch.addcmul(mem, write.unsqueeze(-1), value.unsqueeze(-2))  # + w vᵀ
        m = read(content_weights(key, mem, beta), mem)  # (B, K*W)
        rnn = self.controller
        h, c = torch.lstm_cell(
            torch.cat([x, m], dim=-1), (h, c), rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
        )
        return h, (h.unsqueeze(1), c.unsqueeze(1), mem)

    def _step_loop(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool, head_x: Tensor | None = None):
        """Step by step over T: the reference semantics of every mode. ``head_x`` (T, B, *): what the
        memory heads read instead of x (None: x). Returns the state's (h, c, M) only."""
        T, B, I = x.shape
        h, c, mem = state[0][:, 0], state[1][:, 0], state[2]  # (B, H), (B, H), (B, N, W)
        mem0 = self.memory0.to(x.dtype).unsqueeze(0).expand(B, -1, -1)  # (B, N, W)
        keep = (~reset).to(x.dtype).unsqueeze(-1).unbind(0)  # T x (B, 1); initial h, c are zero
        rnn = self.controller
        w_x, w_m = rnn.weight_ih_l0[:, :I], rnn.weight_ih_l0[:, I:]
        # unbind, not gates_x[t]: each indexing op's backward would allocate a full (T, B, .) gradient (O(T^2))
        gates_x = F.linear(x, w_x, rnn.bias_ih_l0 + rnn.bias_hh_l0).unbind(0)  # T x (B, 4H)
        heads = self.memory_heads
        z_x = heads.from_x(x if head_x is None else head_x).unbind(0)  # T x (B, Z)
        outs, diags = [], []
        for t in range(T):
            h, c = h * keep[t], c * keep[t]
            mem = torch.where(reset[t][:, None, None], mem0, mem)
            z = z_x[t] + heads.from_h(h) if heads.from_h is not None else z_x[t]
            z, delta = self._surprise(z, h, x[t], reset[t])
            write, value, key, beta, log_f = heads.split(z)
            added = write.unsqueeze(-1) * value.unsqueeze(-2)  # (B, N, W)
            mem = log_f.exp().unsqueeze(-1) * mem + added if log_f is not None else mem + added
            weights = content_weights(key, mem, beta)  # (B, K, N)
            m = read(weights, mem)  # (B, K*W)
            gates = gates_x[t] + F.linear(m, w_m) + F.linear(h, rnn.weight_hh_l0)  # (B, 4H)
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
            if diagnostics:
                d = {"read_weights": weights, "write_weights": write}
                if log_f is not None:
                    d["forget"] = log_f.exp()
                if delta is not None:
                    d["surprise"] = delta
                diags.append(d)
        out = torch.stack(outs, dim=0)  # (T, B, H)
        new_state = (h.unsqueeze(1), c.unsqueeze(1), mem)
        if diagnostics:
            return out, new_state, stack_diagnostics(diags)
        return out, new_state


class MetaLSTMCell(MemoryLSTMBase):
    """``meta-lstm``: the document's gated cell over an additive-write memory.

    Options: ``slots`` N (32), ``width`` W (32), ``heads`` read heads (1).
    Stepped in a Python loop: its reads and writes depend on h_{t-1}.
    Diagnostics: ``read_weights`` (T, B, K, N), ``write_weights`` (T, B, N).
    """

    def __init__(self, input_size: int, hidden_size: int, slots: int = 32, width: int = 32, heads: int = 1) -> None:
        super().__init__(input_size, hidden_size, slots, width, heads, forget=False, heads_read_h=True)

    def forward(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool = False):
        return self._step_loop(x, state, reset, diagnostics)
