"""Tiny JGLUE-format data in the upstream schemas (all eight jp-stable families), and a
learnable synthetic MARC-ja train set in the Alpaca schema.

Synthetic MARC-ja: a review is a few filler words among sentiment words of one polarity; the
label is that polarity. The positive and negative words share no character (a tiny tokenizer
may split them into characters), so a model that learns to find them scores 1.0 and a random one
~0.5. The
train rows render (template alpaca_ja) to exactly the marc_ja-1.1-0.3 prompt + answer.
Vocabulary is small and Japanese, since the tiny tokenizer is trained on these files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from jaflow.evaluate.jglue.data import SOURCE_FILES
from jaflow.io import atomic_path, dumps_jsonl, write_jsonl

FILLER = [
    "この",
    "商品",
    "は",
    "とても",
    "届き",
    "ました",
    "使って",
    "みて",
    "箱",
    "色",
    "サイズ",
    "です",
    "今日",
    "家族",
    "値段",
]
POSITIVE = ["最高", "満足", "便利", "良い"]
NEGATIVE = ["残念", "微妙", "粗悪", "故障"]
MARC_INSTRUCTION = (
    "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
)
PLACES = ["東京", "京都", "大阪", "札幌", "福岡"]
THINGS = ["りんご", "みかん", "ぶどう", "もも", "なし"]


def review(rnd: random.Random, positive: bool) -> str:
    """A few filler words among several words of one polarity (the label). The polarity is in
    most of the review's tokens, so even a tiny model's near-uniform attention carries it to the
    answer: a QLoRA adapter learns the task in the demo's few steps."""
    words = [rnd.choice(POSITIVE if positive else NEGATIVE) for _ in range(rnd.randint(3, 5))]
    for _ in range(rnd.randint(1, 2)):
        words.insert(rnd.randint(0, len(words)), rnd.choice(FILLER))
    return "".join(words) + "。"


