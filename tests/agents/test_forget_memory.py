"""The forget-memory and meta-lstm cells and the gated scan behind them.

The generic Cell contract (step = sequence, exact resets, every parameter
gets a gradient, CUDA parity) is in test_cells.py; this file checks what is
particular to these cells: the parallel path equals its own step loop, the
memory update rules (additive vs per-slot forgetting), forget-gate gradients
in both write modes, and diagnostics ranges.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metarl.agents import make_cell
from metarl.agents.scan import gated_scan, gated_scan_loop

I, H, N, W = 6, 12, 8, 5


def build(name: str = "forget-memory", seed: int = 0, **options):
    torch.manual_seed(seed)
    options = {"slots": N, "width": W, **options}
    return make_cell(name, I, H, **options)


def resets(T: int, B: int) -> torch.Tensor:
    """Resets at 0, mid-chunk, on a chunk boundary, twice in a row, and at the end."""
    r = torch.zeros(T, B, dtype=torch.bool)
    r[0] = True
    r[5, 0] = True
    r[16] = True  # a chunk boundary for chunk_size 8 and 16
    r[17, 1] = True
    r[T - 1, B - 1] = True
    return r


def random_state(cell, B: int):
    h, c, mem = cell.initial_state(B)
    return torch.randn_like(h), torch.randn_like(c), mem + torch.randn_like(mem)


def assert_steps_equal_sequence(cell, x, state, reset):
    """``cell.step`` over x, one step at a time, gives the sequence call's outputs and final state;
    returns the sequence call's (out, state)."""
    with torch.no_grad():
        out, final = cell(x, state, reset)
        outs, s = [], state
        for t in range(x.shape[0]):
            o, s = cell.step(x[t], s, reset[t])
            outs.append(o)
    torch.testing.assert_close(torch.stack(outs), out, atol=1e-4, rtol=1e-4)
    for a, b in zip(s, final):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    return out, final


# --- the scan -------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 64])
def test_scan_matches_step_loop_values_and_gradients(chunk_size):
    torch.manual_seed(0)
    B, T = 3, 41
    z = torch.randn(B, T, N) * 4  # forget logits from nearly 0 to nearly 1
    w, v = torch.rand(B, T, N), torch.randn(B, T, W)
    m, m0 = torch.randn(B, N, W), torch.randn(N, W)
    r = resets(T, B).t()  # (B, T)
    leaves = [t.requires_grad_() for t in (z, w, v, m, m0)]

    def grads(fn):
        mem = fn(F.logsigmoid(z), w, v, r, m, m0)
        loss = (mem * torch.linspace(-1, 1, W)).square().sum()
        return mem, torch.autograd.grad(loss, leaves)

    mem_scan, g_scan = grads(lambda *a: gated_scan(*a, chunk_size=chunk_size))
    mem_loop, g_loop = grads(gated_scan_loop)
    torch.testing.assert_close(mem_scan, mem_loop, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_scan, g_loop):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_scan_is_finite_for_saturated_gates():
    torch.manual_seed(0)
    B, T = 2, 70
    z = (torch.randn(B, T, N) * 80).requires_grad_()  # log f down to about -200
    mem = gated_scan(F.logsigmoid(z), torch.rand(B, T, N), torch.randn(B, T, W), torch.rand(B, T) < 0.1,
                     torch.randn(B, N, W), torch.randn(N, W), chunk_size=32)
    (grad,) = torch.autograd.grad(mem.sum(), z)
    assert torch.isfinite(mem).all() and torch.isfinite(grad).all()


# --- parallel path vs its own step loop ---------------------------------------------


@pytest.mark.parametrize("chunk_size, scan", [(4, "chunked"), (16, "chunked"), (32, "chunked"), (16, "loop")])
def test_parallel_path_equals_step_loop_with_resets(chunk_size, scan):
    B, T = 3, 37  # T not a multiple of the chunk size
    cell = build(chunk_size=chunk_size, heads=2, scan=scan)
    x = torch.randn(T, B, I) * 2
    state = random_state(cell, B)
    reset = resets(T, B)
    out_p, state_p, diag_p = cell(x, state, reset, diagnostics=True)
    cell.parallel = False
    out_l, state_l, diag_l = cell(x, state, reset, diagnostics=True)
    torch.testing.assert_close(out_p, out_l, atol=1e-4, rtol=1e-4)
    for a, b in zip(state_p, state_l):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert diag_p.keys() == diag_l.keys()
    for k in diag_p:
        torch.testing.assert_close(diag_p[k], diag_l[k], atol=1e-4, rtol=1e-4)

    # Gradients agree too, forget gates included.
    grads = []
    for parallel in (True, False):
        cell.parallel = parallel
        cell.zero_grad()
        out, (h, c, mem) = cell(x, state, reset)
        (out.square().sum() + mem.sum()).backward()
        grads.append({n: p.grad.clone() for n, p in cell.named_parameters()})
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-4, rtol=1e-3, msg=n)


