#!/usr/bin/env bash
# The GPU measurements in one go, at most seven minutes on one GPU (each step has its own limit):
#   bash benchmarks/cuda_session.sh OUT_FOLDER
# Writes OUT_FOLDER/<step>.log, the benchmarks' JSON (keep them with
# `python -m experiments.report add-bench OUT_FOLDER/bench`), the quick demo's run folder, the first
# minutes of a full-size polymnist_cross run (its metrics.jsonl gives the round rate), and
# steps.jsonl: one line per step with its exit status and seconds.
# Fashion-MNIST: /usr/share/datasets/fashion-mnist, or data/fashion-mnist (copied here from
# ../shared/data/fashion-mnist when that exists). PY picks the interpreter (default: python).
set -u
OUT=${1:?usage: bash benchmarks/cuda_session.sh OUT_FOLDER}
PY=${PY:-python}
mkdir -p "$OUT/bench"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA device: these are the GPU measurements (python -m benchmarks runs the CPU ones)" >&2
    exit 2
fi
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ ! -d data/fashion-mnist ] \
    && [ -d ../shared/data/fashion-mnist ]; then
    mkdir -p data && cp -r ../shared/data/fashion-mnist data/
fi

step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "== $name (at most ${limit} s)"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    printf '{"step": "%s", "exit": %d, "seconds": %d}\n' "$name" "$rc" $((SECONDS - start)) \
        | tee -a "$OUT/steps.jsonl"
}

B="$OUT/bench"
step throughput 45 "$PY" -m benchmarks.throughput --device cuda --out "$B/throughput_cuda.json"
step host_reads 45 "$PY" -m benchmarks.host_reads --device cuda --out "$B/host_reads_cuda.json"
step gpu 60 "$PY" -m benchmarks.gpu --quick --out "$B/gpu.json"
step fused_players 45 "$PY" -m benchmarks.fused_players --device cuda --quick \
    --out "$B/fused_players_cuda.json"
step compiled_round 90 "$PY" -m benchmarks.compiled_round --device cuda --steps 20 \
    --variants pyro fused compiled fused_compiled fused_bf16 \
    --out "$B/compiled_round_polymnist_cross_quick_cuda.json"
step demo 120 "$PY" -m experiments.polymnist_cross --quick --seed 0 --device cuda --no-progress \
    --out "$OUT/demo_cuda"
step full_start 60 "$PY" -m experiments.polymnist_cross --seed 0 --device cuda --no-progress \
    --out "$OUT/polymnist_cross_full"
echo "done: $OUT/steps.jsonl"
