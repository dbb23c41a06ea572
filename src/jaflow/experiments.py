"""Seed-card experiments (config/experiments/): the files users supply under data/, with what
to do when one is missing (downloads pinned by commit and sha256 where there is one), and the
helper that converts SNOW T15's xlsx for seed 000."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import write_jsonl

# -- files the user supplies under data/ -----------------------------------------------------

# jp-stable FastChat at a07fec9 (2024-04-12), the state of the data at seed 004's card: after
# it, question 64 of question_full.jsonl was reworded and the reference answers replaced
# (2ef016e, 2024-06-05). The hint's download command checks each file's sha256.
JP_STABLE_COMMIT = "a07fec95abc6e8015427c12a0e17c800aa799fa9"
JP_STABLE = f"https://raw.githubusercontent.com/Stability-AI/FastChat/{JP_STABLE_COMMIT}/fastchat/llm_judge/data"
JP_STABLE_SHA256 = {
    "japanese_mt_bench/question_full.jsonl": "e0b4bb06c909386a9b932e247f87a5efd8877808aa886062ef17f87c29e479a4",
    "japanese_mt_bench/reference_answer/gpt-4.jsonl": "0631685c4ebc66390970588b658e4d19047fafb0a00ec1d841616686c07b0d6b",
    "judge_ja_prompts.jsonl": "a3ef723f4e282ced514c8919773549675f0c0f87a61e5a5f46c320b048803b40",
}
SNOW_T15_URL = "https://filedn.com/lit4DCIlHwxfS1gj9zcYuDJ/SNOW/T15-2020.1.7.xlsx"


def _pinned_download(rel: str) -> str:
    sha = JP_STABLE_SHA256.get(rel)
    check = f" && echo '{sha}  {{path}}' | sha256sum -c" if sha else ""
    return f"download it from Stability-AI/FastChat jp-stable at {JP_STABLE_COMMIT[:7]}: `curl -L -o {{path}} {JP_STABLE}/{rel}{check}`."


# (part of the path, what to do). The first match names the fix.
USER_DATA_HINTS: tuple[tuple[str, str], ...] = (
    (
        "ichikara-instruction",
        (
            "ichikara-instruction is not on the Hugging Face hub: apply for it on the LIAT-AIP "
            "(RIKEN) page linked from the Swallow-MoE card, then join the release's JSON files into "
            "one JSON-lines file, e.g. `jq -c '.[]' ichikara-instruction-*.json > {path}`."
        ),
    ),
    (
        "snow_t15",
        (
            "SNOW T15 is a loading-script dataset on the hub (refused by datasets >= 4, no parquet "
            f"export): `curl -L -o T15-2020.1.7.xlsx {SNOW_T15_URL} && "
            "python -m jaflow.experiments snow T15-2020.1.7.xlsx {path}` (needs openpyxl)."
        ),
    ),
    (
        "amazon_reviews_multilingual_JP",
        (
            "MARC-ja is rebuilt from Amazon's multilingual reviews corpus (JGLUE does not distribute "
            "it; Amazon withdrew the public download from "
            "https://s3.amazonaws.com/amazon-reviews-pds/tsv/amazon_reviews_multilingual_JP_v1_00.tsv.gz). "
            "Put your copy of that file at {path}; the rule checks JGLUE's published counts "
            "(train 187,528, valid 5,654)."
        ),
    ),
    (
        "alpaca_cleaned_ja",
        (
            "download it: `curl -L -o {path} "
            "https://raw.githubusercontent.com/shi3z/alpaca_ja/main/alpaca_cleaned_ja.json`."
        ),
    ),
    ("judge_ja_prompts", _pinned_download("judge_ja_prompts.jsonl")),
    ("japanese_mt_bench/", "{pinned}"),  # the file's own name below japanese_mt_bench/
    (
        "jglue",
        (
            "copy the upstream JGLUE v1.1 files (yahoojapan/JGLUE release v1.1.0, "
            "datasets/<task>-v1.1/) into this directory."
        ),
    ),
)


def user_file_hint(path: str) -> str:
    for key, hint in USER_DATA_HINTS:
        if key in path:
            if hint == "{pinned}":
                hint = _pinned_download(key + path.split(key, 1)[1])
            return hint.format(path=path)
    return "put the file there (the experiment config's comments and docs/REPRODUCE.md say where it comes from)."


def missing_user_file(path: str) -> None:
    """Raise the error a run gives for a user-supplied file that is not there."""
    raise DataError(f"{path}: this input is supplied by you and is missing: {user_file_hint(path)}")


# -- SNOW T15 for seed 000 -------------------------------------------------------------------

# SNOW_T15_URL is the xlsx the hub's loading script (snow_simplified_japanese_corpus) reads;
# that script is refused by datasets >= 4 and the hub has no parquet export of it.
# xlsx header -> the hub dataset's field names (ID, original_ja, simplified_ja, original_en)
SNOW_COLUMNS = {
    "ID": "ID",
    "#日本語(原文)": "original_ja",
    "#やさしい日本語": "simplified_ja",
    "#英語(原文)": "original_en",
}


def snow_rows(frame: Any) -> Iterator[dict[str, str]]:
    """Rows of SNOW's T15/T23 sheet (a pandas frame) with the hub dataset's field names."""
    missing = [c for c in SNOW_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"SNOW sheet: missing columns {missing} (found {list(frame.columns)})")
    for rec in frame[list(SNOW_COLUMNS)].to_dict("records"):
        yield {SNOW_COLUMNS[k]: str(v) for k, v in rec.items()}


def write_snow(xlsx: str | Path, out: str | Path) -> int:
    """Convert SNOW's xlsx (first sheet) to JSON lines; returns the row count."""
    import pandas as pd

    try:
        frame = pd.read_excel(xlsx, sheet_name=0, dtype=str)
    except ImportError as e:
        raise DataError(f"reading {xlsx} needs openpyxl: pip install openpyxl ({e})") from None
    rows = list(snow_rows(frame))
    write_jsonl(out, rows)
    return len(rows)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "snow":
        n = write_snow(argv[1], argv[2])
        print(f"wrote {n} rows to {argv[2]}")
        return 0
    print("usage: python -m jaflow.experiments snow T15-2020.1.7.xlsx OUT.jsonl", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
