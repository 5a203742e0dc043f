"""``metarl evaluate --protocol metaworld``: Meta-World's own meta-test loop on our agents.

:func:`metaworld_evaluate` runs ``metaworld.evaluation.metalearning_evaluation``
through :class:`MetaWorldProtocolAgent` and reports its figure unchanged, for
comparison with published numbers. It also reports an unbiased figure from the
same rollouts (:func:`per_env_success`).

Meta-World's own figure counts, for each class name, the first
``evaluation_episodes`` episodes to *finish* across all envs of that class, with
terminate-on-success on. An env that reaches its goal ends its episodes early,
so its successes fill the count before the other envs' episodes time out. With
several envs per class, that favours envs that succeed early; and the loop stops the
round there, so the other envs' episodes are cut off. The unbiased figure plays those
envs on to their own evaluation episodes first (:class:`_EpisodeRecorder`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from metarl.envs import ObsLayout
from metarl.envs.metaworld_tasks import EPISODE_STEPS, load_tasks
from metarl.envs.registry import check_split, get_benchmark, tasks
from metarl.evaluate import EvalSettings, agent_reward_scale, agent_env_kwargs, check_compatible, resolve_settings, seeded_torch


class MetaWorldProtocolAgent:
    """Adapter from our :class:`~metarl.agent.Agent` to ``metaworld.evaluation.MetaLearningAgent``.

    Meta-World's loop (``metalearning_evaluation``) calls ``init`` (new tasks: memory
    reset), ``adapt_action``/``step`` for the adaptation episodes, ``adapt`` (we
    snapshot the memory), then ``evaluation``: ``reset(mask)`` (we restore the
    snapshot where an evaluation episode starts) and ``eval_action``.

    Its envs are built with ``recurrent_info_in_obs`` (raw obs | action | raw reward
    | done); we rebuild our trial layout from that: [obs | clock, if the agent uses
    one | previous action | previous reward * reward_scale | episode-start |
    trial-start]. An evaluation episode starts like a further attempt of the same
    trial: memory, previous action and reward (and the clock's attempt) as they
    were at the end of adaptation. ``clock``: (steps per attempt, attempts per
    trial) for an agent trained with the clock, else None.
    """

    def __init__(self, agent: Any, obs_low: np.ndarray, obs_high: np.ndarray, action_dim: int,
                 reward_scale: float, deterministic: bool, clock: tuple[int, int] | None = None) -> None:
        self.agent, self.deterministic, self.clock = agent, deterministic, clock
        self.obs_low, self.obs_high = obs_low, obs_high
        self.d_env, self.action_dim, self.reward_scale = obs_low.shape[0], action_dim, reward_scale
        self.layout = ObsLayout(self.d_env, action_dim, clock is not None)
        self.num_envs = 0
        self.state: Any = None
        self.snapshot: tuple[Any, np.ndarray, np.ndarray] | None = None

    def _begin(self, n: int) -> None:
        self.num_envs = n
        self.state = self.agent.initial_state(n)
        self.prev_action = np.zeros((n, self.action_dim), dtype=np.float32)  # (N, A)
        self.prev_reward = np.zeros(n, dtype=np.float32)  # (N,) raw
        self.episode_start = np.ones(n, dtype=bool)
        self.trial_start = np.ones(n, dtype=bool)
        self.t = np.zeros(n, dtype=np.int64)  # steps into the current episode
        self.attempt = np.ones(n, dtype=np.int64)  # 1-based, as the clock counts it

    def init(self) -> None:
        self.num_envs = 0  # sized lazily from the first observation batch
        self.snapshot = None

    def _obs(self, raw: np.ndarray) -> np.ndarray:
        lay = self.layout
        obs = np.empty((raw.shape[0], lay.dim), dtype=np.float32)  # (N, D)
        obs[:, lay.env] = np.clip(raw[:, : self.d_env], self.obs_low, self.obs_high)  # (N, D_env)
        if self.clock is not None:  # as metarl.envs.trial writes it
            steps, k = self.clock
            t = np.minimum(self.t, steps)
            done = (np.minimum(self.attempt, k) - 1) * steps + t
            obs[:, lay.clock_dims] = np.stack([1.0 - t / steps, 1.0 - done / (k * steps)], axis=1)  # (N, 2)
        obs[:, lay.action] = self.prev_action  # (N, A)
        obs[:, lay.reward] = self.prev_reward * self.reward_scale  # (N,)
        obs[:, lay.episode_start] = self.episode_start
        obs[:, lay.trial_start] = self.trial_start
        return obs

    def _act(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.num_envs != raw.shape[0]:
            self._begin(raw.shape[0])
        action, self.state = self.agent.act(self._obs(raw), self.state, deterministic=self.deterministic)
        self.prev_action = np.asarray(action, dtype=np.float32).copy()
        self.t += 1
        self.episode_start[:] = False
        self.trial_start[:] = False
        return action.astype(np.float64)

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._act(observations), {}

    def step(self, timestep: Any) -> None:
        self.prev_reward = np.asarray(timestep.reward, dtype=np.float32).copy()
        ended = np.logical_or(timestep.terminated, timestep.truncated)
        self.episode_start |= ended
        self.t[ended] = 0
        self.attempt[ended] += 1

    def adapt(self) -> None:
        state = tuple(s.clone() for s in self.state)
        self.snapshot = (state, self.prev_action.copy(), self.prev_reward.copy(), self.attempt.copy())

    def reset(self, env_mask: np.ndarray) -> None:
        if self.snapshot is None:
            raise RuntimeError("reset() before adapt(): the Meta-World protocol always adapts first")
        mask = np.asarray(env_mask, dtype=bool)
        state, action, reward, attempt = self.snapshot
        m = torch.as_tensor(mask)
        self.state = tuple(
            torch.where(m.to(s.device).view(-1, *([1] * (s.dim() - 1))), snap, s) for s, snap in zip(self.state, state)
        )
        self.prev_action[mask] = action[mask]
        self.prev_reward[mask] = reward[mask]
        self.attempt[mask] = attempt[mask]
        self.t[mask] = 0
        self.episode_start |= mask

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        raw = np.asarray(observations, dtype=np.float64)
        within = ~self.episode_start  # inside an episode the obs carries the last raw reward
        self.prev_reward[within] = raw[within, self.d_env + self.action_dim]
        return self._act(raw)


def per_env_success(ended: list[tuple[int, int, bool]], env_tasks: list[str], episodes: int) -> dict[str, float]:
    """The unbiased figure: each env's first ``episodes`` evaluation episodes of every round,
    averaged per env, then over the envs of a class. ``ended`` lists (round, env, success)
    in the order episodes ended; ``env_tasks[i]`` is env i's class. Returns class -> success."""
    first: dict[tuple[int, int], list[bool]] = {}
    for rnd, env, success in ended:
        kept = first.setdefault((rnd, env), [])
        if len(kept) < episodes:
            kept.append(bool(success))
    per_env: dict[int, list[float]] = {}
    for (_, env), kept in first.items():
        per_env.setdefault(env, []).append(float(np.mean(kept)))
    per_class: dict[str, list[float]] = {}
    for env, rates in per_env.items():
        per_class.setdefault(env_tasks[env], []).append(float(np.mean(rates)))
    return {task: float(np.mean(v)) for task, v in sorted(per_class.items())}


class _EpisodeRecorder:
    """The protocol's vector env, recording which evaluation episodes end and whether they
    succeeded (Meta-World's loop keeps only its per-class count). Everything else is the env's.

    Meta-World's ``evaluation`` stops a round as soon as every class *name* has its
    ``episodes`` finished episodes, over all envs of the class: with several envs per
    class, the envs still on their first episode are cut off, so the rollouts alone
    cannot give every env's own figure. :meth:`complete_round` plays those envs on
    (same agent, same rules: terminate on success, memory restored at each episode
    start) until each has ``episodes`` of its own; it runs when the next round's
    ``sample_tasks`` call comes, and once after the last round. Meta-World's count is
    taken before and is unchanged.
    """

    def __init__(self, envs: Any, adapter: MetaWorldProtocolAgent, episodes: int) -> None:
        self._envs, self._adapter, self._episodes = envs, adapter, episodes
        self.ended: list[tuple[int, int, bool]] = []  # (round, env, success)
        self.completed_steps = 0  # steps played after Meta-World's loop had stopped a round
        self._round = -1
        self._snapshot_seen: Any = None
        self._completed = -1  # last round played to the end
        self._obs: np.ndarray | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._envs, name)

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        out = self._envs.reset(*args, **kwargs)
        self._obs = out[0]
        return out

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sample_tasks":
            self.complete_round()
        return self._envs.call(name, *args, **kwargs)

    def step(self, actions: np.ndarray) -> Any:
        out = self._envs.step(actions)
        self._obs = out[0]
        snapshot = self._adapter.snapshot
        if snapshot is not None:  # adapt() has run: these are evaluation episodes
            if snapshot is not self._snapshot_seen:
                self._snapshot_seen, self._round = snapshot, self._round + 1
            _, _, terminated, truncated, infos = out
            for i in np.flatnonzero(np.logical_or(terminated, truncated)):
                self.ended.append((self._round, int(i), bool(infos["final_info"]["success"][i])))
        return out

    def _short(self) -> np.ndarray:
        counts = np.zeros(self._envs.num_envs, dtype=np.int64)
        for rnd, env, _ in self.ended:
            if rnd == self._round:
                counts[env] += 1
        return counts < self._episodes

    def complete_round(self) -> None:
        """Play every env of the current round on to its own ``episodes`` evaluation episodes."""
        if self._adapter.snapshot is None or self._completed == self._round or self._obs is None:
            return
        self._completed = self._round
        if not self._short().any():
            return
        self._envs.call("toggle_terminate_on_success", True)  # as Meta-World's evaluation plays
        obs = self._obs
        while self._short().any():
            obs, _, terminated, truncated, _ = self.step(self._adapter.eval_action(obs))
            self._adapter.reset(np.logical_or(terminated, truncated))
            self.completed_steps += 1
        self._envs.call("toggle_terminate_on_success", False)  # what its evaluation restores


