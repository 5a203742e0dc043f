"""``forget-memory``: the Meta-LSTM controller over a memory with learned forget gates.

The project's thesis: what to forget is learned. Each of the N memory slots has
a forget gate computed by the network:

    M_t = diag(f_t) M_{t-1} + w_t v_tᵀ,      f_t ∈ (0, 1)^N

Write modes (option ``write_mode``):

- ``"input"`` (default, fast): write weights w_t, values v_t, forget gates f_t
  and read keys/sharpness all come from x_t alone, so the memory sequence does
  not depend on the controller. Every M_t of a sequence then comes from the
  chunkwise parallel scan (:mod:`metarl.agents.scan`; on CPU, by default, from
  a memory-only step loop, which is cheaper there: option ``scan``), each step reads its
  M_t (after that step's forget and write) by content addressing, and the
  controller runs as ONE fused ``nn.LSTM`` over ``[x_t; m_t]`` (the document's
  V m_t term) via ``run_fused_rnn``. ``parallel=False`` runs the same math as a
  step loop (the reference the parallel path is tested against); a single
  step (T=1, as in rollouts) always uses it.
- ``"controller"``: write/forget/read heads read ``[x_t; h_{t-1}]`` (the classic
  MANN coupling), stepped in a loop.

Why content reads of M_t (not M_{t-1}): in input mode the step's own write is
already in M_t, so a value can be stored and found in the same step; in both
modes the read comes after the write, exactly as in the step loop.

Cost: reading every M_t by content materialises (B, chunk, N, W) memories per
chunk, and autograd keeps them for the backward pass: T*B*N*W floats (82 MB
for T=500, B=40, 32x32 in float32). ``chunk_size`` (32) bounds the per-chunk
work tensors: the (B, C, N, C) decay matrix and the (B, C, N, W) memories; a
larger chunk means fewer sequential steps but more work per step (C^2 terms).

The forget-gate bias starts at logit(``forget_init``) (σ(b) = 0.9): slots start
out remembering and learn when to let go.

Ablation (option ``learn_forget=False``, config ``agent.cell_options:
{learn_forget: false}``): every forget gate is fixed at exactly 1, so the
memory only accumulates, M_t = M_{t-1} + w_t v_tᵀ, like the additive
``meta-lstm`` write. The forget rows are dropped from the head projection:
no parameter feeds the gates (none to train, none to get a gradient), and
``forget_init`` is unused. The sequence paths (scan or loop) and ``step``
run the same math with log f = 0, and the diagnostics' ``forget`` is exactly 1.

No controller (option ``controller="linear"``, input mode only): the LSTM is replaced by
a stateless readout, out_t = tanh(L [x_t; m_t]), so the slot memory is the cell's only
state. On the toy tasks the LSTM controller alone holds the goal (docs/results.md,
"Learned forgetting"), so how the memory forgets cannot matter there; without it,
whatever the policy remembers across attempts passes through the forget gates, which is
the setting that tests them. The state keeps its (h, c, M) layout; h is the last output
and c stays zero (neither is read back).

Heads that see change (option ``head_input="delta"``): the write, forget and read heads
read ``[x_t; x_t - x_{t-1}]`` instead of x_t, so a forget gate can close on a change in
what comes in (the reward input dropping after an unannounced task switch) rather than on
the current input alone, which in input mode cannot tell a reward that fell from one that
was always low. x_{t-1} is carried as a fourth state tensor (B, I); at a reset step it is
taken to be x_t (no change yet). The controller still reads x_t.

Surprise gates (option ``surprise=True``): the forget gates also read the reward-prediction
error. A small network predicts the previous step's reward from h_{t-1} (the state that chose
the action) and the action a_{t-1}; when r_{t-1} arrives in x_t, δ_t = r_{t-1} - r̂_{t-1}, and
each slot's forget logit gains u_n δ_t + v_n |δ_t| (u, v start at 0, so the cell starts as the
plain one). A missing reward where one was expected is then a signal a gate can close on, which
none of the other head inputs carries (docs/results.md, "Learned forgetting": no gate learned
to react to a switch from x_t, from h_{t-1} or from x_t - x_{t-1}). The predictor is trained only
by an auxiliary loss, δ² (``ppo.surprise_coef``; the gates read δ detached). The policy appends
the raw previous action and reward to the cell's input (its last 1 + A dims; ``action_dim`` A);
the gates depend on h_{t-1}, so the cell steps in a loop, as in controller mode.
"""

from __future__ import annotations

import difflib

import torch
from torch import Tensor, nn

from metarl.agents.addressing import content_weights, read
from metarl.agents.base import State, run_fused_rnn
from metarl.agents.meta_lstm import MemoryLSTMBase
from metarl.agents.scan import gated_scan_chunks, gated_scan_loop

