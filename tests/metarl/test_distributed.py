"""DDP learner: every parameter gets a gradient, and DDP's average equals the manual one (2 gloo ranks)."""

import copy

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from metarl.agents import AgentConfig, cells, make_policy
from metarl.buffer import RolloutBuffer
from metarl.config import PPOConfig
from metarl.distributed import EvaluateForward, ddp_learner
from metarl.ppo import ppo_loss

OBS, ACT, T, N, L = 6, 2, 8, 4, 4
DDP_CELLS = ("gru", "mann", "forget-memory")


def _filled_buffer(policy: torch.nn.Module, seed: int) -> RolloutBuffer:
    """A (T, N) rollout of ``policy`` on random observations, with random advantages and returns."""
    g = torch.Generator().manual_seed(seed)
    buf = RolloutBuffer(T, N, OBS, ACT, L)
    buf.obs.copy_(torch.randn(T, N, OBS, generator=g))
    buf.resets[0] = True
    state = policy.initial_state(N)
    with torch.no_grad():
        for t in range(T):
            buf.store_state(t, state)
            out = policy.act(buf.obs[t], state, buf.resets[t])
            buf.actions[t], buf.log_probs[t], buf.values[t] = out.action, out.log_prob, out.value
            state = out.state
    buf.advantages.copy_(torch.randn(T, N, generator=g))
    buf.returns.copy_(torch.randn(T, N, generator=g))
    return buf


@pytest.mark.parametrize("cell", cells())
def test_every_parameter_gets_a_gradient_from_the_ppo_loss(cell):
    """Why DDP runs with find_unused_parameters=False: an unused parameter would make it fail."""
    torch.manual_seed(0)
    policy = make_policy(AgentConfig(cell=cell, hidden_size=8, encoder_sizes=[8]), OBS, ACT)
    buf = _filled_buffer(policy, seed=1)
    mb = next(buf.minibatches(1, torch.Generator().manual_seed(0)))
    terms = ppo_loss(*EvaluateForward(policy)(mb.obs, mb.state0, mb.resets, mb.actions), mb, PPOConfig())
    terms.loss.backward()
    missing = [name for name, p in policy.named_parameters() if p.grad is None]
    assert missing == []


def _ddp_vs_manual(rank: int, world: int, init_file: str, out_dir: str) -> None:
    """One rank: ppo_update through the DDP learner, and again averaging gradients by hand."""
    from metarl.ppo import ppo_update

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = {}
        for cell in DDP_CELLS:
            torch.manual_seed(0)  # same initial parameters on every rank
            ddp_policy = make_policy(AgentConfig(cell=cell, hidden_size=8, encoder_sizes=[8]), OBS, ACT)
            manual_policy = copy.deepcopy(ddp_policy)
            initial = copy.deepcopy(ddp_policy.state_dict())
            buf = _filled_buffer(ddp_policy, seed=100 + rank)  # each rank its own data
            cfg = PPOConfig(epochs=2, num_minibatches=2, bptt_len=L)

            learner = ddp_learner(ddp_policy, torch.device("cpu"))
            assert isinstance(learner, torch.nn.parallel.DistributedDataParallel)
            opt = torch.optim.Adam(ddp_policy.parameters(), lr=1e-2)
            ppo_update(ddp_policy, opt, buf, cfg, torch.Generator().manual_seed(rank), learner=learner)

            def average(grad: torch.Tensor) -> torch.Tensor:  # what the hand-rolled all-reduce did
                grad = grad.clone()
                dist.all_reduce(grad)
                return grad / world

            for p in manual_policy.parameters():
                p.register_hook(average)
            opt = torch.optim.Adam(manual_policy.parameters(), lr=1e-2)
            ppo_update(manual_policy, opt, buf, cfg, torch.Generator().manual_seed(rank))
            results[cell] = {"initial": initial, "ddp": ddp_policy.state_dict(), "manual": manual_policy.state_dict()}
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_learner_averages_gradients_like_the_manual_all_reduce(tmp_path):
    world = 2
    mp.spawn(_ddp_vs_manual, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    for cell in DDP_CELLS:
        r0 = ranks[0][cell]
        assert set(r0["ddp"]) == set(r0["initial"])  # the plain policy's keys: no "module." prefix
        moved = max(float((r0["ddp"][k] - r0["initial"][k]).abs().max()) for k in r0["initial"])
        assert moved > 1e-3, cell  # the update did change the parameters
        for k in r0["initial"]:
            assert torch.allclose(r0["ddp"][k], r0["manual"][k], rtol=0, atol=1e-6), (cell, k)
            for r in ranks[1:]:
                assert torch.equal(r[cell]["ddp"][k], r0["ddp"][k]), (cell, k)  # ranks identical
