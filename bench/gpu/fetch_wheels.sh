#!/usr/bin/env bash
# Fetch the wheels bench/gpu/run.sh installs on the lent H200 (its image has torch 2.11,
# transformers 5.17, peft, accelerate, pyarrow, pandas; not these). Run here, in the repo root;
# .whl/ is ignored by git (added to .git/info/exclude) and travels with `carry: [".whl"]`.
# Versions are the ones the CPU tests ran with; --no-deps, so every missing dependency is named.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> "$(git rev-parse --git-common-dir)/info/exclude"
PY=${PY:-python3}
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl \
  bitsandbytes==0.50.2 trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 \
  mergekit==0.1.5 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  immutables==0.21
# optional, for the packing and Liger rows (FlashAttention varlen needs a wheel built for the
# image's torch 2.11 / CUDA 13; without one the packed rows use sdpa's block-diagonal mask):
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl \
  liger-kernel || echo "liger-kernel: no wheel fetched (the bench skips its rows)"
du -sh .whl
