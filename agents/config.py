"""``AgentConfig``: the one description of a policy (a cell under an actor-critic).

``metarl.config`` re-exports it as the ``agent`` section of a training config
(YAML and ``--set agent.*``); :func:`metarl.agents.make_policy` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AgentConfig:
    """The policy: a cell (memory) under an actor-critic, or an SB3 baseline."""

    cell: str = "forget-memory"
    """Cell name from ``metarl.agents.cells()``; ``mlp`` is the memoryless control."""
    hidden_size: int = 128
    """Width of the cell output and of the actor/critic heads."""
    cell_options: dict = field(default_factory=dict)
    """Extra keyword options for the cell: flat (``{slots: 8}``) or keyed by cell name
    (``{forget-memory: {slots: 8}}``, applied only when that cell is chosen)."""
    encoder_sizes: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden widths of the tanh observation encoder before the cell; [] feeds obs straight in."""
    init_log_std: float = -0.5
    """Initial log standard deviation of the Gaussian actions."""
    task_input: bool = False
    """Act on the inferred task: the actor and critic also read the task-inference head's
    prediction (detached; trained only by ``ppo.task_coef``'s loss, so it needs task_coef > 0).
    The prediction comes from the trial's history alone, at training and evaluation alike."""
    kind: str = "metarl"
    """Learner (``metarl.kinds``): ``metarl`` (RL² PPO over ``cell``), ``sb3-ppo`` (SB3 PPO, MlpPolicy: the
    memoryless control) or ``sb3-recurrent-ppo`` (sb3-contrib RecurrentPPO, MlpLstmPolicy). The SB3 kinds train
    on the same trial envs, one whole trial per env per update, with ``hidden_size``, ``encoder_sizes``,
    ``init_log_std``, the ``ppo.*`` keys SB3 has and SB3's VecNormalize for ``normalize.*``; ``cell`` is unused."""
    ignore_obs: list[int] = field(default_factory=list)
    """Trial-observation dims the policy zeroes before its encoder (indices into the whole trial
    observation, ``env.obs_layout``): it never sees them, at training and evaluation alike. For
    dims the task does not need but that tell the few training tasks apart (ML1/reach-v3's object
    positions, ``OBJECT_DIMS`` in ``metarl.envs.metaworld_tasks``). [] = sees everything."""


def cell_options_for(cfg: AgentConfig) -> dict:
    """Options for the configured cell: ``cell_options`` keyed by cell name, or one flat dict.

    Keyed form (``{forget-memory: {slots: 8}}``) lets a preset tune its memory
    and still switch to any other cell with ``--set agent.cell=mlp``.
    """
    opts = dict(cfg.cell_options or {})
    if opts and all(isinstance(v, dict) for v in opts.values()):
        return dict(opts.get(cfg.cell, {}))
    return opts
