"""Optional pairwise mode: a model against a baseline, each question judged in both orders.

As FastChat's `play_a_match_pair`: the verdicts of the two orders must agree for a win or a
loss; when they disagree the match is a tie (the control for position bias). A verdict that
cannot be parsed is retried once, then the match is counted as failed, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jaflow.errors import DataError
from jaflow.evaluate.mtbench.categories import NEED_REF_CATEGORIES, table_order
from jaflow.evaluate.mtbench.data import JudgePrompt, Question, text_hash
from jaflow.evaluate.mtbench.judge import (
    Backend,
    JudgeCache,
    JudgeInfo,
    JudgeRequest,
    Judgment,
    _messages,
    check_prompts,
    prompt_name,
    run_judgments,
    strip_reasoning,
)

PAIR_COLUMNS = (
    "model",
    "baseline",
    "category",
    "turn",
    "win",
    "loss",
    "tie",
    "n_failed",
    "n_errors",
    "win_rate",
    "win_rate_adjusted",
)


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or 'tie' ([[C]]) as FastChat reads a pairwise judgment, else None."""
    for token, verdict in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if token in text:
            return verdict
    return None


def pair_requests(
    questions: Sequence[Question],
    answers: Mapping[int, dict[str, Any]],
    baseline_answers: Mapping[int, dict[str, Any]],
    references: Mapping[int, Sequence[str]],
    prompts: Mapping[str, JudgePrompt],
    *,
    model: str,
    baseline: str,
    judge: JudgeInfo,
    turns: Sequence[int] = (1,),
    ref_categories: Sequence[str] = NEED_REF_CATEGORIES,
    prompts_source: str = "judge prompts",
    strip: bool = True,
) -> list[JudgeRequest]:
    """Two requests per (question, turn): order 0 shows the model as A, order 1 as B."""
    clean = strip_reasoning if strip else (lambda t: t)
    needed = {
        prompt_name(q.category, t, ref_categories, "pairwise") for q in questions for t in turns
    }
    check_prompts(prompts, needed, prompts_source, turns)
    requests = []
    for q in questions:
        for name, source in ((model, answers), (baseline, baseline_answers)):
            if q.question_id not in source:
                raise DataError(f"pairwise: {name} has no answer to question {q.question_id}")
        mine = [clean(t) for t in answers[q.question_id]["choices"][0]["turns"]]
        base = [clean(t) for t in baseline_answers[q.question_id]["choices"][0]["turns"]]
        ref = references.get(q.question_id)
        if q.category in ref_categories and ref is None:
            raise DataError(f"question {q.question_id} ({q.category}) needs a reference answer")
        for turn in turns:
            if turn > len(q.turns):
                continue
            prompt = prompts[prompt_name(q.category, turn, ref_categories, "pairwise")]
            for order, (a, b) in enumerate(((mine, base), (base, mine))):
                if turn == 1:
                    kwargs = dict(question=q.turns[0], answer_a=a[0], answer_b=b[0])
                else:
                    kwargs = dict(
                        question_1=q.turns[0],
                        question_2=q.turns[1],
                        answer_a_1=a[0],
                        answer_a_2=a[1],
                        answer_b_1=b[0],
                        answer_b_2=b[1],
                    )
                if ref is not None and q.category in ref_categories:
                    kwargs.update({f"ref_answer_{i + 1}": r for i, r in enumerate(ref)})
                user = prompt.prompt_template.format(**kwargs)
                requests.append(
                    JudgeRequest(
                        question_id=q.question_id,
                        category=q.category,
                        model=f"{model}__{baseline}",
                        choice=order,
                        turn=turn,
                        prompt=prompt,
                        messages=_messages(prompt, user),
                        answer_hash=text_hash(a[:turn], b[:turn]),
                        judge=judge,
                        answer=mine[turn - 1],
                    ).with_key()
                )
    return requests


def judge_pairs(
    requests: Sequence[JudgeRequest],
    backend: Backend,
    cache: JudgeCache,
    *,
    model: str,
    baseline: str,
) -> tuple[list[dict[str, Any]], list[Judgment]]:
    """FastChat's pairwise rows (g1: model as A, g2: model as B) with the combined `winner`,
    and the judgments they come from."""
    done = run_judgments(requests, backend, cache, parse=parse_verdict)
    by_match: dict[tuple[int, int], dict[int, Any]] = {}
    for j in done:
        by_match.setdefault((j.request.question_id, j.request.turn), {})[j.request.choice] = j
    rows = []
    for (qid, turn), pair in sorted(by_match.items()):
        g1, g2 = pair[0], pair[1]
        w1 = {"A": model, "B": baseline, "tie": "tie"}.get(g1.score) if g1.score else None
        w2 = {"A": baseline, "B": model, "tie": "tie"}.get(g2.score) if g2.score else None
        if g1.status == "error" or g2.status == "error":
            winner, status = "error", "error"
        elif w1 is None or w2 is None:
            winner, status = "failed", "parse_failed"
        else:
            winner, status = (w1 if w1 == w2 else "tie"), "ok"  # disagreement between orders: a tie
        rows.append(
            {
                "question_id": qid,
                "category": g1.request.category,
                "turn": turn,
                "model_1": model,
                "model_2": baseline,
                "g1_winner": w1 or g1.status,
                "g2_winner": w2 or g2.status,
                "winner": winner,
                "status": status,
                "judge": [g1.request.judge_model, g1.request.prompt.name],
                "g1_user_prompt": g1.request.user_prompt,
                "g1_judgment": g1.outputs[0] if g1.outputs else "",
                "g2_user_prompt": g2.request.user_prompt,
                "g2_judgment": g2.outputs[0] if g2.outputs else "",
                "g1_raw": g1.outputs,
                "g2_raw": g2.outputs,
                "error": g1.error or g2.error,
                "judge_sha256": g1.request.judge.sha256,
                "prompt_set": dict(g1.request.judge.prompt_set),
            }
        )
    return rows, done


def pair_score_rows(
    rows: Iterable[Mapping[str, Any]], model: str, baseline: str
) -> list[dict[str, Any]]:
    """Win/loss/tie per (category, turn) and over all categories (category `all`)."""
    rows = list(rows)
    out = []
    for turn in sorted({r["turn"] for r in rows}):
        in_turn = [r for r in rows if r["turn"] == turn]
        for category in [*table_order(r["category"] for r in in_turn), "all"]:
            sel = [r for r in in_turn if category == "all" or r["category"] == category]
            win = sum(r["winner"] == model for r in sel)
            loss = sum(r["winner"] == baseline for r in sel)
            tie = sum(r["winner"] == "tie" for r in sel)
            n = win + loss + tie
            out.append(
                dict(
                    model=model,
                    baseline=baseline,
                    category=category,
                    turn=turn,
                    win=win,
                    loss=loss,
                    tie=tie,
                    n_failed=sum(r["status"] == "parse_failed" for r in sel),
                    n_errors=sum(r["status"] == "error" for r in sel),
                    win_rate=win / n if n else math.nan,
                    win_rate_adjusted=(win + 0.5 * tie) / n if n else math.nan,
                )
            )
    return out
