#!/usr/bin/env bash
# The one command for a lent H200 (at most 10 minutes), after bench/gpu/fetch_wheels.sh here:
#   device run, carry [".whl"], timeout_s 600:
#   bash bench/gpu/run.sh
# Writes $OUT/gpu.json (rewritten after each configuration) and $OUT/gpu.log.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.log"
timeout 570 python3 bench/gpu/run.py --out "$OUT/gpu.json" --budget-s 480 2>&1 | tee -a "$OUT/gpu.log"
