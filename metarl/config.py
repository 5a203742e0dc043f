"""Typed training configuration: dataclasses, YAML I/O and ``--set`` overrides.

A run is fully described by one :class:`TrainConfig`. It is loaded from YAML
(:func:`load_config`), overridden by ``key=value`` strings with dotted keys
(``env.num_envs=8``) and written back resolved to ``DIR/config.yaml``. Unknown
keys and wrong types raise a one-line :class:`ConfigError` (a ``ValueError``)
that names the closest valid key, so typos fail before any env is built
(``metarl.config_types``); :func:`validate` checks ranges and choices.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metarl.agents.config import AgentConfig, cell_options_for  # the ``agent`` section, owned by the agents layer
from metarl.agents.registry import check_cell
from metarl.config_types import ConfigError, all_keys, build, unknown_key
from metarl.envs.checks import check_caller_share, check_positive, check_spin, check_workers
from metarl.kinds import get_kind


@dataclass
class EnvConfig:
    """Which tasks to train on and how trials are shaped."""

    benchmark: str = "ML1/reach-v3"
    """Benchmark name from ``metarl.envs`` (``ML1/<task>``, ``ML10``, ``ML45``, ``point-nav``, ``bandit``)."""
    num_envs: int = 8
    """Trial envs per rank; each holds one whole trial per update."""
    episodes_per_trial: int | None = None
    """Attempts of the same task per trial (memory is kept across them); None = benchmark default."""
    max_episode_steps: int | None = None
    """Steps per attempt; None keeps the benchmark's default (500 for Meta-World)."""
    reward_scale: float | None = None
    """Scale of the previous-reward input in the observation; None keeps the benchmark's default."""
    clock: bool = False
    """Add the trial's clock to the observation (share of the attempt and of the trial left):
    attempts end at a time limit the env observation does not show (``metarl.envs.trial``)."""
    task_switches: int = 0
    """Times each trial's hidden task changes, unannounced, at attempt boundaries drawn per trial
    from attempts 2..episodes_per_trial (at most episodes_per_trial - 1); 0 = stationary trials,
    exactly as before (``metarl.envs.trial``). Applies to training and held-out evaluation envs."""
    switch_class: bool = False
    """With task_switches: switch to another class of the split (ML10/ML45) instead of another
    goal of the same class; splits with one class (ML1, toys) switch goals either way."""
    workers: int | None = None
    """Env worker processes: None = the envs layer's choice (in-process for toys, else one per CPU); 0 = in-process."""
    collect_groups: int = 1
    """Env groups pipelined during collection (the policy acts for one group while the others
    step; results equal 1 group's up to matmul rounding). 1 = sequential. Pays only when a policy
    forward is cheaper than the envs' step: measured slower on 2 shared cores (bench/train.py)."""
    spin: float = 0.0
    """Seconds an env worker polls (yielding its core) for its next command before it blocks.
    Workers that block step slower after waking on VMs; see ``metarl.envs.make_vec``."""
    caller_share: float | None = None
    """Step cost of the envs the training process steps itself, as a fraction of a worker's
    block (it also runs the policy); 0 = none. None = the envs layer's default when
    ``workers`` is automatic (``metarl.envs.vector.CALLER_SHARE``), else 0."""
    eval_num_envs: int = 0
    """Envs for the held-out evaluation; 0 = as many as env.num_envs."""
    eval_trials: int = 1
    """Trials per evaluation env at each periodic evaluation."""


