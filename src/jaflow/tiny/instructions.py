"""Alpaca-style instruction rows for the tiny world, with a `source` column.

Small and Japanese, with what the sampling rules need to be exercised: several sources of
different sizes, short rows (for `min_chars`), exact duplicates (for `dedup`), and an input
field on some rows.
"""

from __future__ import annotations

import random
from pathlib import Path

from jaflow.io import write_jsonl

ANTONYMS = [
    ("大きい", "小さい"),
    ("高い", "低い"),
    ("明るい", "暗い"),
    ("新しい", "古い"),
    ("長い", "短い"),
    ("暑い", "寒い"),
    ("強い", "弱い"),
    ("早い", "遅い"),
]
THINGS = ["りんご", "みかん", "本", "ペン", "ねこ", "いぬ", "花", "時計"]
PEOPLE = ["太郎", "花子", "次郎", "さくら"]
GREETINGS = [
    ("挨拶して。", "こんにちは。"),
    ("お礼を言って。", "ありがとう。"),
    ("謝って。", "ごめんなさい。"),
]


def _math(rng: random.Random) -> dict:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    return {
        "instruction": "次の足し算の答えを数字で書いてください。",
        "input": f"{a}+{b}",
        "output": str(a + b),
    }


def _antonym(rng: random.Random) -> dict:
    word, opposite = rng.choice(ANTONYMS)
    if rng.random() < 0.5:
        word, opposite = opposite, word
    return {
        "instruction": "次の言葉の反対の意味の言葉を答えてください。",
        "input": word,
        "output": opposite,
    }


def _qa(rng: random.Random) -> dict:
    person, thing, n = rng.choice(PEOPLE), rng.choice(THINGS), rng.randint(1, 5)
    return {
        "instruction": f"{person}は何を持っていますか？",
        "input": f"{person}は{thing}を{n}つ持っています。",
        "output": thing,
    }


def _greeting(rng: random.Random) -> dict:
    instruction, output = rng.choice(GREETINGS)
    return {"instruction": instruction, "input": "", "output": output}


MAKERS = {"math": _math, "antonym": _antonym, "qa": _qa, "greeting": _greeting}
SHARES = {"math": 0.4, "antonym": 0.25, "qa": 0.25, "greeting": 0.1}


def make_instructions(n_rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for source, share in SHARES.items():
        for _ in range(max(2, round(n_rows * share))):
            rows.append(dict(MAKERS[source](rng), source=source))
    rows += [dict(r) for r in rows[:3]]  # exact duplicates, for the dedup rule
    rng.shuffle(rows)
    return rows


def write_instructions(path: str | Path, n_rows: int, seed: int) -> Path:
    write_jsonl(path, make_instructions(n_rows, seed))
    return Path(path)
