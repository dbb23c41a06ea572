"""Readers for the tidy outputs of earlier stages. Bad input names file and line."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from jaflow.errors import DataError
from jaflow.io import iter_jsonl

JGLUE_COLUMNS = (
    "model",
    "task",
    "task_version",
    "template",
    "num_fewshot",
    "metric",
    "value",
    "stderr",
    "n",
)
MTBENCH_COLUMNS = ("model", "category", "turn", "score", "stdev", "n", "n_failed", "n_errors")
LOG_COLUMNS = ("step", "train_loss", "eval_loss", "learning_rate")


def _read_csv(path: str | Path, required: Iterable[str], numeric: Iterable[str]) -> pd.DataFrame:
    """Read a CSV, check its header, and parse numeric columns; errors name file and line."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot read CSV ({e})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}:1: missing column(s) {missing} (header: {list(df.columns)})")
    for col in numeric:
        if col not in df.columns:
            continue
        parsed = pd.to_numeric(df[col].replace("", None), errors="coerce")
        bad = parsed.isna() & (df[col].str.strip() != "") & (df[col].str.lower() != "nan")
        if bad.any():
            i = int(bad.idxmax())
            raise DataError(f"{path}:{i + 2}: column '{col}' is not a number: {df[col][i]!r}")
        df[col] = parsed
    return df


def read_jglue_scores(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate JGLUE scores.csv files, adding `path`.

    The suite of each row is the file's `suite` column, written by the JGLUE stage; a file
    without it is an error (the report never reads a suite back from a path).
    """
    frames = []
    for p in paths:
        df = _read_csv(
            p, ("model", "task", "metric", "value"), ("value", "stderr", "n", "num_fewshot")
        )
        if "suite" not in df.columns:
            raise DataError(
                f"{p}:1: no 'suite' column (header: {list(df.columns)}); the JGLUE stage writes "
                "scores.csv with the suite each row was evaluated in"
            )
        for col in JGLUE_COLUMNS:
            if col not in df.columns:
                df[col] = float("nan") if col in ("stderr", "n", "num_fewshot") else ""
        df["path"] = str(p)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*JGLUE_COLUMNS, "suite", "path"])
    return pd.concat(frames, ignore_index=True)


def read_mtbench_scores(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate MT-Bench score CSVs; categories are lower-cased, `turn` kept as text."""
    frames = []
    for p in paths:
        df = _read_csv(
            p,
            ("model", "category", "turn", "score"),
            ("score", "stdev", "n", "n_failed", "n_errors"),
        )
        df["category"] = df["category"].str.strip().str.lower()
        df["turn"] = df["turn"].str.strip().map(_turn_text)
        df["path"] = str(p)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*MTBENCH_COLUMNS, "path"])
    return pd.concat(frames, ignore_index=True)


def _turn_text(turn: str) -> str:
    """'1', '1.0' -> '1' (turns compare as text so a non-numeric turn such as 'all' survives)."""
    try:
        return str(int(float(turn)))
    except ValueError:
        return turn


def read_log_history(path: str | Path) -> pd.DataFrame:
    """Training log: step, epoch, train_loss, eval_loss, learning_rate, ... (empty cells allowed)."""
    return _read_csv(
        path,
        ("step",),
        ("step", "epoch", "train_loss", "eval_loss", "learning_rate", "tokens_seen"),
    )


def _layers(text: str, path: Path, line: int) -> list[int]:
    try:
        return [int(x) for x in re.findall(r"-?\d+", text)]
    except ValueError:
        raise DataError(f"{path}:{line}: cannot read layer indices from {text!r}") from None


def read_lisa_layers(path: str | Path) -> pd.DataFrame:
    """LISA active layers as long rows (step, layer).

    Accepts `step,layers` with the layer indices in one cell (``"3 7"``, ``"3;7"``, ``"[3, 7]"``)
    or long rows `step,layer`.
    """
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "step" not in fields:
            raise DataError(f"{path}:1: missing column 'step' (header: {fields})")
        layer_col = next((c for c in fields if c != "step"), None)
        if layer_col is None:
            raise DataError(f"{path}:1: no layer column besides 'step'")
        for lineno, rec in enumerate(reader, start=2):
            try:
                step = int(float(rec["step"]))
            except (TypeError, ValueError):
                raise DataError(f"{path}:{lineno}: step is not a number: {rec['step']!r}") from None
            rows += [
                {"step": step, "layer": layer}
                for layer in _layers(rec[layer_col] or "", path, lineno)
            ]
    return pd.DataFrame(rows, columns=["step", "layer"])


def read_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def find_samples(
    scores_csv: str | Path, task: str, version: str = "", template: str = ""
) -> Path | None:
    """The per-sample log of `task` next to a scores.csv.

    Tried in order: `samples_<task>-<version>-<template>.jsonl` (the jp-stable task name the JGLUE
    stage writes), `samples_<task>.jsonl`, then `samples_<task><sep>*.jsonl` (lm-eval's own
    `samples_<task>_<date>.jsonl`; the newest name wins).
    """
    folder = Path(scores_csv).parent
    names = [f"{task}-{version}-{template}"] if version and template else []
    for name in [*names, task]:
        if (folder / f"samples_{name}.jsonl").exists():
            return folder / f"samples_{name}.jsonl"
    # `samples_jnli_2024…` but not `samples_jnli2…` for task `jnli`: the task name must end at a separator.
    candidates = sorted(
        p
        for p in folder.glob(f"samples_{task}*.jsonl")
        if re.match(rf"samples_{re.escape(task)}[_\-.]", p.stem + ".")
    )
    return candidates[-1] if candidates else None


def read_samples(path: str | Path, metric: str) -> pd.Series:
    """Per-sample metric values indexed by `doc_id`.

    Each line is a JSON object with `doc_id` and the metric's value, either as a top-level key
    (lm-eval's own samples files: ``{"doc_id": 3, "acc": 1.0, "filter": "none", ...}``) or inside
    a `metrics` mapping. When lm-eval logged several filters for a document, the `none` filter
    (else the first) is kept.
    """
    path = Path(path)
    values: dict[object, float] = {}
    filters: dict[object, str] = {}
    for lineno, obj in iter_jsonl(path):
        if "doc_id" not in obj:
            raise DataError(f"{path}:{lineno}: expected an object with 'doc_id'")
        source = obj["metrics"] if isinstance(obj.get("metrics"), dict) else obj
        if metric not in source:
            raise DataError(
                f"{path}:{lineno}: no value for metric '{metric}' (keys: {sorted(source)})"
            )
        try:
            value = float(source[metric])
        except (TypeError, ValueError):
            raise DataError(
                f"{path}:{lineno}: metric '{metric}' is not a number: {source[metric]!r}"
            ) from None
        doc, flt = obj["doc_id"], str(obj.get("filter", "none"))
        if doc in values and (filters[doc] == "none" or flt != "none"):
            continue
        values[doc], filters[doc] = value, flt
    if not values:
        raise DataError(f"{path}: no samples")
    return pd.Series(values, name=metric, dtype=float)
