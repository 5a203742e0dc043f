"""Task inference (``ppo.task_coef``): hidden task vectors, their targets in the buffer, the loss."""

import pickle

import numpy as np
import pytest
import torch

from metarl import train as train_mod
from metarl.buffer import RolloutBuffer
from metarl.agents import make_policy
from metarl.checkpoint import load_agent, load_checkpoint, task_dim
from metarl.config import load_config
from metarl.envs import make_vec
from metarl.envs.registry import task_set, task_vectors
from metarl.ppo import task_inference_loss
from metarl.rollout import collect

TOY = [
    "env.benchmark=point-nav", "env.num_envs=16", "env.episodes_per_trial=2", "env.max_episode_steps=20",
    "env.workers=0", "agent.cell=gru", "agent.hidden_size=32", "agent.encoder_sizes=[32]",
    "ppo.epochs=4", "ppo.lr=0.003", "eval_interval=0", "progress=false", "tensorboard=false",
    "device=cpu", "torch_threads=1",
]


def test_meta_world_task_vectors_are_the_goals_rand_vec_and_classes_are_one_hot():
    ts = task_set("ML1/reach-v3", "test")
    v = task_vectors("ML1/reach-v3", "test")
    assert v.shape == (1, 50, 6)
    for g, goal in enumerate(ts.goals["reach-v3"]):
        np.testing.assert_array_equal(v[0, g], pickle.loads(goal.data)["rand_vec"])
    ml10 = task_vectors("ML10", "train")  # rand_vecs of 3 or 6 numbers, zero-padded, then a one-hot of 10
    assert ml10.shape == (10, 50, 16)
    np.testing.assert_array_equal(ml10[:, :, 6:], np.broadcast_to(np.eye(10)[:, None], (10, 50, 10)))
    door = task_set("ML10", "train").classes.index("door-open-v3")
    assert (ml10[door, :, 3:6] == 0).all()


def test_toy_task_vectors_and_a_benchmark_without_them():
    angle = task_set("point-nav", "train").goals["point-nav"][7]
    np.testing.assert_allclose(task_vectors("point-nav")[0, 7], [np.cos(angle), np.sin(angle)])
    np.testing.assert_array_equal(task_vectors("bandit")[0, 3], task_set("bandit", "train").goals["bandit"][3])


def test_collect_records_each_envs_trial_task():
    envs = make_vec("point-nav", num_envs=5, episodes_per_trial=2, max_episode_steps=4, workers=0)
    cfg = load_config(None, TOY)
    policy = make_policy(cfg.agent, envs.single_observation_space.shape[0], 2, task_dim=task_dim(cfg))
    buf = RolloutBuffer(envs.trial_length, 5, envs.single_observation_space.shape[0], 2, envs.trial_length)
    rollout = collect(envs, policy, buf, None, seed=11)
    _, infos = envs.reset(seed=11)  # the same seed starts the same tasks
    np.testing.assert_array_equal(rollout.tasks, np.stack([infos["task_id"], infos["goal"]], 1))
    assert len(set(rollout.tasks[:, 1])) > 1  # goals differ between envs