@dataclass
class PPOConfig:
    """Recurrent PPO learner settings."""

    lr: float = 3e-4
    """Adam learning rate at the start."""
    lr_schedule: str = "linear"
    """``linear`` (anneal to 0 at total_steps) or ``constant``."""
    gamma: float = 0.99
    """Discount over env steps (across attempts of a trial)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 2
    """Minibatches per epoch (over (chunk, env) sequences); each costs a sequential pass over its chunk length."""
    bptt_len: int = 0
    """Truncated-BPTT chunk length in steps; 0 = whole trials. Must divide the trial length."""
    clip_coef: float = 0.2
    """PPO ratio clip."""
    clip_vloss: bool = False
    """Clip the value update around the rollout's values."""
    vf_coef: float = 0.5
    """Value loss weight."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    target_kl: float | None = None
    """Stop the epochs early once approx KL exceeds this (None: never)."""
    task_coef: float = 0.0
    """Weight of a task-inference loss: a head on the cell output predicts the hidden task's
    parameters (``metarl.envs.registry.task_vectors``, standardised; Meta-World: object and
    goal positions) at every step of the training trials. Training tasks only; the policy
    never sees them and evaluation never uses them. 0 = plain RL²."""
    surprise_coef: float = 1.0
    """Weight of the surprise gates' auxiliary loss, the mean squared reward-prediction error
    (forget-memory's ``surprise: true``; unused by every other cell). It alone trains the
    reward predictor whose error the forget gates read, so it must be > 0 for such a cell."""
    task_dims: list[int] = field(default_factory=list)
    """Which dims of the task vector the task head predicts ([] = all). Predict only what the
    observation hides: on ML1/reach-v3 the goal, dims [3, 4, 5] (its object position is dims
    0-2; with the object hidden from the policy, predicting it can only be a lookup of the
    training task, which is memorising, not inferring)."""
    trial_end: str = "terminal"
    """How the last step of a trial is treated: ``terminal`` (the RL² episode ends, value 0)
    or ``bootstrap`` (truncation: bootstrap with the value of the final observation)."""


@dataclass
class NormalizeConfig:
    """Running normalisers (statistics are frozen during a rollout, saved in checkpoints)."""

    obs: bool = True
    """Normalise the env-observation dims (never the previous action or the flags)."""
    reward_input: bool = False
    """Also normalise the previous-reward input dim."""
    reward: bool = True
    """Scale rewards for the learner by the running std of discounted returns."""
    clip: float = 10.0
    """Clip normalised values to [-clip, clip]."""
    obs_noise: float = 0.0
    """Std of Gaussian noise added to the (normalised) env-observation dims the policy sees in
    training rollouts, never in evaluation: augmentation against telling the few training tasks
    apart by task-irrelevant features (ML1's object position). 0 = none."""


@dataclass
class TrainConfig:
    """Everything a training run needs; written resolved to ``DIR/config.yaml``."""

    seed: int = 1
    """Seeds torch, numpy, the tasks and the env resets."""
    total_steps: int = 200_000
    """Env steps over all ranks."""
    max_updates: int = 0
    """Stop (with a checkpoint) once this many updates are done, for time-boxed jobs; 0 = run to total_steps.
    Not part of any schedule, so a stopped run resumes exactly."""
    device: str = "auto"
    """``auto`` (cuda if available), ``cpu``, ``cuda``, ``cuda:1`` ..."""
    torch_threads: int = 0
    """torch intra-op threads; 0 leaves the default."""
    cuda_graph: bool = False
    """Replay each rollout step of the policy as a CUDA graph (one launch instead of ~100; GPU only,
    cells without host syncs; others run eagerly). Actions use noise drawn per step for all envs."""
    deterministic: bool = False
    """Use deterministic torch algorithms (slower on GPU)."""
    eval_interval: int = 10
    """Updates between held-out evaluations; 0 disables periodic eval (one still runs at the end)."""
    checkpoint_interval: int = 1
    """Updates between writes of checkpoints/last.pt."""
    save_interval: int = 0
    """Updates between kept checkpoints/step_<env_steps>.pt; 0 = none."""
    progress: bool = True
    """Show a progress bar (env steps, env steps/s, ETA, train and last held-out success)."""
    tensorboard: bool = True
    """Write TensorBoard events to DIR/tb."""
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)


# --------------------------------------------------------------------------- public API


def config_from_dict(data: dict | None) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from a nested dict (missing keys keep defaults)."""
    cfg = build(TrainConfig, data or {})
    validate(cfg)
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict:
    """Nested plain dict (YAML- and ``torch.save(weights_only)``-safe)."""
    return dataclasses.asdict(cfg)


# Not OmegaConf.from_dotlist: it reads 1e5 and 1.0e5 as one float, so int keys could not take one, refuse the other.
def parse_overrides(overrides: list[str] | None) -> dict:
    """``["env.num_envs=8", "agent.cell=gru"]`` -> nested dict; values parsed as YAML scalars."""
    nested: dict = {}
    valid = set(all_keys(TrainConfig))
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in valid and not any(v.startswith(key + ".") for v in valid):
            # a cell option is free-form: agent.cell_options.<name>=...
            if not key.startswith("agent.cell_options."):
                raise unknown_key(key, TrainConfig)
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = nested
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return nested


# OmegaConf.merge does this only over its typed nodes (see metarl.config_types): not a dependency for eight lines.
def merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, nested dicts merged key by key (a new dict; neither input changes)."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


# What ``metarl train`` runs without CONFIG: forget-memory on ML1/reach-v3 with
# short attempts, sized so a 2-core laptop shows progress within minutes and the
# run ends with an evaluation on held-out goals.
DEFAULT_PRESET: dict = {
    "total_steps": 48_000,
    "eval_interval": 5,
    "env": {"benchmark": "ML1/reach-v3", "num_envs": 8, "episodes_per_trial": 2, "max_episode_steps": 100},
    "agent": {"cell": "forget-memory", "hidden_size": 128, "encoder_sizes": [128, 128]},
    "ppo": {"lr": 5e-4, "epochs": 4, "num_minibatches": 2, "bptt_len": 100},
}


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, preset: dict | None = None
) -> TrainConfig:
    """Defaults <- ``preset`` (if given) <- YAML file (if given) <- ``--set`` overrides, validated."""
    data: dict = dict(preset or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            file_data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{path}: invalid YAML: {first}") from None
        if not isinstance(file_data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        data = merge(data, file_data)
    data = merge(data, parse_overrides(overrides))
    return config_from_dict(data)


def save_config(cfg: TrainConfig, path: str | Path, episodes_per_trial: int | None = None) -> None:
    """Write the resolved config as YAML. ``episodes_per_trial``: the number the envs play, written
    in place of a null ``env.episodes_per_trial`` (the benchmark's default), so the file says it."""
    data = config_to_dict(cfg)
    if data["env"]["episodes_per_trial"] is None:
        data["env"]["episodes_per_trial"] = episodes_per_trial
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


_CHOICES = {
    "ppo.lr_schedule": ("linear", "constant"),
    "ppo.trial_end": ("terminal", "bootstrap"),
}


def validate(cfg: TrainConfig) -> None:
    """Range and choice checks that types alone cannot express."""
    flat = {
        "ppo.lr_schedule": cfg.ppo.lr_schedule,
        "ppo.trial_end": cfg.ppo.trial_end,
    }
    try:
        check_cell(cfg.agent.cell)  # the one check of the cell name, before anything is built
    except ValueError as exc:
        raise ConfigError(f"config key 'agent.cell': {exc}") from None
    try:
        kind = get_kind(cfg.agent.kind)
    except ValueError as exc:
        raise ConfigError(f"config key 'agent.kind': {exc}") from None
    if kind.is_sb3:
        unsupported = {"ppo.task_coef": cfg.ppo.task_coef > 0, "cuda_graph": cfg.cuda_graph,
                       "env.collect_groups": cfg.env.collect_groups > 1, "agent.ignore_obs": bool(cfg.agent.ignore_obs)}
        for key, bad in unsupported.items():
            if bad:
                raise ConfigError(f"config key '{key}' has no SB3 counterpart: leave it at its default "
                                  f"with agent.kind={cfg.agent.kind}")
    for key, value in flat.items():
        if value not in _CHOICES[key]:
            close = difflib.get_close_matches(value, _CHOICES[key], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"config key '{key}' must be one of {', '.join(_CHOICES[key])}, got '{value}'{hint}")
    # the envs layer's own rules (metarl.envs.checks), named by their config keys
    env_rules = [("env.num_envs", check_positive, cfg.env.num_envs),
                 ("env.max_episode_steps", check_positive, cfg.env.max_episode_steps),
                 ("env.episodes_per_trial", check_positive, cfg.env.episodes_per_trial),
                 ("env.workers", check_workers, cfg.env.workers),
                 ("env.caller_share", check_caller_share, cfg.env.caller_share),
                 ("env.spin", check_spin, cfg.env.spin)]
    for key, check, value in env_rules:
        if value is not None:  # None: the envs layer's default
            try:
                check(f"config key '{key}'", value)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
    positive = {
        "total_steps": cfg.total_steps,
        "env.eval_trials": cfg.env.eval_trials,
        "env.collect_groups": cfg.env.collect_groups,
        "agent.hidden_size": cfg.agent.hidden_size,
        "ppo.epochs": cfg.ppo.epochs,
        "ppo.num_minibatches": cfg.ppo.num_minibatches,
        "checkpoint_interval": cfg.checkpoint_interval,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"config key '{key}' must be >= 1, got {value}")
    non_negative = {
        "ppo.bptt_len": cfg.ppo.bptt_len,
        "eval_interval": cfg.eval_interval,
        "save_interval": cfg.save_interval,
        "max_updates": cfg.max_updates,
        "env.eval_num_envs": cfg.env.eval_num_envs,
        "torch_threads": cfg.torch_threads,
        "ppo.task_coef": cfg.ppo.task_coef,
        "ppo.surprise_coef": cfg.ppo.surprise_coef,
        "env.task_switches": cfg.env.task_switches,
        "normalize.obs_noise": cfg.normalize.obs_noise,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"config key '{key}' must be >= 0, got {value}")
    if cell_options_for(cfg.agent).get("surprise") and cfg.ppo.surprise_coef <= 0:
        raise ConfigError("config key 'agent.cell_options' surprise: true needs 'ppo.surprise_coef' > 0 "
                          "(the loss that trains the reward predictor the forget gates read)")
    if cfg.agent.task_input and cfg.ppo.task_coef <= 0:
        raise ConfigError("config key 'agent.task_input' needs 'ppo.task_coef' > 0 (the loss that trains the task head)")
    # Not envs.checks.check_task_switches: tests pin other texts here ('must be >= 0', 'must be <=') than there.
    if cfg.env.episodes_per_trial is not None and cfg.env.task_switches > cfg.env.episodes_per_trial - 1:
        raise ConfigError(f"config key 'env.task_switches' must be <= env.episodes_per_trial - 1 "
                          f"({cfg.env.episodes_per_trial - 1}), got {cfg.env.task_switches}")
    if cfg.env.collect_groups > cfg.env.num_envs:
        raise ConfigError(
            f"config key 'env.collect_groups' must be <= env.num_envs ({cfg.env.num_envs}), got {cfg.env.collect_groups}"
        )
    if not 0.0 <= cfg.ppo.gamma <= 1.0 or not 0.0 <= cfg.ppo.gae_lambda <= 1.0:
        raise ConfigError("config keys 'ppo.gamma' and 'ppo.gae_lambda' must lie in [0, 1]")
    if cfg.ppo.lr <= 0:
        raise ConfigError(f"config key 'ppo.lr' must be > 0, got {cfg.ppo.lr}")
