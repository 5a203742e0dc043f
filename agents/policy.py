"""Actor-critic policies on any cell (docs/interfaces.md, "Actor-critic").

obs -> encoder MLP -> cell (memory) -> Gaussian action head (mean in [-1, 1]
via tanh, learned state-independent log-std) and a value head. The same class
with the ``mlp`` cell is the memoryless control. Observation normalisation is
the trainer's job, not the policy's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from metarl.agents.base import Cell, State
from metarl.agents.config import AgentConfig, cell_options_for
from metarl.agents.registry import make_cell
from metarl.envs.obs_layout import TAIL_DIMS

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class ActOutput(NamedTuple):
    """One batched rollout step (all tensors (B, ...))."""

    action: Tensor
    """(B, A) raw Gaussian sample: store it and pass it to ``evaluate``."""
    env_action: Tensor
    """(B, A) ``action`` clipped to [-1, 1]: send it to the env."""
    log_prob: Tensor
    """(B,) log-probability of ``action`` (summed over action dims)."""
    value: Tensor
    """(B,) value estimate."""
    state: State
    """The cell state after this step."""
    diagnostics: dict[str, Tensor] | None
    """Cell diagnostics for this step, (B, ...) each, when asked for; else None."""


def normal_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Elementwise Gaussian log-density, by ``Normal.log_prob``'s formula (the same numbers)
    without building a distribution: a rollout step is too small to pay for its checks."""
    return -((x - mean) ** 2) / (2 * std**2) - std.log() - math.log(math.sqrt(2 * math.pi))


