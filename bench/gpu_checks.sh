#!/usr/bin/env bash
# GPU checks for an offline CUDA machine (wheels in .whl/, GL debs in .gl/,
# see docs/gpu.md). Usage: bench/gpu_checks.sh STEP [STEP ...] with steps
#   tests      CPU/CUDA parity tests
#   cells      forward+backward time of every cell on CUDA (bench/cells.py)
#   envs       vector-env speed on all cores, ML10 (bench/envs.py)
#   envsweep   the same for 32 envs (default blocks with the caller's, 16 workers without it, spinning 2 ms) and 64 envs, plus lscpu
#   trainbench training throughput with the policy on CUDA (bench/train.py)
#   train      a time-boxed real ML1/reach-v3 training run (run dir in $OUT)
#   render     EGL rendering tests (upright frames per camera)
# Results go to $OUT (default ./gpu-out). Each step has its own time limit.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
log() { echo "== $* ($(date +%T))" | tee -a "$OUT/summary.txt"; }

if [ ! -f /tmp/site/.metarl-ready ]; then
  if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
  [ -d .whl ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  touch /tmp/site/.metarl-ready
fi
# the project itself: always reinstalled, so a warm machine never runs stale code
python3 -m pip install -q --no-index --no-deps --no-build-isolation --upgrade --target /tmp/site . >/dev/null 2>&1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 METARL_CACHE=${METARL_CACHE:-$PWD/.mwcache}
PY=python3
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')" | tee -a "$OUT/summary.txt"
echo "cores: $(nproc)" | tee -a "$OUT/summary.txt"

for step in "$@"; do
  log "$step"
  case $step in
    tests) timeout 90 $PY -m pytest -q -p no:cacheprovider tests/agents/test_cells.py tests/agents/test_forget_memory.py tests/agents/test_policy.py tests/metarl/test_graphstep.py -k cuda 2>&1 | tail -15 > "$OUT/cuda_tests.txt"
           tail -3 "$OUT/cuda_tests.txt" | tee -a "$OUT/summary.txt" ;;
    cells) timeout 80 $PY bench/cells.py --device cuda --repeats 3 2>&1 | tee "$OUT/cells_cuda.txt" | tail -25 ;;
    envs) timeout 80 $PY bench/envs.py --benchmark ML10 --num-envs 32 --steps 300 --repeats 3 2>&1 | tee "$OUT/envs_ml10.txt" | tail -20 ;;
    envsweep) lscpu > "$OUT/lscpu.txt" 2>&1; grep -E "^(CPU\(s\)|Thread|Core|Socket|Model name)" "$OUT/lscpu.txt" | tee -a "$OUT/summary.txt"
           for cfg in "32 auto 0" "32 16 0" "32 auto 0.002" "64 auto 0"; do read -r n w spin <<< "$cfg"
             echo "-- $n envs, $w workers (auto: one block per core, the caller's included), spin $spin s" | tee -a "$OUT/envsweep.txt"
             wk=""; [ "$w" != auto ] && wk="--workers $w"
             timeout 90 $PY bench/envs.py --benchmark ML10 --num-envs $n $wk --spin $spin --steps 200 --repeats 2 2>&1 \
               | grep -E "single|AsyncVectorEnv|ours|independent|busy|load" | tee -a "$OUT/envsweep.txt"
           done ;;
    trainbench) timeout 240 $PY bench/train.py --benchmark ML10 --num-envs 32 --device cuda --max-episode-steps 500 \
           --episodes-per-trial 2 --hidden 256 --bptt 250 --updates 3 --groups 2 --cuda-graph --trials 2 2>&1 | tee "$OUT/train_cuda.txt" | tail -20 ;;
    train) timeout -s INT ${TRAIN_SECONDS:-150} $PY -m metarl train configs/ml1_reach.yaml --run-dir "$OUT/run_reach" \
           --set env.num_envs=32 --set env.episodes_per_trial=2 --set total_steps=3000000 --set eval_interval=10 \
           --set progress=false 2>&1 | tail -30 | tee "$OUT/train_run.txt" ;;
    render) MUJOCO_GL=egl timeout 50 $PY -m pytest -q -p no:cacheprovider tests/metarl/test_render.py 2>&1 | tail -8 | tee "$OUT/render_egl.txt" ;;
    *) echo "unknown step $step (tests cells envs envsweep trainbench train render)" ;;
  esac
done
log "done"
