#!/usr/bin/env bash
# Regenerate the JGLUE parity goldens with jp-stable's own evaluator (see docs/jglue.md).
#
#   tests/parity/regenerate.sh [JP_STABLE_GIT_DIR]
#
# JP_STABLE_GIT_DIR: a clone of github.com/Stability-AI/lm-evaluation-harness (default: cloned
# into $PARITY_DIR/repo). Builds a Python 3.11 venv with jp-stable's 2023 packages in $PARITY_DIR
# (default ~/.cache/jaflow/parity; nothing of it enters the repository), extracts the revisions
# the goldens come from and runs tests/parity/make_goldens.py for each. Needs the real JGLUE v1.1
# files in ${JGLUE_V11:-../shared/data/jglue-v1.1}. Keeps the committed tokenizers (delete
# tests/parity/goldens/tokenizers to rebuild them, which changes every golden).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PARITY_DIR="${PARITY_DIR:-$HOME/.cache/jaflow/parity}"
JGLUE_V11="${JGLUE_V11:-$ROOT/../shared/data/jglue-v1.1}"
PYTHON="${PYTHON:-python3.11}"
REVS="effdbea c10a2b8 2f1583c"
mkdir -p "$PARITY_DIR"
REPO="${1:-$PARITY_DIR/repo}"
[ -d "$REPO" ] || git clone --quiet https://github.com/Stability-AI/lm-evaluation-harness "$REPO"
if [ ! -x "$PARITY_DIR/venv/bin/python" ]; then
  "$PYTHON" -m venv "$PARITY_DIR/venv"
  # jp-stable's 2023 pins (datasets 2.14.7, transformers 4.35.2, sacrebleu 1.5.0, peft 0.6.2, ...);
  # torch: any CPU build (the scoring model is integer arithmetic)
  "$PARITY_DIR/venv/bin/pip" install --quiet torch "numpy<2" "datasets==2.14.7" "transformers==4.35.2" \
    "tokenizers==0.15.2" "sacrebleu==1.5.0" "peft==0.6.2" "fugashi==1.2.1" "unidic-lite==1.0.8" \
    "neologdn==0.5.6" "pyarrow<15" "pandas<2.2" "sentencepiece==0.2.*" protobuf emoji mojimoji jsonlines \
    numexpr omegaconf pybind11 pycountry pytablewriter rouge-score scikit-learn sqlitedict tqdm-multiprocess zstandard
fi
for rev in $REVS; do
  rm -rf "$PARITY_DIR/src/$rev" && mkdir -p "$PARITY_DIR/src/$rev"
  git -C "$REPO" archive "$rev" | tar -x -C "$PARITY_DIR/src/$rev"
  rm -rf "$HERE/goldens/$rev"
  OMP_NUM_THREADS=1 "$PARITY_DIR/venv/bin/python" "$HERE/make_goldens.py" --jp-stable "$PARITY_DIR/src/$rev" \
    --rev "$rev" --data "$JGLUE_V11"
done
