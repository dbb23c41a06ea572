"""Report stage: tables, plots, significance tests and model cards from the tidy stage outputs.

Reads only what earlier stages write (docs/ARCHITECTURE.md):

- JGLUE `jglue/<suite>/<model>/scores.csv` (value and stderr on lm-eval's 0-1 scale) and,
  for the paired bootstrap, the per-sample logs beside it: `samples_<task>.jsonl` or
  `samples_<task><sep>…jsonl` (sep one of `_ - .`, e.g. lm-eval's `samples_jnli_<date>.jsonl`), one JSON
  object per line with `doc_id` and the metric's per-document value as a top-level key (`"acc": 1.0`,
  `"exact_match": 0.0`) or under `metrics`; with several lm-eval filters per document the `none` one wins.
- MT-Bench `mtbench/<bench>/scores/<judge>/<model>.csv` (categories in any case; turn 1 or 2).
- Training `train/<m>/log_history.csv`, optional `lisa_layers.csv` beside it (`step,layers`
  with the active layer indices in one cell, or long `step,layer` rows), `selection.json` in the model dir.
- `datasets/<d>/manifest.json` (per-source counts), `merge.json` and `checksums.sha256` in model dirs.

Modules: `tables` (table specs -> Markdown/CSV/LaTeX), `plots` (radar, training curves, sweeps),
`stats` (paired bootstrap), `cards` (model cards), `build` (one report, written atomically).
"""