def test_where_the_task_switches_collect_records_every_steps_task_and_the_targets_follow_it():
    """With a mid-trial switch the task-inference target is each step's own task: the
    recorded goal changes exactly at the first step of the switched attempt, and the
    per-step loss differs from the loss against the trial's first task."""
    envs = make_vec("point-nav", num_envs=6, episodes_per_trial=3, max_episode_steps=4, workers=0, task_switches=1)
    cfg = load_config(None, TOY)
    policy = make_policy(cfg.agent, envs.single_observation_space.shape[0], 2, task_dim=task_dim(cfg))
    buf = RolloutBuffer(envs.trial_length, 6, envs.single_observation_space.shape[0], 2, envs.trial_length)
    rollout = collect(envs, policy, buf, None, seed=3)
    assert rollout.step_tasks.shape == (12, 6, 2)
    np.testing.assert_array_equal(rollout.step_tasks[0], rollout.tasks)
    envs.reset(seed=3)  # replay the same trials to read where each switched
    switched = np.stack([envs.step(np.zeros((6, 2), np.float32))[4]["task_switched"] for _ in range(12)])  # (T, N)
    for n in range(6):
        changes = np.flatnonzero(np.diff(rollout.step_tasks[:, n, 1])) + 1
        assert changes.tolist() == np.flatnonzero(switched[:, n]).tolist() and len(changes) == 1
        assert changes[0] % 4 == 0  # at an attempt boundary (4 steps per attempt)
    table = train_mod._task_targets("point-nav")
    per_step = table[rollout.step_tasks[..., 0], rollout.step_tasks[..., 1]]  # (T, N, F)
    first = table[rollout.tasks[:, 0], rollout.tasks[:, 1]]  # (N, F)
    pred = per_step.clone()
    assert task_inference_loss(pred, per_step).item() == 0.0
    assert task_inference_loss(pred, first).item() > 0.0
    plain = make_vec("point-nav", num_envs=2, episodes_per_trial=2, max_episode_steps=4, workers=0)
    buf2 = RolloutBuffer(plain.trial_length, 2, plain.single_observation_space.shape[0], 2, plain.trial_length)
    assert collect(plain, policy, buf2, None, seed=3).step_tasks is None  # no switches: one task per trial