# --- memory update rules --------------------------------------------------------------


def _step_update(name: str, **options):
    """One step from a random memory: (previous memory, new memory, diagnostics) of env 0."""
    cell = build(name, **options)
    state = random_state(cell, 2)
    with torch.no_grad():
        _, new, diag = cell(torch.randn(1, 2, I), state, torch.zeros(1, 2, dtype=torch.bool), diagnostics=True)
    return state[2][0], new[2][0], {k: v[0, 0] for k, v in diag.items()}


@pytest.mark.parametrize("options", [{}, {"write_mode": "controller"}, {"parallel": False}])
def test_forget_memory_update_is_slot_forget_plus_rank_one_write(options):
    prev, new, diag = _step_update("forget-memory", **options)
    f, w = diag["forget"], diag["write_weights"]  # (N,)
    written = new - f[:, None] * prev  # (N, W) should be w v^T
    v = written / w[:, None]  # each row: the same value v
    torch.testing.assert_close(v, v[:1].expand_as(v), atol=1e-4, rtol=1e-4)
    assert v.abs().max() <= 1.0  # values are tanh
    assert ((f > 0) & (f < 1)).all()


def test_meta_lstm_update_is_additive_never_forgets():
    prev, new, diag = _step_update("meta-lstm")
    assert "forget" not in diag
    v = (new - prev) / diag["write_weights"][:, None]
    torch.testing.assert_close(v, v[:1].expand_as(v), atol=1e-4, rtol=1e-4)


def test_closed_forget_gates_erase_the_memory_and_open_ones_keep_it():
    cell = build()
    with torch.no_grad():
        bias = cell.memory_heads.from_x.bias
        bias[-N:] = -60.0  # forget gates shut: f = sigmoid(-60)
        bias[N] = -60.0  # write gate shut (outputs: N address logits, then the gate)
        _, state = cell(torch.zeros(3, 1, I), random_state(cell, 1), torch.zeros(3, 1, dtype=torch.bool))
        assert state[2].abs().max() < 1e-20, "a closed forget gate must drop what was stored"
        bias[-N:] = 60.0  # forget gates open: f = 1
        start = random_state(cell, 1)
        _, state = cell(torch.zeros(3, 1, I), start, torch.zeros(3, 1, dtype=torch.bool))
        torch.testing.assert_close(state[2], start[2], atol=1e-6, rtol=1e-6)


def test_forget_gates_start_near_remembering():
    cell = build(forget_init=0.9)
    with torch.no_grad():
        _, _, diag = cell(torch.zeros(4, 2, I), cell.initial_state(2), torch.zeros(4, 2, dtype=torch.bool),
                          diagnostics=True)
    torch.testing.assert_close(diag["forget"], torch.full_like(diag["forget"], 0.9), atol=1e-5, rtol=0)


# --- gradients and write modes --------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"write_mode": "controller"}, {"parallel": False}])
def test_gradients_reach_forget_gate_weights(options):
    cell = build(**options)
    T, B = 20, 2
    out, _ = cell(torch.randn(T, B, I), cell.initial_state(B), resets(T, B))
    out[-1].square().sum().backward()
    for layer in filter(None, (cell.memory_heads.from_x, cell.memory_heads.from_h)):
        g = layer.weight.grad[-N:]  # the forget-gate rows
        assert g.abs().sum() > 0, f"no gradient into forget gates of {layer}"
    assert cell.memory_heads.from_x.bias.grad[-N:].abs().sum() > 0
    assert cell.memory0.grad.abs().sum() > 0


