"""Offline: can a GRU infer point-reach's goal from (pos, prev action, reward) history?"""
import sys, time, numpy as np, torch, torch.nn as nn
torch.set_num_threads(1)
from metarl.envs.toy import PointReachCore, PointReachBenchmark
from metarl.envs.registry import task_set
rng = np.random.default_rng(0)
goals = np.array(task_set("point-reach", "train").goals["point-reach"])
gm, gs = goals.mean(0), goals.std(0)
T = int(sys.argv[1]) if len(sys.argv) > 1 else 100
policy = sys.argv[2] if len(sys.argv) > 2 else "middle"
def batch(B):
    X = np.zeros((T, B, 7), np.float32); Y = np.zeros((B, 3), np.float32)
    mid = np.array([0, 0.85, 0.175])
    for b in range(B):
        g = goals[rng.integers(50)]; c = PointReachCore(); c.set_goal(g); p = c.reset(rng); r = 0.0; a = np.zeros(3)
        for t in range(T):
            X[t, b] = [*p, *a, r / 10]
            a = np.clip(np.clip((mid - p) * 30, -1, 1) + 0.6 * rng.standard_normal(3), -1, 1) if policy == "middle" else rng.uniform(-1, 1, 3)
            p, r, _ = c.step(a)
        Y[b] = (g - gm) / gs
    return torch.tensor(X), torch.tensor(Y)
Xv, Yv = batch(256)
mu = Xv.reshape(-1, 7).mean(0); sd = Xv.reshape(-1, 7).std(0) + 1e-6
class Net(nn.Module):
    def __init__(s, H=128):
        super().__init__(); s.enc = nn.Sequential(nn.Linear(7, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh()); s.gru = nn.GRU(128, H); s.head = nn.Linear(H, 3)
    def forward(s, x):
        h, _ = s.gru(s.enc((x - mu) / sd)); return s.head(h)
net = Net(); opt = torch.optim.Adam(net.parameters(), lr=float(sys.argv[3]) if len(sys.argv) > 3 else 5e-4)
t0 = time.time()
REUSE = int(sys.argv[4]) if len(sys.argv) > 4 else 1
for it in range(1, 401):
    if (it - 1) % REUSE == 0: X, Y = batch(32)
    loss = ((net(X) - Y) ** 2).mean(); opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step()
    if it % 50 == 0:
        with torch.no_grad():
            P = net(Xv); e = ((P - Yv) ** 2).mean(-1).mean(-1)  # per step
            err_m = (((P[-1] - Yv) * torch.tensor(gs, dtype=torch.float32)) ** 2).sum(-1).sqrt().median()
        print(it, f"all {e.mean():.3f} last-step {((P[-1]-Yv)**2).mean():.3f} median dist err at end {err_m*100:.1f} cm  t={time.time()-t0:.0f}s", flush=True)
