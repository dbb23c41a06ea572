"""Training rows for the tiny world's MT-Bench judge.

A randomly initialised tiny model never writes a rating, so every judgment of the demo would be a
parse failure. The demo therefore trains its judge: a tiny model fine-tuned on these rows, each
a judge prompt exactly as the local `hf` judge backend sends it (jaflow's own Japanese judge
prompts, a tiny question, an answer) followed by `評価：[[n]]`.

The rating depends on the answer, by a rule a 4-layer model learns in the demo's steps:

- an answer with mojibake (U+FFFD, the byte-fallback garbage an untrained model writes) or
  control characters gets GARBAGE_RATING;
- any other answer gets its category's rating from RATINGS, an empty one too: a 4-layer judge
  does not learn to see an empty answer in the demo's steps (rows that asked it to only blurred
  the garbage rule), so the rule does not ask it to.

So the demo's radar tells an untrained model (garbage everywhere) from a tuned one (no garbage
on some questions). It judges the answer's form, not its content: a stand-in for a real judge.
"""

from __future__ import annotations

import random
from pathlib import Path

from jaflow.evaluate.mtbench.backends import plain_prompt
from jaflow.evaluate.mtbench.data import load_judge_prompts, load_questions, load_references
from jaflow.evaluate.mtbench.judge import single_requests
from jaflow.io import write_jsonl

# One score per category for clean answers, so the tuned model's polygon has a shape.
RATINGS = {
    "coding": 3,
    "extraction": 5,
    "humanities": 7,
    "math": 4,
    "reasoning": 4,
    "roleplay": 6,
    "stem": 6,
    "writing": 8,
}
GARBAGE_RATING = 2
CLEAN_ANSWERS = [
    "はい、わかりました。",
    "答えは5です。",
    "こんにちは。",
    "春はあたたかいです。",
    "ありがとう。",
    "ポジティブ",
    "ネガティブ",
    "りんご",
    "小さい",
    "7",
    "ごめんなさい。",
    "本",
]
CONTROL = "".join(chr(c) for c in (1, 7, 12, 20, 25, 29))


def rating(answer: str, category: str) -> int:
    """The rule the tiny judge is trained on (see the module docstring)."""
    if "\ufffd" in answer or any(c in CONTROL or (ord(c) < 32 and c not in "\n") for c in answer):
        return GARBAGE_RATING
    return RATINGS.get(category, 5)


def _noise(rng: random.Random, alphabet: str) -> str:
    """Text like an untrained model's answer: corpus characters in random order, with the
    mojibake and control characters its byte-level tokens decode to."""
    chars = [rng.choice(alphabet) for _ in range(rng.randint(2, 30))]
    for _ in range(rng.randint(1, 4)):
        chars.insert(rng.randint(0, len(chars)), rng.choice("\ufffd\ufffd\ufffd" + CONTROL))
    return "".join(chars)


def _clean(rng: random.Random, alphabet: str) -> str:
    """Clean text: one of the instruction data's answers, or corpus characters without garbage
    (so the one cue that tells garbage from clean is the garbage itself)."""
    if rng.random() < 0.5:
        return rng.choice(CLEAN_ANSWERS)
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))


def _answer(rng: random.Random, alphabet: str) -> str:
    r = rng.random()
    if r < 0.45:
        return _noise(rng, alphabet)
    if r < 0.55:
        return ""
    return _clean(rng, alphabet)


def judge_rows(questions_path: str | Path, n_rows: int, seed: int) -> list[dict[str, str]]:
    questions = load_questions(questions_path)
    prompts = load_judge_prompts(None)
    references = load_references(None, questions)
    alphabet = "".join(
        sorted({c for q in questions for t in q.turns for c in t} | set("".join(CLEAN_ANSWERS)))
    )
    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        q = questions[i % len(questions)]
        answer = _answer(rng, alphabet)
        answers = {q.question_id: {"choices": [{"index": 0, "turns": [answer, answer]}]}}
        request = single_requests(
            [q], answers, references, prompts, model="tiny", judge_model="tiny"
        )[0]
        rows.append(
            {
                "judge_prompt": plain_prompt(request.messages),
                "output": f"評価：[[{rating(answer, q.category)}]]",
                "source": q.category,
            }
        )
    return rows


def write_judge_rows(path: str | Path, questions_path: str | Path, n_rows: int, seed: int) -> Path:
    write_jsonl(path, judge_rows(questions_path, n_rows, seed))
    return Path(path)
