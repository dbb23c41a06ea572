"""Callbacks for the log, and the tidy log history (step, epoch, train_loss, eval_loss, ...).

How long things took is kept apart from what was computed: `log_history.csv` and
`trainer_state.json` hold only values the same config reproduces byte for byte, and
`timings.json` beside them holds throughput and runtimes.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from jaflow.io import atomic_path

COLUMNS = (
    "step",
    "epoch",
    "train_loss",
    "eval_loss",
    "learning_rate",
    "tokens_seen",
)
# log-history keys that measure time, not training: they go to timings.json
TIMING_KEYS = frozenset(
    {
        "tokens_per_s",
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_tokens_per_second",
        "eval_runtime",
        "eval_samples_per_second",
        "eval_steps_per_second",
    }
)


def split_timings(state: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A trainer state without timing keys, and those keys per logged step."""
    clean, timings = dict(state), []
    clean["log_history"] = []
    for entry in state.get("log_history", []):
        timed = {k: v for k, v in entry.items() if k in TIMING_KEYS}
        clean["log_history"].append({k: v for k, v in entry.items() if k not in TIMING_KEYS})
        if timed:
            timings.append({"step": entry.get("step"), **timed})
    return clean, timings


class ThroughputCallback(TrainerCallback):
    """Adds `tokens_per_s` (non-padding tokens since the previous log / wall seconds) to each
    training log row of the state's history, so it survives in trainer_state.json."""

    def __init__(self) -> None:
        self._t = time.perf_counter()
        self._tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()
        self._tokens = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or not state.log_history:
            return
        now, seen = time.perf_counter(), state.num_input_tokens_seen
        if now > self._t:
            state.log_history[-1]["tokens_per_s"] = (seen - self._tokens) / (now - self._t)
        self._t, self._tokens = now, seen


class EvaluateAtEndCallback(TrainerCallback):
    """Evaluate and save at the last step too, so the final model is a candidate."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True


def tidy_rows(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per logged step, training and evaluation entries merged."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if "step" not in entry or "train_loss" in entry:  # skip the end-of-training summary
            continue
        row = rows.setdefault(
            int(entry["step"]), {c: None for c in COLUMNS} | {"step": int(entry["step"])}
        )
        mapping = {
            "epoch": "epoch",
            "loss": "train_loss",
            "eval_loss": "eval_loss",
            "learning_rate": "learning_rate",
            "num_input_tokens_seen": "tokens_seen",
        }
        for src, dst in mapping.items():
            if entry.get(src) is not None:
                row[dst] = entry[src]
    return [rows[s] for s in sorted(rows)]


def write_log_history(path: str | Path, log_history: Sequence[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in tidy_rows(log_history):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def read_log_history(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]
