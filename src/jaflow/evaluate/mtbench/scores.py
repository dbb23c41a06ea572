"""Per-category MT-Bench scores from judgments: tidy rows for the report stage.

One row per (category, turn): `score` is the mean of the valid ratings (FastChat drops -1),
`stdev` the sample standard deviation of the per-choice means (empty with one choice), `n`
the valid ratings, `n_failed` parse failures, `n_errors` calls that never returned.
The `avg_score` row (category column) is the unweighted mean of the category scores, as the
model cards print it (34.3 / 8 = 4.2875); it is empty when a category has no valid rating.
With both turns judged, rows with turn `all` pool the two turns (FastChat's "Average").
`complete` is false when any judgment behind the row failed (allowed by judge.max_failures): a
report must mark that cell (and the radar) as incomplete. The provenance columns say who judged:
`judge` (name), `judge_sha256` (identity + settings + prompt set), `prompt_set`, `prompt_sha256`.
`ja_ratio` is the mean share of kana/kanji among the judged answers' letters (an answer in the
wrong language shows up here before it does in the score).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jaflow.evaluate.mtbench.categories import AVG_ROW, table_order

COLUMNS = (
    "model",
    "category",
    "turn",
    "score",
    "stdev",
    "n",
    "n_failed",
    "n_errors",
    "complete",
    "ja_ratio",
    "judge",
    "judge_sha256",
    "prompt_set",
    "prompt_sha256",
)


def _ja_ratio(rows: Sequence[Mapping[str, Any]]) -> float:
    values = [float(r["ja_ratio"]) for r in rows if r.get("ja_ratio") is not None]
    return _mean(values)


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _stdev(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) >= 2 else math.nan


def _choice_means(rows: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    by_choice: dict[int, list[float]] = {}
    for r in rows:
        if r["score"] is not None and r["score"] >= 0:
            by_choice.setdefault(int(r.get("choice", 0)), []).append(float(r["score"]))
    return {c: _mean(v) for c, v in by_choice.items()}


def _counts(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    n = sum(1 for r in rows if r["score"] is not None and r["score"] >= 0)
    errors = sum(1 for r in rows if r.get("status") == "error")
    return n, len(rows) - n - errors, errors


def score_rows(
    judgments: Iterable[Mapping[str, Any]], model: str, judge: Any = None
) -> list[dict[str, Any]]:
    """Rows of the scores CSV from model_judgment rows (score -1 = no rating); `judge` (a
    JudgeInfo) fills the provenance columns."""
    rows = list(judgments)
    out = _score_rows(rows, model)
    prov = {"judge": "", "judge_sha256": "", "prompt_set": "", "prompt_sha256": ""}
    if judge is not None:
        prov = {
            "judge": judge.name,
            "judge_sha256": judge.sha256,
            "prompt_set": judge.prompt_set.get("name", ""),
            "prompt_sha256": judge.prompt_set.get("sha256", ""),
        }
    for r in out:
        r["complete"] = r["n_failed"] == 0 and r["n_errors"] == 0
        r.update(prov)
    return out


def _score_rows(rows: list[Mapping[str, Any]], model: str) -> list[dict[str, Any]]:
    turns: list[Any] = sorted({int(r["turn"]) for r in rows})
    if len(turns) > 1:
        turns.append("all")
    out = []
    for turn in turns:
        in_turn = [r for r in rows if turn == "all" or int(r["turn"]) == turn]
        categories = table_order(r["category"] for r in in_turn)
        cat_scores: dict[str, float] = {}
        per_choice: dict[int, dict[str, float]] = {}
        for category in categories:
            sel = [r for r in in_turn if r["category"] == category]
            valid = [float(r["score"]) for r in sel if r["score"] is not None and r["score"] >= 0]
            means = _choice_means(sel)
            for c, m in means.items():
                per_choice.setdefault(c, {})[category] = m
            n, n_failed, n_errors = _counts(sel)
            cat_scores[category] = _mean(valid)
            out.append(
                dict(
                    model=model,
                    category=category,
                    turn=turn,
                    score=cat_scores[category],
                    stdev=_stdev(list(means.values())),
                    n=n,
                    n_failed=n_failed,
                    n_errors=n_errors,
                    ja_ratio=_ja_ratio(sel),
                )
            )
        complete = all(not math.isnan(s) for s in cat_scores.values())
        avg = _mean(list(cat_scores.values())) if complete else math.nan
        choice_avgs = [
            _mean(list(m.values())) for m in per_choice.values() if len(m) == len(categories)
        ]
        n, n_failed, n_errors = _counts(in_turn)
        out.append(
            dict(
                model=model,
                category=AVG_ROW,
                turn=turn,
                score=avg,
                stdev=_stdev(choice_avgs) if complete else math.nan,
                n=n,
                n_failed=n_failed,
                n_errors=n_errors,
                ja_ratio=_ja_ratio(in_turn),
            )
        )
    return out


def write_scores_csv(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    import pandas as pd

    from jaflow.io import atomic_path

    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