def _env_task_names(envs: Any) -> list[str]:
    """Each protocol env's class name (Meta-World's own lookup, as its loop does)."""
    from metaworld.evaluation import _get_task_names  # Meta-World's own (private) lookup, as its loop does

    return list(_get_task_names(envs))


def _metaworld_benchmark(benchmark: str) -> Any:
    """A ``metaworld.Benchmark`` holding the same classes and goals as ``metarl.envs`` uses.

    The goals come from the envs layer's cached task lists (drawn once with its fixed
    benchmark seed), so this protocol sees exactly the held-out goals that
    ``metarl evaluate`` samples from, and Meta-World's slow benchmark rebuild is skipped (README, "Measured").
    """
    import metaworld  # heavy, and it must come after any MUJOCO_GL choice: imported where used
    from metaworld import env_dict

    if benchmark.startswith("ML1/"):
        task = benchmark[len("ML1/"):]
        train_classes = test_classes = {task: env_dict.ALL_V3_ENVIRONMENTS[task]}
    elif benchmark in ("ML10", "ML25", "ML45"):
        table = getattr(env_dict, f"{benchmark}_V3")
        train_classes, test_classes = table["train"], table["test"]
    else:
        raise ValueError(
            f"--protocol metaworld needs a Meta-World benchmark (ML1/<task>, ML10, ML25, ML45), got {benchmark!r}"
        )
    goals = load_tasks(benchmark)

    class _Cached(metaworld.Benchmark):
        def __init__(self) -> None:
            self._train_classes, self._test_classes = train_classes, test_classes
            self._train_tasks, self._test_tasks = list(goals["train"]), list(goals["test"])

    return _Cached()


