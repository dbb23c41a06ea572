#!/usr/bin/env bash
# Prove the training stack's version floors in pyproject.toml: an overlay environment over the
# shared venv with the floor versions installed on top (transformers 5.17 with the hub it needs,
# as on the lent GPU image), then the training tests that touch every renamed argument
# (activation vs gradient checkpointing, train_sampling_strategy), QLoRA, packing, selection and
# SIGKILL-then-resume.
#   bash bench/floors.sh [path/to/venv/python]
set -euo pipefail
BASE=${1:-/work/main/.venv/bin/python}
FLOOR=${FLOOR_DIR:-/tmp/jaflow-floor}
rm -rf "$FLOOR"
"$BASE" -m venv --without-pip "$FLOOR"
SP=$("$FLOOR/bin/python" -c "import site; print(site.getsitepackages()[0])")
"$BASE" -c "import site; print(site.getsitepackages()[0])" > "$SP/zz_base.pth"
"$BASE" -m pip --python "$FLOOR/bin/python" install -q --no-deps --target "$SP" \
  "transformers==5.17.0" "huggingface-hub==1.33.0" httpx httpcore  # 5.17 needs httpx; 5.24 does not
"$FLOOR/bin/python" -c "import transformers; print('transformers', transformers.__version__)"
PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 "$FLOOR/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_train.py tests/test_train_resume.py -k "not downstream"