def _layer_init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """Recurrent Gaussian actor-critic; ``cell`` carries the in-trial memory.

    ``task_dim`` > 0 adds a task-inference head on the cell output (it predicts the
    hidden task's parameters; trained by an auxiliary loss, unused when acting).
    """

    def __init__(self, obs_dim: int, action_dim: int, config: AgentConfig, task_dim: int = 0) -> None:
        super().__init__()
        self.config = config
        self.obs_dim, self.action_dim = obs_dim, action_dim
        layers: list[nn.Module] = []
        width = obs_dim
        for size in config.encoder_sizes:
            layers += [_layer_init(nn.Linear(width, size), math.sqrt(2)), nn.Tanh()]
            width = size
        self.encoder = nn.Sequential(*layers)
        options = cell_options_for(config)
        self.surprise_dims: slice | None = None  # obs dims appended raw to the cell's input
        if options.get("surprise"):  # forget-memory's surprise gates read the previous action and reward
            start = obs_dim - TAIL_DIMS - action_dim  # the trial observation's layout (env.obs_layout)
            self.surprise_dims = slice(start, start + action_dim + 1)
            options["action_dim"] = action_dim
            width += action_dim + 1
        self.cell: Cell = make_cell(config.cell, width, config.hidden_size, **options)
        # Small gain on the mean so early actions stay near 0 (CleanRL's choice).
        self.actor_mean = _layer_init(nn.Linear(config.hidden_size, action_dim), 0.01)
        self.actor_log_std = nn.Parameter(torch.full((action_dim,), float(config.init_log_std)))
        self.critic = _layer_init(nn.Linear(config.hidden_size, 1), 1.0)
        self.task_head = _layer_init(nn.Linear(config.hidden_size, task_dim), 1.0) if task_dim else None
        self.task_trunk = None
        if config.task_input:
            if not task_dim:
                raise ValueError("task_input needs a task-inference head (task_dim > 0)")
            width = config.hidden_size + task_dim
            self.task_trunk = nn.Sequential(_layer_init(nn.Linear(width, config.hidden_size), math.sqrt(2)), nn.Tanh())
        self.register_buffer("obs_keep", None, persistent=False)  # (D,) 1 = seen, 0 = ignored
        if config.ignore_obs:
            bad = [i for i in config.ignore_obs if not -obs_dim <= i < obs_dim]
            if bad:
                raise ValueError(f"ignore_obs indices {bad} are outside the {obs_dim}-dim observation")
            keep = torch.ones(obs_dim)
            keep[list(config.ignore_obs)] = 0.0
            self.obs_keep = keep  # not persistent: rebuilt from the config, so checkpoints keep their keys

    @property
    def has_surprise(self) -> bool:
        """Whether the cell has surprise gates (its reward predictor wants ``ppo.surprise_coef``'s loss)."""
        return self.surprise_dims is not None

    @property
    def memoryless(self) -> bool:
        return self.cell.memoryless

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The cell's trial-start state for ``batch_size`` envs."""
        return self.cell.initial_state(batch_size, device)

    def _features(self, obs: Tensor, state: State, reset: Tensor, diagnostics: bool):
        """obs (T, B, D), reset (T, B) -> cell output (T, B, H), state, diag."""
        z = self._cell_input(obs)  # (T, B, E)
        if diagnostics:
            return self.cell(z, state, reset, diagnostics=True)
        h, state = self.cell(z, state, reset)
        return h, state, None

    def _encode(self, obs: Tensor) -> Tensor:
        """The encoder over obs (..., D), with ``ignore_obs`` dims zeroed."""
        return self.encoder(obs if self.obs_keep is None else obs * self.obs_keep)

    def _cell_input(self, obs: Tensor) -> Tensor:
        """What the cell reads: the encoded obs (..., E), with surprise gates followed by the raw
        previous action and reward (..., E + A + 1)."""
        z = self._encode(obs)
        if self.surprise_dims is None:
            return z
        return torch.cat([z, obs[..., self.surprise_dims]], dim=-1)

    def _heads_input(self, h: Tensor) -> Tensor:
        """What the actor and critic read: the cell output (..., H), or with ``task_input``
        the tanh layer over it and the (detached) inferred task."""
        if self.task_trunk is None:
            return h
        return self.task_trunk(torch.cat([h, self.task_head(h).detach()], -1))  # (..., H + F) -> (..., H)

    def _dist(self, h: Tensor) -> torch.distributions.Normal:
        mean = torch.tanh(self.actor_mean(h))  # (..., A) in [-1, 1]
        log_std = self.actor_log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).expand_as(mean)
        # No argument validation: its checks are host syncs (3 per rollout step), which stall
        # CUDA kernel launches; mean and std are finite by construction (tanh, clamped log-std).
        return torch.distributions.Normal(mean, log_std.exp(), validate_args=False)

    def act(
        self,
        obs: Tensor,
        state: State,
        reset: Tensor,
        deterministic: bool = False,
        diagnostics: bool = False,
        noise: Tensor | None = None,
    ) -> ActOutput:
        """One rollout step for B envs: obs (B, D), reset (B,) bool. Call under no_grad for rollouts.

        ``noise`` (B, A) standard normal: the sample's draw, given (so one draw can
        serve all envs of a step however they are grouped, and a CUDA graph replays
        without RNG). Without it the draw is ``randn``, the same numbers
        ``Normal.sample`` would give. The cell runs its one-step path (``Cell.step``),
        the sequence path only when ``diagnostics`` are asked for.
        """
        if diagnostics:
            h, state, diag = self._features(obs.unsqueeze(0), state, reset.unsqueeze(0), True)
            h = h.squeeze(0)  # (B, H)
            diag = {k: v.squeeze(0) for k, v in diag.items()}  # (1, B, ...) -> (B, ...)
        else:
            h, state = self.cell.step(self._cell_input(obs), state, reset)  # (B, H)
            diag = None
        x = self._heads_input(h)
        mean = torch.tanh(self.actor_mean(x))  # (B, A) in [-1, 1]
        std = self.actor_log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()  # (A,)
        if deterministic:
            action = mean
        else:
            action = (torch.randn_like(mean) if noise is None else noise) * std + mean  # (B, A)
        log_prob = normal_log_prob(action, mean, std).sum(-1)  # (B,)
        value = self.critic(x).squeeze(-1)  # (B,)
        return ActOutput(action, action.clamp(-1.0, 1.0), log_prob, value, state, diag)

    def evaluate(
        self, obs: Tensor, state: State, reset: Tensor, actions: Tensor, with_task: bool = False,
        with_surprise: bool = False,
    ) -> tuple[Tensor, ...]:
        """Log-probs, entropies and values, each (T, B), of a whole sequence in one cell call.

        obs (T, B, D), state the state before step 0, reset (T, B), actions (T, B, A) raw samples.
        ``with_task``: also the task-inference head's prediction (T, B, task_dim).
        ``with_surprise``: last, the surprise gates' auxiliary loss (scalar): the mean squared
        reward-prediction error over the sequence (0 at resets).
        """
        if with_surprise and not self.has_surprise:
            raise ValueError("this policy's cell has no surprise gates (forget-memory option surprise: true)")
        h, _, diag = self._features(obs, state, reset, with_surprise)  # (T, B, H)
        x = self._heads_input(h)
        dist = self._dist(x)
        log_prob = dist.log_prob(actions).sum(-1)  # (T, B)
        entropy = dist.entropy().sum(-1)  # (T, B)
        value = self.critic(x).squeeze(-1)  # (T, B)
        out: tuple[Tensor, ...] = (log_prob, entropy, value)
        if with_task:
            if self.task_head is None:
                raise ValueError("this policy has no task-inference head (built with task_dim=0)")
            out += (self.task_head(h),)
        if with_surprise:
            out += (diag["surprise"].square().mean(),)  # (T, B) -> ()
        return out

    def get_value(self, obs: Tensor, state: State, reset: Tensor) -> Tensor:
        """Value (B,) of obs (B, D) after ``state``, resetting where ``reset`` (B,)."""
        h, _, _ = self._features(obs.unsqueeze(0), state, reset.unsqueeze(0), False)
        return self.critic(self._heads_input(h.squeeze(0))).squeeze(-1)


def make_policy(agent_cfg: AgentConfig, obs_dim: int, action_dim: int, *, task_dim: int = 0) -> ActorCritic:
    """The :class:`ActorCritic` that ``agent_cfg`` describes (``cell="mlp"`` gives the memoryless control).

    ``task_dim``: width of the task-inference head (0: none; the trainer derives it
    from ``ppo.task_coef``, ``metarl.checkpoint.task_dim``).
    """
    return ActorCritic(obs_dim, action_dim, agent_cfg, task_dim)
