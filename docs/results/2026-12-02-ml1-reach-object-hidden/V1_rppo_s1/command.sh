#!/bin/bash
# RecurrentPPO (sb3-contrib) on the same trial envs as ml1_reach_infer, stopped by a wall-clock budget
source /work/main/.venv/bin/activate
export METARL_CACHE=/tmp/mwcache
cd /tmp/exp
timeout -s INT ${BUDGET:-1400} metarl train --run-dir /tmp/exp/V1_rppo_s1 --set agent.kind=sb3-recurrent-ppo \
  --set env.benchmark=ML1/reach-v3 --set env.num_envs=32 --set env.episodes_per_trial=2 --set env.max_episode_steps=100 \
  --set env.clock=true --set agent.hidden_size=128 --set agent.encoder_sizes=[128,128] --set normalize.reward_input=true \
  --set total_steps=2000000 --set seed=1 --set progress=false --set eval_interval=10 --set torch_threads=1 > /tmp/exp/V1_rppo_s1.log 2>&1
echo "train rc=$?" >> /tmp/exp/V1_rppo_s1.log
bash /tmp/exp/evalrun.sh V1_rppo_s1 >> /tmp/exp/V1_rppo_s1.log 2>&1
