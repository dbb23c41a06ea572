"""Seed-card experiments (config/experiments/): the files users supply under data/, with what
to do when one is missing, and the helper that extracts TyDi QA (Japanese) from the hub."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import write_jsonl

# -- files the user supplies under data/ -----------------------------------------------------

JP_STABLE = "https://raw.githubusercontent.com/Stability-AI/FastChat/jp-stable/fastchat/llm_judge/data"

# (part of the path, what to do). The first match names the fix.
USER_DATA_HINTS: tuple[tuple[str, str], ...] = (
    ("ichikara-instruction", (
        "ichikara-instruction is not on the Hugging Face hub: apply for it on the LIAT-AIP "
        "(RIKEN) page linked from the Swallow-MoE card, then join the release's JSON files into "
        "one JSON-lines file, e.g. `jq -c '.[]' ichikara-instruction-*.json > {path}`."
    )),
    ("tydiqa_ja", (
        "TyDi QA has Japanese only in its primary task; extract the rows once with "
        "`python -m jaflow.experiments tydiqa-ja {path}` (needs hub access)."
    )),
    ("alpaca_cleaned_ja", (
        "download it: `curl -L -o {path} "
        "https://raw.githubusercontent.com/shi3z/alpaca_ja/main/alpaca_cleaned_ja.json`."
    )),
    ("judge_ja_prompts", f"download it: `curl -L -o {{path}} {JP_STABLE}/judge_ja_prompts.jsonl`."),
    ("japanese_mt_bench/", (
        f"download it from Stability-AI/FastChat jp-stable: `curl -L -o {{path}} "
        f"{JP_STABLE}/japanese_mt_bench/{{tail}}`."
    )),
    ("jglue", (
        "copy the upstream JGLUE v1.1 files (yahoojapan/JGLUE release v1.1.0, "
        "datasets/<task>-v1.1/) into this directory."
    )),
)


def user_file_hint(path: str) -> str:
    for key, hint in USER_DATA_HINTS:
        if key in path:
            tail = path.split(key, 1)[1] if key.endswith("/") else ""
            return hint.format(path=path, tail=tail)
    return "put the file there (the experiment config's comments and docs/REPRODUCE.md say where it comes from)."


def missing_user_file(path: str) -> None:
    """Raise the error a run gives for a user-supplied file that is not there."""
    raise DataError(f"{path}: this input is supplied by you and is missing: {user_file_hint(path)}")


# -- TyDi QA (Japanese) for seed 000 ----------------------------------------------------------


def tydiqa_ja_rows(rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, str]]:
    """Japanese rows of TyDi QA's primary task with a minimal answer, as context/question/answer.

    The primary task gives the article as `document_plaintext`, passages and the minimal answer
    as UTF-8 byte offsets into it; the first annotation with a minimal answer is used, and the
    context is the passage that holds it.
    """
    for row in rows:
        if row.get("language") != "japanese":
            continue
        doc = row["document_plaintext"].encode("utf-8")
        ann = row["annotations"]
        for i, start in enumerate(ann["minimal_answers_start_byte"]):
            end = ann["minimal_answers_end_byte"][i]
            passage = ann["passage_answer_candidate_index"][i]
            if start < 0 or end <= start or passage < 0:
                continue
            cands = row["passage_answer_candidates"]
            p_start, p_end = cands["plaintext_start_byte"][passage], cands["plaintext_end_byte"][passage]
            yield {
                "id": str(row.get("id", "")) or f"tydiqa-{row['question_text']}",
                "context": doc[p_start:p_end].decode("utf-8", errors="replace").strip(),
                "question": row["question_text"],
                "answer": doc[start:end].decode("utf-8", errors="replace").strip(),
            }
            break


def write_tydiqa_ja(out: str | Path, split: str = "train") -> int:
    """Extract TyDi QA (Japanese) from the hub into a JSON-lines file; returns the row count."""
    import datasets

    ds = datasets.load_dataset("google-research-datasets/tydiqa", "primary_task", split=split)
    ds = ds.filter(lambda r: r["language"] == "japanese")
    rows = list(tydiqa_ja_rows(ds))
    write_jsonl(out, rows)
    return len(rows)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "tydiqa-ja":
        n = write_tydiqa_ja(argv[1])
        print(f"wrote {n} rows to {argv[1]}")
        return 0
    print("usage: python -m jaflow.experiments tydiqa-ja OUT.jsonl", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
