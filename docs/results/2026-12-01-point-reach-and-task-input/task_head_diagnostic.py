"""Does the task head infer held-out goals, or look up the train task with the nearest object?"""
import sys, numpy as np, torch
from metarl.checkpoint import load_agent
from metarl.envs import make_vec
from metarl.envs.registry import task_vectors
from metarl.evaluate import agent_env_kwargs
run, split = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "test")
agent = load_agent(run); cfg = agent.config; pol = agent.policy
train = task_vectors(cfg.env.benchmark, "train")[0]  # (50, 6): object xyz, goal xyz
mean, std = train.mean(0), train.std(0); std[std < 1e-8] = 1
tv = task_vectors(cfg.env.benchmark, split)[0]
torch.manual_seed(0)
envs = make_vec(cfg.env.benchmark, num_envs=25, split=split, episodes_per_trial=cfg.env.episodes_per_trial,
                max_episode_steps=cfg.env.max_episode_steps, workers=0, **agent_env_kwargs(agent))
L = envs.max_episode_steps
res = []
for r in range(2):
    obs, info = envs.reset(seed=r, options={"tasks": [(0, 25 * r + i) for i in range(25)]})
    goals = np.asarray(info["goal"]); state = agent.initial_state(25)
    for t in range(envs.trial_length):
        a, state = agent.act(obs, state, deterministic=False)
        if t in (L - 1, 2 * L - 1):
            with torch.no_grad():
                pred = pol.task_head(state[0].reshape(25, -1)).numpy() * std + mean  # (25, 1, H) -> (25, 6)
            true = tv[goals]
            near = train[np.argmin(((true[:, None, :2] - train[None, :, :2]) ** 2).sum(-1), axis=1)]  # train task with the nearest object
            res.append((t, np.linalg.norm(pred[:, 3:] - true[:, 3:], axis=1), np.linalg.norm(pred[:, 3:] - near[:, 3:], axis=1),
                        np.linalg.norm(pred[:, :3] - true[:, :3], axis=1), np.linalg.norm(true[:, 3:] - near[:, 3:], axis=1)))
        obs, *_ = envs.step(a)
for t in (L - 1, 2 * L - 1):
    rows = [x for x in res if x[0] == t]
    g_true, g_near, obj, base = (np.concatenate([x[i] for x in rows]) for i in (1, 2, 3, 4))
    print(f"{run.split('/')[-1]} {split} step {t + 1}: |pred goal - true goal| median {np.median(g_true)*100:.1f} cm; "
          f"|pred goal - goal of the train task with the nearest object| {np.median(g_near)*100:.1f} cm "
          f"(those two goals are {np.median(base)*100:.1f} cm apart); object error {np.median(obj)*100:.1f} cm")
