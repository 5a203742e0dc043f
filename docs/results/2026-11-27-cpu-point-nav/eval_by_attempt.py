"""Return and success by attempt of a run's final checkpoint on train and test goals (det and sampled actions)."""
import sys, numpy as np, torch
torch.set_num_threads(1)
from metarl.checkpoint import load_agent
from metarl.config import load_config
from metarl.rollout import make_envs, evaluate_trials, collect
from metarl.buffer import RolloutBuffer
run = sys.argv[1]
agent = load_agent(run)
cfg = agent.config if hasattr(agent, 'config') else None
from metarl.config import config_from_dict
import yaml
cfg = load_config(run + "/config.yaml", [])
for split in ("train", "test"):
    envs = make_envs(cfg.env, split, 64)
    s = evaluate_trials(envs, agent.policy, agent.normalize_obs, 2, 123, "cpu")
    det = s.ret / s.count
    buf = RolloutBuffer(envs.trial_length, 64, envs.single_observation_space.shape[0], envs.single_action_space.shape[0], envs.trial_length, torch.device("cpu"))
    r = collect(envs, agent.policy, buf, agent.normalize_obs, 123)
    sto = r.stats.ret / r.stats.count
    print(split, "det", np.round(det, 2), "stoch", np.round(sto, 2), "succ det", np.round(s.success/s.count,2))
    envs.close()
