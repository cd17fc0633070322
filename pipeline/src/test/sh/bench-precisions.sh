#!/usr/bin/env bash
# The train step in fp32, emulated bf16 and emulated fp16, and the PyTorch reference's fp32 step,
# alternating in one run so that they share the machine's load (printed before each run):
#   pipeline/src/test/sh/bench-precisions.sh [ROUNDS] [PRESET] [BATCH] [ANCHORS]
# ANCHORS: the folder of the outside reference's bench_ref.py (default ../shared/anchors; skipped if absent).
# fmnist-tiny is the reference's "workload" preset, fmnist-small its "small".
set -uo pipefail
ROUNDS=${1:-2}; PRESET=${2:-fmnist-tiny}; BATCH=${3:-64}; ANCHORS=${4:-../shared/anchors}
JAR=${JAR:-pipeline/target/dinostream.jar}
case $PRESET in fmnist-tiny) REF=workload ;; fmnist-small) REF=small ;; *) REF= ;; esac
summary='import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d.get(k) for k in ("precision","images_per_s","step_ms_median","achieved_gflops","peak_fraction","cpu_model")}))'
for r in $(seq "$ROUNDS"); do
  for p in fp32 bf16 fp16; do
    echo "round $r $p load $(cut -d' ' -f1-3 /proc/loadavg)"
    java -jar "$JAR" bench train-step --preset "$PRESET" --batch "$BATCH" --threads 2 --steps 8 --warmup 2 --precision $p --json 2>/dev/null \
      | /usr/bin/python3 -c "$summary"
  done
  if [ -n "$REF" ] && [ -f "$ANCHORS/bench_ref.py" ]; then
    echo "round $r reference load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$ANCHORS" && OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench_ref.py --preset $REF --threads 2 --batch "$BATCH" --skip_aug 1 --steps 8 --warmup 2) 2>/dev/null \
      | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'
  fi
done
