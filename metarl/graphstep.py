"""One rollout step of the policy, replayed as a CUDA graph.

Why: a recurrent policy step is ~100 small kernels (encoder, cell, heads,
sampling). On a GPU it is bound by their launches, not by arithmetic: about as
long as stepping the Meta-World envs (README, "Known gaps"; ``bench/train.py``).
A CUDA graph replays all of them with one launch.

:class:`PolicyStepper` runs ``policy.act`` with the Gaussian noise given
(drawn outside, so replays need no RNG) through static input and output
tensors: copy the step's inputs in, replay, read the outputs. One graph per
``slot``: each env group of a pipelined collection keeps its own outputs. On CPU, or with
``graph=False``, the same static-tensor path runs eagerly: that is what the
CPU tests check, and what a cell that cannot be captured falls back to.

Outputs are the static tensors themselves: valid until the next call with the
same slot, so copy what you keep (the rollout buffer copies on store).
Parameters are captured by address; optimizer steps update them in place, so
a graph stays valid across updates. Capturing needs a cell without host syncs
(``Cell.graph_safe``; ``mann`` and ``ntm`` sync once per step and run eagerly).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from metarl.agents.policy import ActOutput

WARMUP_STEPS = 3  # eager runs on a side stream before capture (cuBLAS/cuDNN workspaces)


def act_with_noise(policy: nn.Module, obs: Tensor, state: tuple, reset: Tensor, noise: Tensor) -> ActOutput:
    """``policy.act`` with its Gaussian draw given: ``noise`` (B, A) standard normal.

    Same numbers as ``policy.act`` drawing that noise itself, so a step's noise
    can be drawn once for all envs, outside any graph, and actions do not
    depend on how envs are grouped.
    """
    return policy.act(obs, state, reset, noise=noise)


@dataclass
class _Static:
    """Static inputs and outputs of one slot, and its graph (None: eager)."""

    obs: Tensor  # (B, D)
    reset: Tensor  # (B,) bool
    noise: Tensor  # (B, A)
    state: tuple  # the cell's state tensors, batch first
    out: ActOutput | None = None
    graph: Any = None


class PolicyStepper:
    """Callable ``(obs, state, reset, noise) -> ActOutput`` over static tensors (see module doc)."""

    def __init__(self, policy: nn.Module, device: torch.device | str, graph: bool = True) -> None:
        self.policy = policy
        self.device = torch.device(device)
        cell_ok = getattr(policy.cell, "graph_safe", True)
        self.use_graph = graph and self.device.type == "cuda" and cell_ok
        self._static: dict[int, _Static] = {}
        self.fallback_reason: str | None = None if cell_ok else f"cell {type(policy.cell).__name__} syncs with the host"

    @property
    def graphed(self) -> bool:
        """True when every slot built so far replays a CUDA graph."""
        return self.use_graph and all(s.graph is not None for s in self._static.values())

    def _build(self, obs: Tensor, state: tuple, noise: Tensor) -> _Static:
        B = obs.shape[0]
        st = _Static(
            obs=torch.zeros_like(obs),
            reset=torch.zeros(B, dtype=torch.bool, device=self.device),
            noise=torch.zeros_like(noise),
            state=tuple(torch.zeros_like(s) for s in state),
        )
        if self.use_graph:
            try:
                st.graph, st.out = self._capture(st)
            except Exception as exc:  # a cell op that cannot be captured: run eagerly, say why once
                self.use_graph = False
                self.fallback_reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                warnings.warn(f"CUDA graph capture of the policy step failed, running eagerly ({self.fallback_reason})")
                torch.cuda.synchronize(self.device)
        return st

    def _run(self, st: _Static) -> ActOutput:
        return act_with_noise(self.policy, st.obs, st.state, st.reset, st.noise)

    @torch.no_grad()
    def _capture(self, st: _Static) -> tuple[Any, ActOutput]:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._run(st)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._run(st)
        return graph, out

    @torch.no_grad()
    def __call__(self, obs: Tensor, state: tuple, reset: Tensor, noise: Tensor, slot: int = 0) -> ActOutput:
        """obs (B, D), state (batch-first tensors), reset (B,) bool, noise (B, A) -> static outputs of ``slot``."""
        st = self._static.get(slot)
        if st is None or st.obs.shape != obs.shape:
            st = self._static[slot] = self._build(obs, state, noise)
        st.obs.copy_(obs)
        st.reset.copy_(reset)
        st.noise.copy_(noise)
        for dst, src in zip(st.state, state):  # (B, ...) each
            dst.copy_(src)
        if st.graph is not None:
            st.graph.replay()
            return st.out
        return self._run(st)
