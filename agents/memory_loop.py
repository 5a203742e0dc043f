"""The step loop that MANN and NTM share: an LSTM controller reading ``heads`` vectors from a memory.

Per step t, with reads r_{t-1} from the previous step feeding the controller:

    h_t, c_t      = LSTM([x_t; r_{t-1}], h_{t-1}, c_{t-1})
    memory_t, r_t = memory_step(h_t, memory_{t-1})        (the cell's own addressing and write)
    out_t         = tanh(W_o [h_t; r_t])

State ``(h, c, *memory, r)``, batch first: h, c (B, C); r (B, heads*W); the
cell's memory tensors in between. A reset step restores the cell's reset state
(:meth:`MemoryLoopCell.reset_state`) for the envs that reset.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn

from metarl.agents.base import Cell, State, masked_reset, stack_diagnostics
from metarl.agents.basic import LSTMController


class MemoryLoopCell(Cell):
    """Base of the step-loop memory cells (``mann``, ``ntm``); see the module docstring.

    Subclasses call :meth:`build_controller` then create ``self.head`` and
    :meth:`build_output` (in that order, which fixes the parameters' init and
    checkpoint order), and implement :meth:`reset_state` and :meth:`memory_step`.
    """

    graph_safe = False  # one host sync per call (which steps reset)

    def build_controller(self, slots: int, width: int, heads: int, controller_size: int | None) -> None:
        """The memory's shape and the LSTM controller, whose extra input is the previous reads (heads*W)."""
        self.slots, self.width, self.heads = slots, width, heads
        self.controller_size = controller_size or self.hidden_size
        self.controller = LSTMController(self.input_size, heads * width, self.controller_size)

    def build_output(self) -> None:
        """The output layer over [h; r]."""
        self.output = nn.Linear(self.controller_size + self.heads * self.width, self.hidden_size)

    def reset_state(self, batch_size: int, device: torch.device | str) -> State:
        """The state a reset step restores (differentiable where the cell learns its initial memory)."""
        return self.initial_state(batch_size, device)

    @abstractmethod
    def memory_step(self, h: Tensor, memory: State) -> tuple[State, Tensor, dict[str, Tensor]]:
        """One step of the cell's memory: h (B, C), memory (the state between c and r) ->
        (new memory, reads r (B, heads*W), diagnostics of this step)."""

    def forward(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool = False):
        T, B, _ = x.shape
        initial: State | None = None  # built on the first reset only
        # Input projection hoisted out of the loop; unbind (not x_proj[t]) keeps backward O(T).
        x_proj = self.controller.project(x).unbind(0)  # T x (B, 4C)
        any_reset = reset.any(dim=1).tolist()  # one host sync; most steps reset nobody
        hs, rs, diag = [], [], []
        for t in range(T):
            if any_reset[t]:
                initial = self.reset_state(B, x.device) if initial is None else initial
                state = masked_reset(state, initial, reset[t])
            h, c, *memory, r = state
            h, c = self.controller.step(x_proj[t], r, h, c)
            memory, r, step_diag = self.memory_step(h, tuple(memory))
            state = (h, c, *memory, r)
            hs.append(h)
            rs.append(r)
            if diagnostics:
                diag.append(step_diag)
        out = torch.tanh(self.output(torch.cat([torch.stack(hs), torch.stack(rs)], dim=-1)))  # (T, B, H)
        if diagnostics:
            return out, state, stack_diagnostics(diag)
        return out, state
