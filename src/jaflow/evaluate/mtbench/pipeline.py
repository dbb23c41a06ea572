"""The two MT-Bench jobs as the workflow runs them: answer generation, and judging + scores."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaflow.evaluate.mtbench.answer import answer_questions
from jaflow.evaluate.mtbench.data import (
    load_answers,
    load_judge_prompts,
    load_questions,
    load_references,
)
from jaflow.evaluate.mtbench.judge import (
    Backend,
    Call,
    JudgeCache,
    OnResult,
    judgment_rows,
    require_turns,
    run_judgments,
    single_requests,
)
from jaflow.evaluate.mtbench.scores import score_rows, write_scores_csv
from jaflow.io import write_jsonl

log = logging.getLogger(__name__)


class LazyBackend:
    """Builds the backend on first use, so a fully cached rerun never loads a judge model."""

    name = "lazy"

    def __init__(self, factory: Callable[[], Backend]):
        self.factory = factory
        self.backend: Backend | None = None

    def run(self, calls: Sequence[Call], on_result: OnResult) -> None:
        if self.backend is None:
            self.backend = self.factory()
        self.backend.run(calls, on_result)


def answer_stage(
    *, questions: str, output: str, model_id: str, hf_args: dict[str, Any],
    chat_format: str | None, mtbench: dict[str, Any], seed: int,
) -> None:
    qs = load_questions(questions)
    records = answer_questions(
        qs, hf_args, model_id=model_id, chat_format=chat_format,
        temperatures=mtbench.get("temperature"), max_new_tokens=mtbench.get("max_new_tokens", 512),
        num_choices=mtbench.get("num_choices", 1), batch_size=mtbench.get("batch_size", 8),
        top_p=mtbench.get("top_p", 0.9), repetition_penalty=mtbench.get("repetition_penalty", 1.1),
        seed=seed,
    )
    write_jsonl(output, records)
    log.info("wrote %d answers to %s", len(records), output)


def judge_stage(
    *, answers: str, questions: str, judgments: str, scores: str, cache: str, model_id: str,
    mtbench: dict[str, Any], judge_hf: dict[str, Any] | None = None, backend: Backend | None = None,
) -> list[dict[str, Any]]:
    """Judge one model's answers, write its judgments and scores; returns the score rows."""
    from jaflow.evaluate.mtbench.backends import make_backend

    judge = mtbench["judge"]
    qs = load_questions(questions)
    prompts_source = mtbench.get("judge_prompts") or "jaflow's judge_prompts_ja.jsonl"
    requests = single_requests(
        qs, load_answers(answers), load_references(mtbench.get("reference_answers"), qs),
        load_judge_prompts(mtbench.get("judge_prompts")),
        model=model_id, judge_model=judge["model"], turns=require_turns(mtbench.get("turns", [1])),
        ref_categories=mtbench.get("ref_categories", ["math", "reasoning", "coding"]),
        prompts_source=prompts_source, answers_source=answers,
    )
    log.info("%d judgment(s) for %s by %s (%s)", len(requests), model_id, judge["model"], judge["backend"])
    if backend is None:
        backend = LazyBackend(lambda: make_backend(judge, judge_hf, batch_size=mtbench.get("batch_size", 8)))
    done = run_judgments(requests, backend, JudgeCache(cache))
    rows = judgment_rows(done)
    write_jsonl(judgments, rows)
    table = score_rows(rows, model_id)
    write_scores_csv(scores, table)
    failed = sum(r["status"] == "parse_failed" for r in rows)
    errors = sum(r["status"] == "error" for r in rows)
    log.info("%s: %d judgments, %d parse failure(s), %d error(s) -> %s", model_id, len(rows), failed, errors, scores)
    if failed or errors:
        log.warning("%s: %d of %d judgments have no rating (%d unparsable, %d errors); they are "
                    "counted in n_failed / n_errors of %s", model_id, failed + errors, len(rows),
                    failed, errors, Path(scores).name)
    return table


def pairwise_stage(
    *, answers: str, baseline_answers: str, questions: str, judgments: str, scores: str, cache: str,
    model_id: str, baseline: str, mtbench: dict[str, Any], judge_hf: dict[str, Any] | None = None,
    backend: Backend | None = None,
) -> list[dict[str, Any]]:
    """Judge a model against the baseline in both orders; write matches and win rates."""
    import pandas as pd

    from jaflow.evaluate.mtbench.backends import make_backend
    from jaflow.evaluate.mtbench.pairwise import (
        PAIR_COLUMNS,
        judge_pairs,
        pair_requests,
        pair_score_rows,
    )
    from jaflow.io import atomic_path

    judge = mtbench["judge"]
    qs = load_questions(questions)
    requests = pair_requests(
        qs, load_answers(answers), load_answers(baseline_answers),
        load_references(mtbench.get("reference_answers"), qs),
        load_judge_prompts(mtbench.get("judge_prompts")), model=model_id, baseline=baseline,
        judge_model=judge["model"], turns=require_turns(mtbench.get("turns", [1])),
        ref_categories=mtbench.get("ref_categories", ["math", "reasoning", "coding"]),
        prompts_source=mtbench.get("judge_prompts") or "jaflow's judge_prompts_ja.jsonl",
    )
    if backend is None:
        backend = LazyBackend(lambda: make_backend(judge, judge_hf, batch_size=mtbench.get("batch_size", 8)))
    rows = judge_pairs(requests, backend, JudgeCache(cache), model=model_id, baseline=baseline)
    write_jsonl(judgments, rows)
    table = pair_score_rows(rows, model_id, baseline)
    with atomic_path(scores) as tmp:
        pd.DataFrame(table, columns=list(PAIR_COLUMNS)).to_csv(tmp, index=False, float_format="%.6g")
    bad = [r for r in rows if r["status"] != "ok"]
    log.info("%s vs %s: %d matches, %d without a verdict -> %s", model_id, baseline, len(rows), len(bad), scores)
    return table
