"""A trial's memory diagnostics: kept step by step while an agent plays, saved for ``metarl plot``.

Cells with memory report per step read/write weights, forget gates and usage
(``Agent.act(..., diagnostics=True)``). ``metarl record`` keeps them while it
films a trial and writes them as ``<video>.memory.npz``; :func:`trace_memory`
plays one trial without rendering for ``metarl plot`` when no recording exists.
Both hold the same arrays (:func:`memory_arrays`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metarl.envs import make_env, tasks
from metarl.evaluate import agent_env_kwargs, seeded_torch
from metarl.trials import SingleEnvBatch, Step, play_trials

History = dict[str, list[np.ndarray]]
"""Diagnostic name -> one array per step so far, of the first env."""


def keep_diagnostics(history: History, diagnostics: dict[str, np.ndarray]) -> None:
    """Append the first env's diagnostics of one step, (B, ...) -> (...) float32 each."""
    for key, value in diagnostics.items():
        history.setdefault(key, []).append(np.asarray(value[0], dtype=np.float32))


def memory_arrays(history: History, episodes_per_trial: int, max_episode_steps: int, successes: np.ndarray,
                  task: str, switch_steps: list[int] | None = None) -> dict[str, np.ndarray]:
    """What a ``.memory.npz`` holds: (K*T, ...) per diagnostic, the attempts' first steps, success per attempt, task;
    with ``switch_steps`` (a switching trial) also the steps whose info said ``task_switched``."""
    memory = {key: np.stack(v) for key, v in history.items()}  # (K*T, ...) per key
    memory["episode_starts"] = np.arange(episodes_per_trial) * max_episode_steps
    memory["successes"] = np.array(successes)
    memory["task"] = np.array(task)
    if switch_steps is not None:
        memory["switch_steps"] = np.array(switch_steps, dtype=np.int64)
    return memory


def trace_memory(agent: Any, benchmark: str, task: str | None = None, split: str = "test", seed: int = 0,
                 episodes_per_trial: int | None = None, max_episode_steps: int | None = None,
                 task_switches: int = 0) -> dict[str, np.ndarray]:
    """Play one deterministic trial without rendering and keep the memory diagnostics (what ``metarl record`` saves).

    ``task`` defaults to the split's first class (sorted). With ``task_switches`` > 0 the trial
    switches its task unannounced (``make_env(task_switches=...)``) and ``switch_steps`` holds the
    steps within the trial whose info said ``task_switched`` (each the first step on a new task).
    Returns an empty dict for cells without memory diagnostics (after their first step).
    """
    classes = tasks(benchmark, split)
    task = task or sorted(classes)[0]
    # env_index = class index, num_envs = #classes: every trial of this env plays ``task``
    env = make_env(benchmark, split=split, episodes_per_trial=episodes_per_trial, max_episode_steps=max_episode_steps,
                   env_index=classes.index(task), num_envs=len(classes), task_switches=task_switches,
                   **agent_env_kwargs(agent))
    history: History = {}
    switch_steps: list[int] = []

    def keep(step: Step) -> bool:
        if not step.diagnostics:
            return True  # no memory to show: stop at once
        keep_diagnostics(history, step.diagnostics)
        return False

    def note_switch(step: Step, infos: dict[str, np.ndarray], done: np.ndarray) -> None:
        if infos["task_switched"][0]:  # the step just played was the first on the new task
            switch_steps.append(step.t)

    try:
        with seeded_torch(agent, seed):
            played = play_trials(agent, SingleEnvBatch(env), env.trial_length, seed=seed, diagnostics=True, on_act=keep,
                                  on_step=note_switch)
    finally:
        env.close()
    if played.stopped:
        return {}
    return memory_arrays(history, env.episodes_per_trial, env.max_episode_steps, played.success[0], task,
                         switch_steps if task_switches else None)
