"""A tiny Japanese MT-Bench in FastChat's schema: a few short two-turn questions per category.

Questions of the reference categories (math, reasoning, coding) carry a `reference` field (as
upstream English MT-Bench's question.jsonl does); `write_tiny_reference_answers` writes the same
answers as a FastChat reference_answer file.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from jaflow.io import write_jsonl

# (category, turn 1, turn 2, reference turns or None); short, everyday Japanese.
POOL: list[tuple[str, str, str, tuple[str, str] | None]] = [
    (
        "coding",
        "1から3までの数を足すコードを書いてください。",
        "答えも書いてください。",
        ("print(1 + 2 + 3)", "答えは6です。"),
    ),
    (
        "coding",
        "文字列を大きくするコードを書いてください。",
        "例も書いてください。",
        ("print(s.upper())", "abcはABCです。"),
    ),
    (
        "extraction",
        "次の文から名前を出してください：田中さんは東京に行きました。",
        "場所も出してください。",
        None,
    ),
    (
        "extraction",
        "次の文から日付を出してください：会議は5月3日です。",
        "月だけを書いてください。",
        None,
    ),
    ("humanities", "日本の春の行事を一つ説明してください。", "それは何月ですか。", None),
    ("humanities", "本を読むよさを説明してください。", "短く書き直してください。", None),
    (
        "math",
        "2と3を足すといくつですか。",
        "その数に4をかけるといくつですか。",
        ("2と3を足すと5です。", "5に4をかけると20です。"),
    ),
    (
        "math",
        "10から4を引くといくつですか。",
        "その数を2で割るといくつですか。",
        ("10から4を引くと6です。", "6を2で割ると3です。"),
    ),
    (
        "reasoning",
        "山田さんは田中さんより高いです。田中さんは林さんより高いです。一番高いのは誰ですか。",
        "一番低いのは誰ですか。",
        ("一番高いのは山田さんです。", "一番低いのは林さんです。"),
    ),
    (
        "reasoning",
        "りんごが3つあります。1つ食べました。いくつ残っていますか。",
        "もう1つ食べるといくつですか。",
        ("2つ残っています。", "1つ残っています。"),
    ),
    (
        "roleplay",
        "あなたは店の人です。お客さんにあいさつしてください。",
        "おすすめを一つ言ってください。",
        None,
    ),
    ("roleplay", "あなたは先生です。生徒をほめてください。", "次の目標を言ってください。", None),
    ("stem", "水は何度でこおりますか。", "それはなぜですか。", None),
    ("stem", "月はなぜ光って見えますか。", "短く書き直してください。", None),
    ("writing", "春についての短い文を書いてください。", "それを一文にしてください。", None),
    ("writing", "友だちへの短い手紙を書いてください。", "もっとていねいにしてください。", None),
]


def tiny_questions(seed: int = 0, per_category: int = 1) -> list[dict[str, Any]]:
    """`per_category` questions per category (seeded pick), ids grouped alphabetically as on jp-stable."""
    rng = random.Random(seed)
    rows = []
    for category in sorted({c for c, *_ in POOL}):
        items = [p for p in POOL if p[0] == category]
        for _, t1, t2, ref in sorted(rng.sample(items, min(per_category, len(items)))):
            row: dict[str, Any] = {
                "question_id": len(rows) + 1,
                "category": category,
                "turns": [t1, t2],
            }
            if ref is not None:
                row["reference"] = list(ref)
            rows.append(row)
    return rows


def write_tiny_questions(path: str | Path, seed: int = 0, per_category: int = 1) -> Path:
    write_jsonl(path, tiny_questions(seed, per_category))
    return Path(path)


def write_tiny_reference_answers(path: str | Path, seed: int = 0, per_category: int = 1) -> Path:
    """The questions' references as a FastChat reference_answer/<judge>.jsonl file."""
    rows = [
        {
            "question_id": q["question_id"],
            "answer_id": f"tiny-ref-{q['question_id']}",
            "model_id": "reference",
            "choices": [{"index": 0, "turns": q["reference"]}],
        }
        for q in tiny_questions(seed, per_category)
        if "reference" in q
    ]
    write_jsonl(path, rows)
    return Path(path)
