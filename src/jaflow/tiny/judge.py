"""Training rows for the tiny world's MT-Bench judge.

A randomly initialised tiny model never writes a rating, so every judgment of the demo would be a
parse failure. The demo therefore trains its judge: a tiny model fine-tuned on these rows, each
a judge prompt exactly as the local `hf` judge backend sends it (jaflow's own Japanese judge
prompts, a tiny question, an answer) followed by `評価：[[n]]`. The rating it learns is a fixed
score per category, not a judgment of quality: it exists so that parsing, per-category scores,
tables and the radar chart run on real output of a real judge model. (With the demo's 80 steps a
4-layer judge learns the format and the most common rating, not the per-category ones.)
"""

from __future__ import annotations

import random
from pathlib import Path

from jaflow.evaluate.mtbench.backends import plain_prompt
from jaflow.evaluate.mtbench.data import load_judge_prompts, load_questions, load_references
from jaflow.evaluate.mtbench.judge import single_requests
from jaflow.io import write_jsonl

# One score per category, so the demo's radar chart has a shape.
RATINGS = {"coding": 3, "extraction": 5, "humanities": 7, "math": 2, "reasoning": 4,
           "roleplay": 6, "stem": 6, "writing": 8}
CLEAN_ANSWERS = ["はい、わかりました。", "答えは5です。", "こんにちは。", "春はあたたかいです。", "ありがとう。"]


def _noise(rng: random.Random, alphabet: str) -> str:
    """Text like an untrained model's answer: characters of the corpus in random order."""
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 40)))


def judge_rows(questions_path: str | Path, n_rows: int, seed: int) -> list[dict[str, str]]:
    questions = load_questions(questions_path)
    prompts = load_judge_prompts(None)
    references = load_references(None, questions)
    alphabet = "".join(sorted({c for q in questions for t in q.turns for c in t}))
    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        q = questions[i % len(questions)]
        answer = rng.choice(CLEAN_ANSWERS) if rng.random() < 0.3 else _noise(rng, alphabet)
        answers = {q.question_id: {"choices": [{"index": 0, "turns": [answer, answer]}]}}
        request = single_requests([q], answers, references, prompts, model="tiny", judge_model="tiny")[0]
        rows.append({"judge_prompt": plain_prompt(request.messages),
                     "output": f"評価：[[{RATINGS.get(q.category, 5)}]]", "source": q.category})
    return rows


def write_judge_rows(path: str | Path, questions_path: str | Path, n_rows: int, seed: int) -> Path:
    write_jsonl(path, judge_rows(questions_path, n_rows, seed))
    return Path(path)