def metaworld_evaluate(
    agent: Any,
    benchmark: str | None = None,
    split: str = "test",
    seed: int = 0,
    deterministic: bool = False,
    num_evals: int | None = None,
    adaptation_episodes: int | None = None,
    evaluation_episodes: int = 3,
    meta_batch_size: int | None = None,
    total_tasks_per_cls: int | None = None,
    max_episode_steps: int | None = None,
) -> dict[str, Any]:
    """Run ``metaworld.evaluation.metalearning_evaluation`` on our agent; JSON-ready result.

    Envs: what ``metaworld.make_ml_envs`` builds (sync, SAME_STEP autoreset,
    pseudorandom task order seeded with ``seed``) over the goals ``metarl.envs``
    uses (see :func:`_metaworld_benchmark`), ``meta_batch_size`` envs
    (default 4 per class) over the first ``total_tasks_per_cls`` goals of each class
    (default: the largest multiple of the envs per class up to 50, since every
    env must get the same number of goals). ``num_evals`` (default: enough to visit
    every kept goal once) rounds of adaptation + evaluation episodes.
    Adaptation episodes default to K - 1 (at least 1), so the evaluation episode is
    the K-th attempt the agent was trained on.
    """
    import metaworld  # heavy, and it must come after any MUJOCO_GL choice: imported where used
    from metaworld.evaluation import metalearning_evaluation

    s = resolve_settings(agent, EvalSettings(benchmark=benchmark, split=split, seed=seed, deterministic=deterministic,
                                             max_episode_steps=max_episode_steps))
    check_split(s.split)
    bench = _metaworld_benchmark(s.benchmark)
    classes = sorted(tasks(s.benchmark, s.split))
    k = int(s.episodes_per_trial or 10)
    adaptation_episodes = adaptation_episodes or max(1, k - 1)
    per_class = (meta_batch_size // len(classes)) if meta_batch_size else 4
    if per_class < 1 or (meta_batch_size and meta_batch_size % len(classes)):
        raise ValueError(f"meta-batch-size must be a positive multiple of the {len(classes)} task classes")
    mbs = per_class * len(classes)
    total = total_tasks_per_cls or (50 - 50 % per_class)
    if total % per_class:
        raise ValueError(f"total tasks per class ({total}) must be a multiple of the envs per class ({per_class})")
    num_evals = num_evals or total // per_class
    spec = get_benchmark(s.benchmark)
    space = spec.observation_space()
    action_dim = int(spec.action_space().shape[0])
    clock = (int(s.max_episode_steps or EPISODE_STEPS), k) if agent_env_kwargs(agent).get("clock") else None
    check_compatible(agent, ObsLayout(space.shape[0], action_dim, clock is not None).dim, action_dim, s.benchmark)
    reward_scale = agent_reward_scale(agent)
    reward_scale = spec.default_reward_scale if reward_scale is None else float(reward_scale)
    extra = {} if s.max_episode_steps is None else {"max_episode_steps": int(s.max_episode_steps)}
    # make_ml_envs minus the benchmark rebuild: same wrappers, same vector env
    envs = metaworld._make_ml_envs_inner(
        bench, seed=s.seed, meta_batch_size=mbs, total_tasks_per_cls=total, split=s.split,
        vector_strategy="sync", terminate_on_success=s.split == "test", task_select="pseudorandom",
        recurrent_info_in_obs=True, normalize_reward_in_recurrent_info=False, **extra,
    )
    adapter = MetaWorldProtocolAgent(agent, space.low, space.high, action_dim, reward_scale, s.deterministic, clock)
    recorder = _EpisodeRecorder(envs, adapter, evaluation_episodes)
    try:
        env_tasks = _env_task_names(envs)
        with seeded_torch(agent, s.seed):
            mean_success, mean_return, per_task = metalearning_evaluation(
                adapter, recorder, num_evals=num_evals, adaptation_steps=1,
                adaptation_episodes=adaptation_episodes, evaluation_episodes=evaluation_episodes,
            )
            recorder.complete_round()
    finally:
        envs.close()
    unbiased = per_env_success(recorder.ended, env_tasks, evaluation_episodes)
    task_rows = {t: {"success": float(per_task[t]), "success_per_env": unbiased.get(t, float("nan"))}
                 for t in sorted(per_task)}
    return {
        "benchmark": s.benchmark, "split": s.split, "protocol": "metaworld",
        "episodes_per_trial": k, "adaptation_episodes": adaptation_episodes,
        "evaluation_episodes": evaluation_episodes, "num_evals": num_evals, "meta_batch_size": mbs,
        "total_tasks_per_cls": total, "max_episode_steps": s.max_episode_steps, "seed": s.seed,
        "deterministic": s.deterministic, "tasks": task_rows,
        "success": float(np.mean([r["success"] for r in task_rows.values()])),
        "success_per_env": float(np.mean([r["success_per_env"] for r in task_rows.values()])),
        "success_reported_by_metaworld": float(mean_success), "mean_return": float(mean_return),
        "per_env_steps_played_on": recorder.completed_steps,
    }