def test_per_step_targets_reach_the_minibatches_aligned_with_their_steps():
    buf = RolloutBuffer(4, 3, 5, 2, 2)  # T=4, N=3, chunks of 2
    buf.task_targets = torch.arange(4 * 3, dtype=torch.float32).view(4, 3, 1)  # (T, N, F): value t*3+n
    for mb in buf.minibatches(1, torch.Generator().manual_seed(0)):
        assert mb.task_targets.shape == (2, 6, 1)  # (L, M, F)
        t0 = mb.task_targets[0, :, 0]  # the first step of each (chunk, env) sequence
        assert set((t0 // 3).long().tolist()) == {0, 2} and (mb.task_targets[1, :, 0] - t0 == 3).all()


def test_task_loss_is_the_mse_against_the_trials_vector_at_every_step():
    pred = torch.zeros(3, 2, 4)  # (L, M, F)
    targets = torch.tensor([[1.0, 1, 1, 1], [2.0, 2, 2, 2]])  # (M, F)
    assert task_inference_loss(pred, targets).item() == pytest.approx((1 + 4) / 2)


def test_training_with_task_inference_learns_to_infer_the_goal_and_the_agent_evaluates(tmp_path):
    """On point-nav the goal is inferable from the rewards: the head's error falls well below
    the prior's (1 per dim after standardising), and the policy with its head saves, loads, evaluates."""
    cfg = load_config(None, TOY + ["ppo.task_coef=1.0", "total_steps=64000"])
    train_mod.train(cfg, tmp_path)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    first = np.mean([float(r["losses/task_loss"]) for r in rows[:5]])
    last = np.mean([float(r["losses/task_loss"]) for r in rows[-5:]])
    assert last < 0.5 * first and last < 0.5, (first, last)
    state = load_checkpoint(tmp_path)
    assert state["model"]["task_head.weight"].shape == (2, 32)
    agent = load_agent(tmp_path)
    assert agent.policy.task_head is not None


def test_without_task_coef_the_policy_has_no_task_head():
    cfg = load_config(None, TOY)
    assert make_policy(cfg.agent, 7, 2, task_dim=task_dim(cfg)).task_head is None
    with pytest.raises(ValueError, match="no task-inference head"):
        p = make_policy(cfg.agent, 7, 2, task_dim=task_dim(cfg))
        p.evaluate(torch.zeros(2, 1, 7), p.initial_state(1), torch.zeros(2, 1, dtype=torch.bool), torch.zeros(2, 1, 2), with_task=True)


def test_task_input_heads_read_the_detached_prediction_and_step_equals_sequence():
    """With agent.task_input the actor and critic read [cell output, task prediction]: the
    one-step path equals the sequence path, and only the task loss reaches the task head."""
    cfg = load_config(None, TOY + ["ppo.task_coef=1.0", "agent.task_input=true"])
    torch.manual_seed(0)
    policy = make_policy(cfg.agent, 7, 2, task_dim=task_dim(cfg))
    assert policy.task_trunk is not None
    T, B = 5, 3
    obs, reset = torch.randn(T, B, 7), torch.zeros(T, B, dtype=torch.bool)
    reset[0] = True
    state = policy.initial_state(B)
    actions, values = [], []
    with torch.no_grad():
        for t in range(T):
            out = policy.act(obs[t], state, reset[t])
            state = out.state
            actions.append(out.action)
            values.append(out.value)
    log_prob, _, value, pred = policy.evaluate(obs, policy.initial_state(B), reset, torch.stack(actions), with_task=True)
    torch.testing.assert_close(value, torch.stack(values), rtol=1e-5, atol=1e-5)
    (log_prob.sum() + value.sum()).backward(retain_graph=True)  # the RL losses' inputs
    assert policy.task_head.weight.grad is None or not policy.task_head.weight.grad.any()
    assert policy.task_trunk[0].weight.grad.abs().sum() > 0
    pred.sum().backward()
    assert policy.task_head.weight.grad.abs().sum() > 0


def test_task_input_without_the_task_loss_is_a_config_error():
    from metarl.config import ConfigError

    with pytest.raises(ConfigError, match="'agent.task_input' needs 'ppo.task_coef' > 0"):
        load_config(None, TOY + ["agent.task_input=true"])


def test_obs_noise_perturbs_only_the_env_dims_the_policy_sees_and_is_seeded():
    """normalize.obs_noise: the buffer's env dims are the raw obs plus noise of that std, the
    rest (clock, previous action and reward, flags) and the raw observations are untouched,
    and the same seed draws the same noise."""
    envs = make_vec("point-reach-puck", num_envs=8, episodes_per_trial=2, max_episode_steps=10, workers=0, clock=True)
    D, A = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    policy = make_policy(load_config(None, TOY).agent, D, A)
    layout = envs.obs_layout

    def run(noise: float, seed: int = 5):
        buf = RolloutBuffer(envs.trial_length, 8, D, A, envs.trial_length)
        torch.manual_seed(0)
        rollout = collect(envs, policy, buf, None, seed=seed, obs_noise=noise, noise_dims=layout.env)
        return buf.obs.numpy().copy(), rollout.raw_obs

    clean, raw = run(0.0)
    noisy, raw_noisy = run(0.5)
    again, _ = run(0.5)
    np.testing.assert_array_equal(clean, raw)
    np.testing.assert_array_equal(raw_noisy[0], raw[0])  # the same first observations
    diff = noisy[0] - raw_noisy[0]  # (N, D) at step 0, before the noise could change the actions
    assert abs(diff[:, layout.env].std() - 0.5) < 0.15
    np.testing.assert_array_equal(diff[:, layout.env.stop:], 0)
    np.testing.assert_array_equal(noisy, again)


def test_task_dims_choose_the_predicted_dims_and_name_the_valid_range():
    """``ppo.task_dims`` keeps only those columns of the standardised targets; the head is that wide."""
    full = train_mod._task_targets("point-nav")  # (1, G, 2)
    assert torch.equal(train_mod._task_targets("point-nav", [1]), full[..., [1]])
    cfg = load_config(None, TOY + ["ppo.task_coef=1.0", "ppo.task_dims=[1]"])
    assert task_dim(cfg) == 1
    with pytest.raises(ValueError, match=r"ppo.task_dims \[2\] are outside point-nav's 2-dim task vector"):
        train_mod._task_targets("point-nav", [0, 2])