def test_controller_mode_gates_depend_on_h_input_mode_gates_do_not():
    x = torch.randn(5, 2, I)
    no_reset = torch.zeros(5, 2, dtype=torch.bool)
    for mode, depends in (("input", False), ("controller", True)):
        cell = build(write_mode=mode)
        h, c, mem = cell.initial_state(2)
        with torch.no_grad():
            _, _, d1 = cell(x, (h, c, mem), no_reset, diagnostics=True)
            _, _, d2 = cell(x, (h + 1.0, c + 1.0, mem), no_reset, diagnostics=True)
        differs = not torch.allclose(d1["forget"], d2["forget"])
        assert differs == depends, mode
        assert differs == (not torch.allclose(d1["write_weights"], d2["write_weights"])), mode


def test_unknown_write_mode_or_scan_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"'controller'.*Valid: input, controller"):
        build(write_mode="controler")
    with pytest.raises(ValueError, match=r"'chunked'.*Valid: auto, chunked, loop"):
        build(scan="chunkd")


# --- diagnostics -----------------------------------------------------------------------


@pytest.mark.parametrize("name, options", [("forget-memory", {}), ("forget-memory", {"write_mode": "controller"}),
                                           ("meta-lstm", {})])
def test_diagnostics_shapes_and_ranges(name, options):
    T, B, K = 20, 3, 2
    cell = build(name, heads=K, **options)
    with torch.no_grad():
        out, _, diag = cell(torch.randn(T, B, I), cell.initial_state(B), resets(T, B), diagnostics=True)
    rw, ww = diag["read_weights"], diag["write_weights"]
    assert rw.shape == (T, B, K, N) and ww.shape == (T, B, N)
    torch.testing.assert_close(rw.sum(-1), torch.ones(T, B, K), atol=1e-5, rtol=0)
    assert (rw >= 0).all() and (ww >= 0).all() and (ww.sum(-1) <= 1 + 1e-6).all()
    if name == "forget-memory":
        f = diag["forget"]
        assert f.shape == (T, B, N) and ((f > 0) & (f < 1)).all()
        assert f.std() > 0, "forget gates should vary with the input"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_parallel_path_on_cuda_matches_cpu_step_loop():
    B, T = 4, 70
    cell = build(chunk_size=32, scan="auto")  # auto: the chunked scan on CUDA
    x, reset = torch.randn(T, B, I), resets(T, B)
    state = random_state(cell, B)
    cell.parallel = False
    with torch.no_grad():
        out_cpu, _ = cell(x, state, reset)
    cell.parallel = True
    cell = cell.cuda()
    with torch.no_grad():
        out_gpu, _ = cell(x.cuda(), tuple(s.cuda() for s in state), reset.cuda())
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, atol=1e-4, rtol=1e-4)
    assert math.isfinite(out_gpu.abs().max().item())


# --- the fixed-gate ablation (learn_forget=False) -------------------------------------

FIXED_VARIANTS = [{}, {"scan": "chunked", "chunk_size": 8}, {"parallel": False}, {"write_mode": "controller"}]


