"""The two MT-Bench jobs as the workflow runs them: answer generation, and judging + scores."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaflow.evaluate.mtbench.answer import answer_questions
from jaflow.evaluate.mtbench.data import (
    load_answers,
    load_prompt_set,
    load_questions,
    load_references,
)
from jaflow.evaluate.mtbench.judge import (
    Backend,
    Call,
    JudgeCache,
    OnResult,
    check_failures,
    judgment_rows,
    require_turns,
    run_judgments,
    single_requests,
)
from jaflow.evaluate.mtbench.scores import score_rows, write_scores_csv
from jaflow.io import write_json, write_jsonl

log = logging.getLogger(__name__)


class LazyBackend:
    """Builds the backend on first use, so a fully cached rerun never loads a judge model."""

    name = "lazy"

    def __init__(self, factory: Callable[[], Backend]):
        self.factory = factory
        self.backend: Backend | None = None
        self.sent = 0

    def run(self, calls: Sequence[Call], on_result: OnResult) -> None:
        if self.backend is None:
            self.backend = self.factory()
        self.sent += len(calls)
        self.backend.run(calls, on_result)


def usage_summary(
    rows: Sequence[dict[str, Any]], judge: dict[str, Any], sent: int
) -> dict[str, Any]:
    """Tokens behind these judgments (whenever their calls were sent) and their estimated cost."""
    totals: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
    for r in rows:
        for k, v in (r["usage"] or {}).items():
            totals[k] = totals.get(k, 0) + v
    price = judge["price_per_million_tokens"]
    cost = None
    if price is not None:
        cost = (
            totals["prompt_tokens"] * price["input"] + totals["completion_tokens"] * price["output"]
        ) / 1e6
    return {
        "judge": judge["model"],
        "backend": judge["backend"],
        "judgments": len(rows),
        "calls_sent_this_run": sent,
        **totals,
        "price_per_million_tokens": price,
        "estimated_cost": cost,
    }


def answer_stage(
    *,
    questions: str,
    output: str,
    model_id: str,
    hf_args: dict[str, Any],
    chat_format: str | None,
    mtbench: dict[str, Any],
    seed: int,
) -> None:
    """`mtbench` holds only what changes answers (sampling keys and mtbench.answer)."""
    qs = load_questions(questions)
    records = answer_questions(
        qs,
        hf_args,
        model_id=model_id,
        chat_format=chat_format,
        temperatures=mtbench["temperature"],
        max_new_tokens=mtbench["max_new_tokens"],
        num_choices=mtbench["num_choices"],
        batch_size=mtbench["batch_size"],
        top_p=mtbench["top_p"],
        repetition_penalty=mtbench["repetition_penalty"],
        seed=seed,
        answer=mtbench["answer"],
    )
    write_jsonl(output, records)
    log.info("wrote %d answers to %s", len(records), output)


def _judge(
    mtbench: dict[str, Any], judge_hf: dict[str, Any] | None, backend: Backend | None, state: str
):
    from jaflow.evaluate.mtbench.backends import judge_info, make_backend

    judge = mtbench["judge"]
    prompt_set = load_prompt_set(mtbench["judge_prompts"])
    info = judge_info(judge, judge_hf, prompt_set)
    log.info(
        "judge %s (%s), identity %s, prompt set %s (sha256 %s), settings %s",
        info.name,
        judge["backend"],
        info.sha256[:16],
        prompt_set.name,
        prompt_set.sha256,
        dict(info.settings),
    )
    if backend is None:
        backend = LazyBackend(
            lambda: make_backend(
                judge, judge_hf, batch_size=mtbench["batch_size"], batch_state=state
            )
        )
    else:
        given = backend
        backend = LazyBackend(lambda: given)
    return prompt_set, info, backend


def judge_stage(
    *,
    answers: str,
    questions: str,
    judgments: str,
    scores: str,
    cache: str,
    model_id: str,
    mtbench: dict[str, Any],
    judge_hf: dict[str, Any] | None = None,
    backend: Backend | None = None,
    usage: str | None = None,
) -> list[dict[str, Any]]:
    """Judge one model's answers, write its judgments, scores (and `usage`: tokens, cost);
    returns the score rows.

    Raises JudgeFailed (writing nothing) when more judgments than judge.max_failures stay failed.
    """
    # batch: true keeps the batches this job submitted and has not collected yet here
    prompt_set, info, backend = _judge(
        mtbench, judge_hf, backend, f"{cache}.{model_id}.batches.json"
    )
    qs = load_questions(questions)
    requests = single_requests(
        qs,
        load_answers(answers),
        load_references(mtbench["reference_answers"], qs),
        prompt_set.prompts,
        model=model_id,
        judge=info,
        turns=require_turns(mtbench["turns"]),
        ref_categories=mtbench["ref_categories"],
        prompts_source=prompt_set.source,
        answers_source=answers,
        strip=mtbench["strip_reasoning"],
    )
    log.info("%d judgment(s) for %s by %s", len(requests), model_id, info.name)
    done = run_judgments(requests, backend, JudgeCache(cache))
    spent = getattr(backend.backend, "usage", None)
    if spent:
        log.info("judge usage this run: %s", spent)
    check_failures(done, mtbench["judge"]["max_failures"], cache)
    rows = judgment_rows(done)
    write_jsonl(judgments, rows)
    table = score_rows(rows, model_id, judge=info)
    write_scores_csv(scores, table)
    if usage:
        summary = usage_summary(rows, mtbench["judge"], backend.sent)
        write_json(usage, summary)
        log.info("judge tokens and cost: %s", summary)
    failed = sum(r["status"] == "parse_failed" for r in rows)
    errors = sum(r["status"] == "error" for r in rows)
    log.info(
        "%s: %d judgments, %d parse failure(s), %d error(s) -> %s",
        model_id,
        len(rows),
        failed,
        errors,
        scores,
    )
    if failed or errors:
        log.warning(
            "%s: %d of %d judgments have no rating (%d unparsable, %d errors), allowed by "
            "judge.max_failures; %s marks them (n_failed, n_errors, complete)",
            model_id,
            failed + errors,
            len(rows),
            failed,
            errors,
            Path(scores).name,
        )
    return table


def pairwise_stage(
    *,
    answers: str,
    baseline_answers: str,
    questions: str,
    judgments: str,
    scores: str,
    cache: str,
    model_id: str,
    baseline: str,
    mtbench: dict[str, Any],
    judge_hf: dict[str, Any] | None = None,
    backend: Backend | None = None,
) -> list[dict[str, Any]]:
    """Judge a model against the baseline in both orders; write matches and win rates."""
    import pandas as pd

    from jaflow.evaluate.mtbench.pairwise import (
        PAIR_COLUMNS,
        judge_pairs,
        pair_requests,
        pair_score_rows,
    )
    from jaflow.io import atomic_path

    state = f"{cache}.{model_id}__{baseline}.batches.json"
    prompt_set, info, backend = _judge(mtbench, judge_hf, backend, state)
    qs = load_questions(questions)
    requests = pair_requests(
        qs,
        load_answers(answers),
        load_answers(baseline_answers),
        load_references(mtbench["reference_answers"], qs),
        prompt_set.prompts,
        model=model_id,
        baseline=baseline,
        judge=info,
        turns=require_turns(mtbench["turns"]),
        ref_categories=mtbench["ref_categories"],
        prompts_source=prompt_set.source,
        strip=mtbench["strip_reasoning"],
    )
    rows, done = judge_pairs(
        requests, backend, JudgeCache(cache), model=model_id, baseline=baseline
    )
    check_failures(done, mtbench["judge"]["max_failures"], cache)
    write_jsonl(judgments, rows)
    table = pair_score_rows(rows, model_id, baseline)
    with atomic_path(scores) as tmp:
        pd.DataFrame(table, columns=list(PAIR_COLUMNS)).to_csv(
            tmp, index=False, float_format="%.6g"
        )
    bad = [r for r in rows if r["status"] != "ok"]
    log.info(
        "%s vs %s: %d matches, %d without a verdict -> %s",
        model_id,
        baseline,
        len(rows),
        len(bad),
        scores,
    )
    return table
