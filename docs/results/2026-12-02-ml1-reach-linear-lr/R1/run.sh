#!/bin/bash
# run.sh SEED BUDGET_CPU_S: sb3-contrib RecurrentPPO on the same trial envs as ml1_reach_infer,
# stopped with SIGINT (Ctrl-C's checkpoint) once its process tree has used BUDGET_CPU_S CPU seconds
source /work/main/.venv/bin/activate
export METARL_CACHE=/tmp/mwcache
N=R$1
nice -n 10 metarl train --run-dir /tmp/exp/$N --set agent.kind=sb3-recurrent-ppo \
  --set env.benchmark=ML1/reach-v3 --set env.num_envs=32 --set env.episodes_per_trial=2 --set env.max_episode_steps=100 \
  --set env.clock=true --set agent.hidden_size=128 --set "agent.encoder_sizes=[128,128]" --set normalize.reward_input=true \
  --set total_steps=2000000 --set seed=$1 --set progress=false --set eval_interval=10 --set torch_threads=1 > /tmp/exp/$N.log 2>&1 &
PID=$!
while kill -0 $PID 2>/dev/null; do
  c=$(/tmp/exp/cputime.sh $PID); echo "$(date +%s) $c" >> /tmp/exp/$N.cpu
  if [ $(echo "$c >= $2" | bc) = 1 ]; then kill -INT $PID; echo "SIGINT at cpu $c s" >> /tmp/exp/$N.log; break; fi
  sleep 10
done
wait $PID; echo "train rc=$?" >> /tmp/exp/$N.log