WRITE_MODES = ("input", "controller")
#: How the input-driven mode computes all memories of a sequence before the fused controller.
SCANS = ("auto", "chunked", "loop")
#: What reads the memory: the Meta-LSTM, or a stateless linear readout (the memory is then the only state).
CONTROLLERS = ("lstm", "linear")
#: What the write, forget and read heads read: x_t, or x_t beside its change since the last step.
HEAD_INPUTS = ("x", "delta")


def _check_choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    """A one-line ValueError naming the closest valid value, unless ``value`` is one of ``valid``."""
    if value not in valid:
        close = difflib.get_close_matches(value, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {option} {value!r}.{hint} Valid: {', '.join(valid)}")


class ForgetMemoryCell(MemoryLSTMBase):
    """Meta-LSTM + slot memory with learned per-slot forget gates.

    Options: ``slots`` N (32), ``width`` W (32), ``heads`` read heads K (1),
    ``write_mode`` ("input" | "controller"), ``parallel`` (True: chunkwise scan
    in input mode), ``chunk_size`` (32 steps per scan chunk), ``forget_init``
    (0.9: initial σ of the forget-gate bias), ``scan`` ("auto" | "chunked" |
    "loop": how input mode computes every M_t before the fused controller;
    "auto" = the chunkwise scan on accelerators, a plain memory-only step loop
    on CPU, where it measured faster (README, "Measured"; ``bench/cells.py``)), ``learn_forget`` (True; False:
    gates fixed at 1 and no forget-gate parameters, the ablation above), ``controller``
    ("lstm" | "linear": no controller state, the readout above; input mode only), ``head_input``
    ("x" | "delta": the heads read [x_t; x_t - x_{t-1}], above), ``surprise`` (False; True: forget
    gates that read the reward-prediction error, above; needs ``action_dim``, which the policy sets).
    State: h, c (B, 1, H), M (B, N, W), and with ``head_input="delta"`` x_{t-1} (B, I).
    Diagnostics: ``read_weights`` (T, B, K, N), ``write_weights`` (T, B, N), ``forget`` (T, B, N): the gate
    values computed at each step (at a reset step they act on the initial memory); with ``surprise``
    also ``surprise`` (T, B): the reward-prediction error δ_t (with its gradient: the auxiliary loss's input).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        slots: int = 32,
        width: int = 32,
        heads: int = 1,
        write_mode: str = "input",
        parallel: bool = True,
        chunk_size: int = 32,
        forget_init: float = 0.9,
        scan: str = "auto",
        learn_forget: bool = True,
        controller: str = "lstm",
        head_input: str = "x",
        surprise: bool = False,
        action_dim: int = 0,
    ) -> None:
        _check_choice("controller", controller, CONTROLLERS)
        _check_choice("head_input", head_input, HEAD_INPUTS)
        _check_choice("scan", scan, SCANS)
        _check_choice("write_mode", write_mode, WRITE_MODES)
        if controller == "linear" and write_mode != "input":
            raise ValueError(f"controller 'linear' needs write_mode 'input' (the heads of write_mode "
                             f"{write_mode!r} read the controller's state, which it does not have)")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if not isinstance(learn_forget, bool):
            raise ValueError(f"learn_forget must be True or False, got {learn_forget!r}")
        if surprise and (not learn_forget or controller != "lstm" or head_input != "x"):
            raise ValueError("surprise needs learn_forget true (gates to drive), controller 'lstm' and "
                             f"head_input 'x', got {learn_forget}, {controller!r}, {head_input!r}")
        if surprise and not 1 <= action_dim < input_size:
            raise ValueError(f"surprise needs action_dim in [1, {input_size - 1}] (the policy sets it: the previous "
                             f"action's width in the cell's input), got {action_dim}")
        if not 0.0 < forget_init < 1.0:
            raise ValueError(f"forget_init must be in (0, 1), got {forget_init}")
        super().__init__(
            input_size,
            hidden_size,
            slots,
            width,
            heads,
            forget=True,
            heads_read_h=write_mode == "controller",
            forget_init=forget_init,
            learn_forget=learn_forget,
            head_input_size=2 * input_size if head_input == "delta" else input_size,
        )
        self.learn_forget = learn_forget
        self.head_input = head_input
        self.write_mode = write_mode
        self.parallel = parallel
        self.chunk_size = chunk_size
        self.scan = scan
        self.controller_kind = controller
        self.surprise = surprise
        if surprise:  # predicts r_{t-1} from [h_{t-1}; a_{t-1}]; u, v start at 0 (the plain cell)
            self.reward_predictor = nn.Sequential(nn.Linear(hidden_size + action_dim, 64), nn.Tanh(), nn.Linear(64, 1))
            self.surprise_gates = nn.Linear(2, slots, bias=False)
            nn.init.zeros_(self.surprise_gates.weight)
            self.surprise_action_dim = action_dim
        if controller == "linear":
            del self.controller  # unused: no parameter without a gradient
            self.readout = nn.Linear(input_size + heads * width, hidden_size)
            self.graph_safe = False  # not measured under CUDA graph capture

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        state = super().initial_state(batch_size, device)
        if self.head_input == "delta":  # x_{t-1}: never read at a trial's first step (a reset)
            state = (*state, state[0].new_zeros(batch_size, self.input_size))  # (B, I)
        return state

    def _head_x(self, x: Tensor, state: State, reset: Tensor) -> Tensor | None:
        """What the heads read over x (T, B, I): None for x itself, or [x_t; x_t - x_{t-1}] (T, B, 2I)."""
        if self.head_input == "x":
            return None
        prev = torch.cat([state[3].unsqueeze(0), x[:-1]], dim=0)  # (T, B, I): x_{t-1}
        prev = torch.where(reset.unsqueeze(-1), x, prev)  # at a reset: no change yet
        return torch.cat([x, x - prev], dim=-1)  # (T, B, 2I)

    def _carry(self, state: State, x_last: Tensor) -> State:
        """The (h, c, M) of a path, plus x_{t-1} for the next call when the heads read change."""
        return (*state[:3], x_last) if self.head_input == "delta" else state

    def forward(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool = False):
        head_x = self._head_x(x, state, reset)
        if self.controller_kind == "linear":  # no controller to step: the memory path is the whole cell
            result = self._parallel(x, state, reset, diagnostics, head_x)
        elif self.write_mode == "controller" or self.surprise or not self.parallel or x.shape[0] == 1:
            result = self._step_loop(x, state, reset, diagnostics, head_x)
        else:
            result = self._parallel(x, state, reset, diagnostics, head_x)
        out, new_state, *diag = result
        return (out, self._carry(new_state, x[-1]), *diag)

    def step(self, x: Tensor, state: State, reset: Tensor) -> tuple[Tensor, State]:
        if self.controller_kind == "linear":
            out, state = self.forward(x.unsqueeze(0), state, reset.unsqueeze(0))
            return out.squeeze(0), state
        head_x = self._head_x(x.unsqueeze(0), state, reset.unsqueeze(0))
        out, new_state = super().step(x, state, reset, None if head_x is None else head_x[0])
        return out, self._carry(new_state, x)

    def _parallel(self, x: Tensor, state: State, reset: Tensor, diagnostics: bool, head_x: Tensor | None = None):
        """Input-driven mode: scan the memory for all T, read it, then one fused LSTM (or the linear readout)."""
        h, c, mem = state[:3]
        heads_in = x if head_x is None else head_x  # (T, B, I) or (T, B, 2I)
        heads = self.memory_heads.split(self.memory_heads.from_x(heads_in.transpose(0, 1)))  # batch first
        write, value, key, beta, log_f = heads
        # write (B, T, N), value (B, T, W), key (B, T, K, W), beta (B, T, K), log_f (B, T, N)
        mem0 = self.memory0.to(x.dtype)  # (N, W)
        reads, weights = [], []
        chunked = self.scan == "chunked" or (self.scan == "auto" and x.device.type != "cpu")
        if chunked:
            scan = gated_scan_chunks(log_f, write, value, reset.t(), mem, mem0, self.chunk_size)
        else:  # the memory alone stepped (cheap per step on CPU), read in chunks all the same
            all_mem = gated_scan_loop(log_f, write, value, reset.t(), mem, mem0)  # (B, T, N, W)
            scan = ((0, 0, m) for m in all_mem.split(self.chunk_size, dim=1))
        keys, betas = key.split(self.chunk_size, dim=1), beta.split(self.chunk_size, dim=1)
        for (_, _, chunk), k, bt in zip(scan, keys, betas):  # chunk (B, C, N, W)
            w = content_weights(k, chunk, bt)  # (B, C, K, N)
            reads.append(read(w, chunk))  # (B, C, K*W)
            weights.append(w)
            mem = chunk[:, -1]  # (B, N, W)
        m = torch.cat(reads, dim=1).transpose(0, 1)  # (T, B, K*W)
        if self.controller_kind == "linear":
            out = torch.tanh(self.readout(torch.cat([x, m], dim=-1)))  # (T, B, H)
            h, c = out[-1].unsqueeze(1), torch.zeros_like(c)  # (B, 1, H): kept for the state's layout only
        else:
            zeros = torch.zeros_like(h)
            out, (h, c) = run_fused_rnn(self.controller, torch.cat([x, m], dim=-1), (h, c), (zeros, zeros), reset)
        new_state = (h, c, mem)
        if diagnostics:
            diag = {
                "read_weights": torch.cat(weights, dim=1).transpose(0, 1),  # (T, B, K, N)
                "write_weights": write.transpose(0, 1),  # (T, B, N)
                "forget": log_f.exp().transpose(0, 1),  # (T, B, N)
            }
            return out, new_state, diag
        return out, new_state