def _marc(rnd: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        pos = i % 2 == 0
        rows.append(
            {
                "sentence": review(rnd, pos),
                "label": "positive" if pos else "negative",
                "review_id": f"r{i}",
            }
        )
    rnd.shuffle(rows)
    return rows


def _jsquad(rnd: random.Random, n: int, prefix: str) -> dict:
    data = []
    for i in range(n):
        place, thing = rnd.choice(PLACES), rnd.choice(THINGS)
        ctx = f"{place}では{thing}が有名です。{thing}は甘いです。"
        data.append(
            {
                "title": place,
                "paragraphs": [
                    {
                        "context": f"{place} [SEP] {ctx}",
                        "qas": [
                            {
                                "id": f"{prefix}{i}",
                                "question": f"{place}では何が有名ですか。",
                                "answers": [
                                    {"text": thing, "answer_start": len(place) + 2},
                                    {"text": f"{thing}が", "answer_start": len(place) + 2},
                                ],
                                "is_impossible": False,
                            }
                        ],
                    }
                ],
            }
        )
    return {"version": "v1.1", "data": data}


def _jcqa(rnd: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        choices = rnd.sample(THINGS, 5)
        label = rnd.randrange(5)
        rows.append(
            {
                "q_id": i,
                "question": f"{choices[label]}はどれですか。",
                **{f"choice{k}": c for k, c in enumerate(choices)},
                "label": label,
            }
        )
    return rows


def _jnli(rnd: random.Random, n: int) -> list[dict]:
    labels = ["entailment", "contradiction", "neutral"]
    rows = []
    for i in range(n):
        place, thing = rnd.choice(PLACES), rnd.choice(THINGS)
        label = labels[i % 3]
        hyp = {
            "entailment": f"{place}に{thing}があります。",
            "contradiction": f"{place}に{thing}はありません。",
            "neutral": f"{thing}は甘いです。",
        }[label]
        rows.append(
            {
                "sentence_pair_id": str(i),
                "yjcaptions_id": f"{i}-0-0",
                "sentence1": f"{place}に{thing}があります。",
                "sentence2": hyp,
                "label": label,
            }
        )
    rnd.shuffle(rows)
    return rows


def _jaqket(rnd: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        place, thing = rnd.choice(PLACES), rnd.choice(THINGS)
        ctxs = [
            {
                "id": f"{i}-{k}",
                "title": p,
                "text": f"{p}では{rnd.choice(THINGS)}が有名です。",
                "score": 1.0,
                "has_answer": False,
            }
            for k, p in enumerate(rnd.sample(PLACES, 2))
        ]
        ctxs.insert(
            rnd.randint(0, 2),
            {
                "id": f"{i}-a",
                "title": place,
                "text": f"{place}では{thing}が有名です。",
                "score": 2.0,
                "has_answer": True,
            },
        )
        rows.append(
            {
                "qid": f"q{i}",
                "question": f"{place}で有名なものは何でしょう?",
                "answers": [thing],
                "ctxs": ctxs,
            }
        )
    return rows


def _xlsum(rnd: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        place, thing = rnd.choice(PLACES), rnd.choice(THINGS)
        rows.append(
            {
                "id": str(i),
                "url": "",
                "title": place,
                "summary": f"{place}で{thing}が人気です。",
                "text": f"今日{place}で{thing}が売られました。{thing}はとても人気です。家族も買いました。",
            }
        )
    return rows


def _xwinograd(rnd: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        a, b = rnd.sample(THINGS, 2)
        good, bad = (
            f"{a}は{b}より甘いので{a}を買いました。",
            f"{a}は{b}より甘いので{b}を買いました。",
        )
        answer = rnd.choice([1, 2])
        rows.append(
            {
                "sentence1": good if answer == 1 else bad,
                "sentence2": bad if answer == 1 else good,
                "answer": answer,
            }
        )
    return rows


def _mgsm(rnd: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        x, y = rnd.randint(1, 9), rnd.randint(1, 9)
        thing = rnd.choice(THINGS)
        rows.append(
            {
                "question": f"問題：{thing}が{x}個と{y}個あります。全部で何個ですか?",
                "answer": f"ステップごとの答え：{x}個と{y}個で{x + y}個です。答えは{x + y}です。",
                "answer_number": x + y,
                "equation_solution": f"{x}+{y}={x + y}",
            }
        )
    return rows


def write_tiny_jglue(out_dir: str | Path, n_rows: int, seed: int) -> Path:
    """Small files for all eight families, laid out like `jglue.data_dir` (data.SOURCE_FILES)."""
    rnd = random.Random(seed)
    n_train = max(n_rows, 8)
    content = {
        "jsquad": {"train": _jsquad(rnd, n_train, "t"), "validation": _jsquad(rnd, n_rows, "v")},
        "jcommonsenseqa": {"train": _jcqa(rnd, n_train), "validation": _jcqa(rnd, n_rows)},
        "jnli": {"train": _jnli(rnd, n_train), "validation": _jnli(rnd, n_rows)},
        "marc_ja": {"train": _marc(rnd, n_train), "validation": _marc(rnd, n_rows)},
        "jaqket_v2": {"train": _jaqket(rnd, n_train), "validation": _jaqket(rnd, n_rows)},
        "xlsum_ja": {"train": _xlsum(rnd, n_train), "test": _xlsum(rnd, n_rows)},
        "xwinograd_ja": {"test": _xwinograd(rnd, n_rows)},
        "mgsm": {"train": _mgsm(rnd, 8), "test": _mgsm(rnd, n_rows)},
    }
    with atomic_path(out_dir) as tmp:
        for family, splits in content.items():
            for split, data in splits.items():
                path = tmp / SOURCE_FILES[family][split]
                path.parent.mkdir(parents=True, exist_ok=True)
                text = (
                    json.dumps(data, ensure_ascii=False) + "\n"
                    if isinstance(data, dict)
                    else dumps_jsonl(data)
                )
                path.write_text(text, encoding="utf-8")
    return Path(out_dir)


def write_marc_train(path: str | Path, n_rows: int, seed: int) -> Path:
    """Alpaca-schema rows {instruction, input, output, source} of the synthetic MARC-ja task."""
    rnd = random.Random(seed + 1)  # another stream than the validation reviews
    rows = []
    for i in range(n_rows):
        pos = i % 2 == 0
        rows.append(
            {
                "instruction": MARC_INSTRUCTION,
                "input": review(rnd, pos),
                "output": "ポジティブ" if pos else "ネガティブ",
                "source": "tiny_marc",
            }
        )
    rnd.shuffle(rows)
    write_jsonl(path, rows)
    return Path(path)
