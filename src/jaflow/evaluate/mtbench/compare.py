"""Several judges on the same answers: one table, a column per judge, so a judge's effect on the
scores is visible before numbers from different judges are compared."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from jaflow.errors import DataError
from jaflow.evaluate.mtbench.categories import AVG_ROW, table_order


def judge_table(score_files: Iterable[str | Path], turn: int | str = 1) -> pd.DataFrame:
    """Rows (model, category), a column per judge (`<judge> [<prompt set>]`) holding its score,
    with '*' appended where the judge's row is incomplete; plus `spread` (max - min)."""
    frames = []
    for path in score_files:
        df = pd.read_csv(path, dtype={"turn": str}, keep_default_na=False)
        missing = {"model", "category", "turn", "score", "complete", "judge", "prompt_set"} - set(
            df.columns
        )
        if missing:
            raise DataError(
                f"{path}: not an MT-Bench scores CSV with provenance (missing {sorted(missing)})"
            )
        frames.append(df[df["turn"] == str(turn)])
    if not frames:
        raise DataError("judge_table: no score files")
    df = pd.concat(frames, ignore_index=True)
    df["column"] = df["judge"] + " [" + df["prompt_set"] + "]"
    df["score"] = pd.to_numeric(df["score"], errors="coerce")
    dup = df.duplicated(["model", "category", "column"])
    if dup.any():
        row = df[dup].iloc[0]
        raise DataError(f"judge_table: two score files for model {row['model']} by {row['column']}")
    values = df.pivot(index=["model", "category"], columns="column", values="score")
    complete = df.pivot(index=["model", "category"], columns="column", values="complete")
    shown = values.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    shown = shown.where(complete.astype(str) == "True", shown + "*")
    shown["spread"] = (values.max(axis=1) - values.min(axis=1)).map(
        lambda v: "" if pd.isna(v) else f"{v:.2f}"
    )
    order = {c: i for i, c in enumerate([*table_order(df["category"].unique()), AVG_ROW])}
    shown = shown.reset_index()
    shown["_o"] = shown["category"].map(lambda c: order.get(c, len(order)))
    return shown.sort_values(["model", "_o"]).drop(columns="_o").reset_index(drop=True)