@pytest.mark.parametrize("options", FIXED_VARIANTS)
def test_fixed_forget_gates_are_exactly_one_and_fed_by_no_parameter(options):
    T, B, K = 20, 3, 2
    cell = build(heads=K, learn_forget=False, **options)
    learned = build(heads=K, **options)
    # the head projections lose exactly the N forget rows; nothing else changes shape
    for name, p in learned.named_parameters():
        q = dict(cell.named_parameters())[name]
        rows = N if name.startswith("memory_heads.") else 0
        assert q.shape == (p.shape[0] - rows, *p.shape[1:]), name
    x = torch.randn(T, B, I, requires_grad=True)
    out, (h, c, mem), diag = cell(x, random_state(cell, B), resets(T, B), diagnostics=True)
    assert torch.equal(diag["forget"], torch.ones(T, B, N))
    assert not diag["forget"].requires_grad, "a fixed gate must not depend on any parameter"
    (out.square().sum() + mem.sum()).backward()
    missing = [n for n, p in cell.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"the rest of the cell still learns: {missing}"


@pytest.mark.parametrize("options", [{}, {"parallel": False}, {"write_mode": "controller"}])
def test_fixed_forget_gates_make_the_update_purely_additive(options):
    prev, new, diag = _step_update("forget-memory", learn_forget=False, **options)
    assert torch.equal(diag["forget"], torch.ones(N))
    v = (new - prev) / diag["write_weights"][:, None]  # M_t - M_{t-1} = w vᵀ: nothing forgotten
    torch.testing.assert_close(v, v[:1].expand_as(v), atol=1e-4, rtol=1e-4)
    # no input can make a fixed-gate cell forget (a learned cell shuts its gates at -60, see above)
    cell = build(learn_forget=False)
    with torch.no_grad():
        cell.memory_heads.from_x.bias[N] = -60.0  # write gate shut
        start = random_state(cell, 1)
        _, state = cell(torch.randn(3, 1, I) * 10, start, torch.zeros(3, 1, dtype=torch.bool))
    torch.testing.assert_close(state[2], start[2], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("options", FIXED_VARIANTS)
def test_fixed_forget_step_equals_forward_with_resets(options):
    T, B = 37, 3
    cell = build(heads=2, learn_forget=False, **options)
    x, reset = torch.randn(T, B, I) * 2, resets(T, B)
    state = random_state(cell, B)
    out, _ = assert_steps_equal_sequence(cell, x, state, reset)
    if cell.write_mode == "input" and cell.parallel:  # the parallel path equals its own step loop too
        cell.parallel = False
        with torch.no_grad():
            out_loop, _ = cell(x, state, reset)
        torch.testing.assert_close(out_loop, out, atol=1e-4, rtol=1e-4)


def test_learn_forget_true_is_the_default_cell():
    x, reset = torch.randn(20, 2, I), resets(20, 2)
    default, explicit = build(seed=3), build(seed=3, learn_forget=True)
    for (n, p), (m, q) in zip(default.named_parameters(), explicit.named_parameters()):
        assert n == m and torch.equal(p, q)
    with torch.no_grad():
        torch.testing.assert_close(default(x, default.initial_state(2), reset)[0],
                                   explicit(x, explicit.initial_state(2), reset)[0], atol=0, rtol=0)
    with pytest.raises(ValueError, match="learn_forget must be True or False"):
        build(learn_forget="no")


def test_learn_forget_reaches_the_cell_from_the_config():
    from metarl.agents import make_policy
    from metarl.config import config_from_dict

    small = {"slots": 4, "width": 3}
    for options, learned in (({**small, "learn_forget": False}, False),  # flat
                             ({"forget-memory": {**small, "learn_forget": False}}, False),  # keyed by cell
                             (small, True)):
        cfg = config_from_dict({"agent": {"cell": "forget-memory", "hidden_size": 16, "encoder_sizes": [],
                                          "cell_options": options}})
        policy = make_policy(cfg.agent, obs_dim=7, action_dim=2)
        assert policy.cell.learn_forget is learned and policy.cell.memory_heads.learn_forget is learned


# --- no controller (controller="linear"): the memory is the only state ---------------------


@pytest.mark.parametrize("learn_forget", [True, False])
def test_linear_controller_sequence_equals_steps_and_carries_nothing_but_memory(learn_forget):
    """The chunked scan over a whole sequence equals stepping it one step at a time, and the
    state's h and c are never read: only M carries anything from one step to the next."""
    T, B = 20, 3
    cell = build(controller="linear", scan="chunked", chunk_size=8, learn_forget=learn_forget)
    x, reset = torch.randn(T, B, I), resets(T, B)
    with torch.no_grad():
        out, (h, c, mem) = cell(x, cell.initial_state(B), reset)
        state, outs = cell.initial_state(B), []
        for t in range(T):
            o, state = cell.step(x[t], state, reset[t])
            outs.append(o)
        torch.testing.assert_close(torch.stack(outs), out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state[2], mem, atol=1e-5, rtol=1e-5)
        assert torch.equal(c, torch.zeros_like(c)) and torch.equal(h[:, 0], out[-1])
        noisy = (torch.randn_like(h) * 5, torch.randn_like(c) * 5, mem)
        after, _ = cell(x[:4], noisy, torch.zeros(4, B, dtype=torch.bool))
        before, _ = cell(x[:4], (h, c, mem), torch.zeros(4, B, dtype=torch.bool))
    torch.testing.assert_close(after, before)


def test_linear_controller_has_no_lstm_and_every_parameter_learns():
    cell = build(controller="linear")
    assert not hasattr(cell, "controller") and not cell.graph_safe
    x, reset = torch.randn(12, 2, I), torch.zeros(12, 2, dtype=torch.bool)
    reset[0] = True  # the learned initial memory enters at a reset
    out, _ = cell(x, cell.initial_state(2), reset)
    out.square().sum().backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_linear_controller_output_depends_on_earlier_inputs_only_through_memory():
    """Without a controller, an earlier input changes a later output only through M: with the
    write strength forced to 0 and the gates fixed at 1 (the memory then never changes), the
    outputs are a function of the current input."""
    cell = build(controller="linear", learn_forget=False)
    x = torch.randn(6, 1, I)
    x2 = x.clone()
    x2[0] += 3.0
    reset = torch.zeros(6, 1, dtype=torch.bool)
    with torch.no_grad():
        a, _ = cell(x, cell.initial_state(1), reset)
        b, _ = cell(x2, cell.initial_state(1), reset)
        assert (a[-1] - b[-1]).abs().max() > 1e-4  # remembered through the slots
        gate = cell.memory_heads.sizes[0]  # the write-strength row follows the address rows
        cell.memory_heads.from_x.bias[gate] = -1e4  # write strength σ(-1e4) = 0: nothing is stored
        a, _ = cell(x, cell.initial_state(1), reset)
        b, _ = cell(x2, cell.initial_state(1), reset)
    torch.testing.assert_close(a[1:], b[1:])


def test_linear_controller_needs_input_mode_and_unknown_names_are_listed():
    with pytest.raises(ValueError, match="controller 'linear' needs write_mode 'input'"):
        build(controller="linear", write_mode="controller")
    with pytest.raises(ValueError, match=r"unknown controller 'lineer'\. Did you mean 'linear'\? Valid: lstm, linear"):
        build(controller="lineer")


# --- heads that read the change of the input (head_input="delta") ---------------------------

DELTA_VARIANTS = [{}, {"scan": "chunked", "chunk_size": 8}, {"parallel": False}, {"write_mode": "controller"},
                  {"controller": "linear"}, {"learn_forget": False}]


@pytest.mark.parametrize("options", DELTA_VARIANTS)
def test_delta_heads_sequence_equals_steps_and_carry_the_last_input(options):
    T, B = 37, 3
    cell = build(heads=2, head_input="delta", **options)
    x, reset = torch.randn(T, B, I) * 2, resets(T, B)
    reset[0] = False  # the first step continues a state whose x_{t-1} is random
    h, c, mem, _ = cell.initial_state(B)
    state = (torch.randn_like(h), torch.randn_like(c), mem + torch.randn_like(mem), torch.randn(B, I))
    _, final = assert_steps_equal_sequence(cell, x, state, reset)
    assert len(final) == 4 and torch.equal(final[3], x[-1])


def test_delta_forget_gates_see_the_previous_input_except_at_a_reset():
    """In input mode a gate reads x_t alone; with delta heads it also reads x_t - x_{t-1}, so the
    same x_t after a different x_{t-1} closes the gates differently, unless a trial starts there."""
    T, B = 4, 1
    x = torch.randn(T, B, I)
    other = x.clone()
    other[1] += 2.0  # x_1 differs; x_2 and x_3 are the same
    for head_input, differs in (("x", False), ("delta", True)):
        cell = build(head_input=head_input)
        reset = torch.zeros(T, B, dtype=torch.bool)
        with torch.no_grad():
            f = cell(x, cell.initial_state(B), reset, diagnostics=True)[2]["forget"]  # (T, B, N)
            g = cell(other, cell.initial_state(B), reset, diagnostics=True)[2]["forget"]
            assert (f[2] - g[2]).abs().max() > 1e-4 if differs else torch.equal(f[2], g[2]), head_input
            torch.testing.assert_close(f[3], g[3])  # x_3 - x_2 is the same in both
            reset[2] = True  # a trial starting at step 2: no change seen yet, x_1 is not read
            f = cell(x, cell.initial_state(B), reset, diagnostics=True)[2]["forget"]
            g = cell(other, cell.initial_state(B), reset, diagnostics=True)[2]["forget"]
        torch.testing.assert_close(f[2], g[2])


def test_delta_heads_with_fixed_gates_still_never_forget_and_every_parameter_learns():
    T, B = 20, 3
    cell = build(head_input="delta", learn_forget=False)
    assert cell.memory_heads.from_x.in_features == 2 * I
    out, (h, c, mem, last), diag = cell(torch.randn(T, B, I), cell.initial_state(B), resets(T, B), diagnostics=True)
    assert torch.equal(diag["forget"], torch.ones(T, B, N)) and not diag["forget"].requires_grad
    (out.square().sum() + mem.sum()).backward()
    missing = [n for n, p in cell.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_unknown_head_input_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown head_input 'delt'\. Did you mean 'delta'\? Valid: x, delta"):
        build(head_input="delt")
