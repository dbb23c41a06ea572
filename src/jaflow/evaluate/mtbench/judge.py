"""LLM-as-a-judge for MT-Bench: single-answer grading, resumable at zero repeated spend.

Every call the judge answers is appended (and fsync'd) to a cache keyed by its content as soon
as it returns, so a killed run that is rerun only sends what is missing. A rating that cannot be
parsed is asked for once more (a follow-up turn showing the judge its own text); if it still
cannot be parsed, the judgment is kept with score -1 and its raw text, and counted; a run whose failures
(errors or unparsable ratings) exceed `judge.max_failures` fails (`check_failures`).

Cache keys cover the judge's identity (an hf judge's weight checksums; an API judge's model and
endpoint), the prompt set's sha256, the judge settings that shape the request, and the full
messages: never the judge's name, so a retrained judge or an edited prompt misses the cache.
"""

from __future__ import annotations

import ast
import dataclasses
import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jaflow.errors import ConfigError, DataError, JaflowError
from jaflow.evaluate.mtbench.categories import NEED_REF_CATEGORIES
from jaflow.evaluate.mtbench.data import JudgePrompt, Question, text_hash

log = logging.getLogger(__name__)

# FastChat common.py: [[x]] first, then [x]; the first match wins.
ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")

FOLLOW_UP = {
    "[[評価]]": '評価の数値だけを、必ず次の形式で書いてください："評価：[[5]]"',
    "[[rating]]": 'Give only your rating, strictly in this format: "Rating: [[5]]".',
    "[[A]]": '判定だけを、必ず次の形式で書いてください："[[A]]"、"[[B]]" または "[[C]]"',
}

Messages = tuple[Mapping[str, str], ...]


def parse_rating(text: str) -> float | None:
    """The rating in a judge's text as FastChat reads it, or None (FastChat's -1)."""
    match = ONE_SCORE.search(text) or ONE_SCORE_BACKUP.search(text)
    if not match:
        return None
    try:
        return float(ast.literal_eval(match.group(1)))
    except (ValueError, SyntaxError):
        return None


# Reasoning text a thinking model writes before its answer. A chat template may open the block
# itself, so a lone closing tag also ends reasoning; an unclosed block (cut off) is all reasoning.
THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)


def strip_reasoning(text: str) -> str:
    """The answer without `<think>…</think>` reasoning (what the judge is shown). An answer
    without reasoning tags is returned byte for byte (FastChat's judge messages stay identical)."""
    if "<think>" not in text and "</think>" not in text:
        return text
    if "</think>" in text and "<think>" not in text.split("</think>", 1)[0]:
        text = text.split("</think>", 1)[1]
    return THINK_BLOCK.sub("", text).strip()


def _is_japanese(ch: str) -> bool:
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF
        or 0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xFF66 <= o <= 0xFF9F
        or o in (0x3005, 0x3006)
    )


def japanese_ratio(text: str) -> float | None:
    """Share of the letters in `text` that are kana or kanji (None: no letters). An answer in
    the wrong language shows as a low ratio beside its score."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    return sum(map(_is_japanese, letters)) / len(letters)


@dataclass(frozen=True)
class JudgeInfo:
    """Who judges: the name (output folders, rows) and what identifies it (cache keys, rows)."""

    name: str
    identity: Mapping[str, Any]  # backend, model content identity or API model + endpoint
    settings: Mapping[str, Any]  # request settings that change the output
    prompt_set: Mapping[str, str]  # {name, sha256}

    @property
    def sha256(self) -> str:
        return text_hash(dict(self.identity), dict(self.settings), dict(self.prompt_set))

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "identity": dict(self.identity),
            "settings": dict(self.settings),
            "prompt_set": dict(self.prompt_set),
        }


def unidentified_judge(name: str | None) -> JudgeInfo:
    """A judge known by name only: for building prompts (e.g. the tiny judge's lessons)."""
    if not name:
        raise ValueError("single_requests needs judge= (a JudgeInfo) or judge_model=")
    return JudgeInfo(name=name, identity={"unidentified": name}, settings={}, prompt_set={})


class JudgeFailed(JaflowError):
    """Judgments still failed after retries, more than judge.max_failures allows."""


@dataclass(frozen=True)
class JudgeRequest:
    """One judgment to obtain: a model's answer (one choice) to one turn of one question."""

    question_id: int
    category: str
    model: str
    choice: int
    turn: int
    prompt: JudgePrompt
    messages: Messages
    answer_hash: str
    judge: JudgeInfo
    key: str = field(default="")
    answer: str = field(default="", compare=False)  # the judged turn's answer, as the judge saw it

    @property
    def judge_model(self) -> str:
        return self.judge.name

    def with_key(self) -> JudgeRequest:
        key = text_hash(
            self.judge.sha256,
            self.answer_hash,
            self.question_id,
            self.turn,
            self.prompt.name,
            self.prompt.fingerprint(),
            list(self.messages),
        )
        return dataclasses.replace(self, key=key)

    @property
    def user_prompt(self) -> str:
        return self.messages[-1]["content"]


@dataclass(frozen=True)
class Call:
    """One chat completion: attempt 0 is the judge prompt, attempt 1 the follow-up."""

    request: JudgeRequest
    attempt: int
    messages: Messages

    @property
    def key(self) -> str:
        return text_hash(self.request.key, self.attempt, list(self.messages))


def _messages(prompt: JudgePrompt, user: str) -> Messages:
    system = ({"role": "system", "content": prompt.system_prompt},) if prompt.system_prompt else ()
    return (*system, {"role": "user", "content": user})


def prompt_name(
    category: str, turn: int, ref_categories: Sequence[str], kind: str = "single"
) -> str:
    """FastChat's choice: single-v1 / single-math-v1, plus -multi-turn for turn 2."""
    base = {"single": ("single-v1", "single-math-v1"), "pairwise": ("pair-v2", "pair-math-v1")}[
        kind
    ]
    name = base[1] if category in ref_categories else base[0]
    return name + ("-multi-turn" if turn == 2 else "")


def check_prompts(
    prompts: Mapping[str, JudgePrompt], needed: Iterable[str], source: str, turns: Sequence[int]
) -> None:
    for name in sorted(set(needed)):
        if name not in prompts:
            hint = (
                " (or judge turn 1 only: mtbench.turns: [1])" if name.endswith("multi-turn") else ""
            )
            raise DataError(
                f"{source}: no judge prompt named '{name}'; it has {sorted(prompts)}. "
                f"Add it to the file{hint}"
            )


def single_requests(
    questions: Sequence[Question],
    answers: Mapping[int, dict[str, Any]],
    references: Mapping[int, Sequence[str]],
    prompts: Mapping[str, JudgePrompt],
    *,
    model: str,
    judge: JudgeInfo | None = None,
    judge_model: str | None = None,
    turns: Sequence[int] = (1,),
    ref_categories: Sequence[str] = NEED_REF_CATEGORIES,
    prompts_source: str = "judge prompts",
    answers_source: str = "answers",
    strip: bool = True,
) -> list[JudgeRequest]:
    """Every (question, choice, turn) judgment for one model's answers.

    `judge_model` (a bare name) only serves callers that build prompts, never a cache.
    """
    judge = judge or unidentified_judge(judge_model)
    requests = []
    needed = {
        prompt_name(q.category, t, ref_categories)
        for q in questions
        for t in turns
        if t <= len(q.turns)
    }
    check_prompts(prompts, needed, prompts_source, turns)
    for q in questions:
        if q.question_id not in answers:
            raise DataError(f"{answers_source}: no answer to question {q.question_id}")
        needs_ref = q.category in ref_categories
        ref = references.get(q.question_id)
        if needs_ref and ref is None:
            raise DataError(
                f"question {q.question_id} ({q.category}) needs a reference answer: set "
                "mtbench.reference_answers or remove the category from mtbench.ref_categories"
            )
        for choice in answers[q.question_id]["choices"]:
            ans = [strip_reasoning(t) for t in choice["turns"]] if strip else list(choice["turns"])
            for turn in turns:
                if turn > len(q.turns):
                    continue
                if turn > len(ans):
                    raise DataError(
                        f"{answers_source}: question {q.question_id} choice {choice['index']} has "
                        f"{len(ans)} turn(s), turn {turn} cannot be judged"
                    )
                prompt = prompts[prompt_name(q.category, turn, ref_categories)]
                kwargs: dict[str, str] = {}
                if turn == 1:
                    kwargs.update(question=q.turns[0], answer=ans[0])
                else:
                    kwargs.update(
                        question_1=q.turns[0],
                        question_2=q.turns[1],
                        answer_1=ans[0],
                        answer_2=ans[1],
                    )
                if needs_ref:
                    kwargs.update({f"ref_answer_{i + 1}": r for i, r in enumerate(ref)})
                try:
                    user = prompt.prompt_template.format(**kwargs)
                except (KeyError, IndexError) as e:
                    raise DataError(
                        f"{prompts_source}: prompt '{prompt.name}' uses {e}, which turn {turn} does not provide"
                    ) from None
                requests.append(
                    JudgeRequest(
                        question_id=q.question_id,
                        category=q.category,
                        model=model,
                        choice=int(choice.get("index", 0)),
                        turn=turn,
                        prompt=prompt,
                        messages=_messages(prompt, user),
                        answer_hash=text_hash(ans[:turn]),
                        judge=judge,
                        answer=ans[turn - 1],
                    ).with_key()
                )
    return requests


# -- the cache ---------------------------------------------------------------------------


class JudgeCache:
    """Append-only JSON lines of judge outputs, keyed by call; safe for several processes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.outputs: dict[str, str] = {}
        self.usage: dict[str, dict[str, int]] = {}  # tokens a call cost, where the backend said
        self.reload()

    def reload(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                try:
                    row = json.loads(line)
                    self.outputs[row["key"]] = row["output"]
                    if row.get("usage"):
                        self.usage[row["key"]] = row["usage"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    # a line cut short by a kill: that call is simply asked again
                    log.warning("%s:%d: unreadable cache line skipped", self.path, lineno)

    def get(self, call: Call) -> str | None:
        return self.outputs.get(call.key)

    def put(self, call: Call, output: str, usage: Mapping[str, int] | None = None) -> None:
        r = call.request
        row = {
            "key": call.key,
            "request": r.key,
            "question_id": r.question_id,
            "model": r.model,
            "choice": r.choice,
            "turn": r.turn,
            "judge": [r.judge_model, r.prompt.name],
            "judge_sha256": r.judge.sha256,
            "attempt": call.attempt,
            "output": output,
            "usage": dict(usage) if usage else None,
        }
        data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock, open(self.path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                if f.tell() > 0:
                    with open(self.path, "rb") as g:
                        g.seek(-1, os.SEEK_END)
                        if g.read(1) != b"\n":
                            data = b"\n" + data  # finish a line a killed writer left open
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
            self.outputs[call.key] = output
            if usage:
                self.usage[call.key] = dict(usage)


# -- backends ----------------------------------------------------------------------------

# (call, output, error); a backend may pass `events` (retries, malformed replies) by keyword
OnResult = Callable[..., None]


class Backend(Protocol):
    name: str

    def run(self, calls: Sequence[Call], on_result: OnResult) -> None:
        """Send `calls`; report each as soon as it returns (output, or error after retries)."""


# -- running -----------------------------------------------------------------------------


@dataclass
class Judgment:
    request: JudgeRequest
    outputs: list[str] = field(default_factory=list)
    score: float | None = None
    error: str | None = None
    events: list[str] = field(default_factory=list)  # transport: retries, malformed replies
    usage: dict[str, int] = field(default_factory=dict)  # tokens of its calls (when reported)
    ja_ratio: float | None = None  # Japanese share of the judged answer's letters

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "ok" if self.score is not None else "parse_failed"

    def record(self) -> dict[str, Any]:
        """FastChat's model_judgment row (score -1 when there is none) plus jaflow's fields."""
        r = self.request
        return {
            "question_id": r.question_id,
            "model": r.model,
            "judge": [r.judge_model, r.prompt.name],
            "user_prompt": r.user_prompt,
            "judgment": self.outputs[0] if self.outputs else "",
            "score": self.score if self.score is not None else -1,
            "turn": r.turn,
            "choice": r.choice,
            "category": r.category,
            "status": self.status,
            "raw": self.outputs,
            "error": self.error,
            "transport": self.events,
            "usage": self.usage,
            "ja_ratio": self.ja_ratio,
            "judge_sha256": r.judge.sha256,
            "prompt_set": dict(r.judge.prompt_set),
            "judge_settings": dict(r.judge.settings),
        }


def follow_up(call: Call, output: str) -> Call:
    fmt = call.request.prompt.output_format
    text = FOLLOW_UP.get(fmt, FOLLOW_UP["[[rating]]"])
    messages = (
        *call.messages,
        {"role": "assistant", "content": output},
        {"role": "user", "content": text},
    )
    return Call(call.request, 1, messages)


def run_judgments(
    requests: Sequence[JudgeRequest],
    backend: Backend,
    cache: JudgeCache,
    parse: Callable[[str], Any] = parse_rating,
) -> list[Judgment]:
    """Judge every request, sending only calls the cache has not seen (each call once)."""
    judgments = [Judgment(r) for r in requests]
    calls = [(j, Call(j.request, 0, j.request.messages)) for j in judgments]
    errors: dict[str, str | None] = {}
    history: dict[str, list[str]] = {}
    sent = {"n": 0}
    lock = threading.Lock()

    def on_result(
        call: Call,
        output: str | None,
        error: str | None,
        events: Sequence[str] = (),
        usage: Mapping[str, int] | None = None,
    ) -> None:
        if output is not None:
            cache.put(call, output, usage)
        with lock:
            errors[call.key] = error
            history.setdefault(call.request.key, []).extend(events)
            sent["n"] += 1

    for attempt in (0, 1):
        todo = list({c.key: c for _, c in calls if cache.get(c) is None}.values())
        log.info("attempt %d: %d call(s), %d to send", attempt, len(calls), len(todo))
        if todo:
            backend.run(todo, on_result)
        retry = []
        for j, c in calls:
            output = cache.get(c)
            if output is None:
                j.error = errors.get(c.key) or "no output"
                continue
            j.outputs.append(output)
            for k, v in (cache.usage.get(c.key) or {}).items():
                j.usage[k] = j.usage.get(k, 0) + v
            j.score = parse(output)
            if j.score is None and attempt == 0:
                retry.append((j, follow_up(c, output)))
        calls = retry
    for j in judgments:
        j.events = history.get(j.request.key, [])
        j.ja_ratio = japanese_ratio(j.request.answer)
    done = judgments
    n_failed = sum(j.status == "parse_failed" for j in done)
    n_errors = sum(j.status == "error" for j in done)
    log.info(
        "%d judgment(s): %d parse failure(s), %d error(s); %d call(s) sent",
        len(done),
        n_failed,
        n_errors,
        sent["n"],
    )
    return done


def check_failures(
    judgments: Sequence[Judgment], max_failures: int, cache: str | os.PathLike
) -> None:
    """Fail when more judgments than `max_failures` have no rating (errors or unparsable)."""
    bad = [j for j in judgments if j.status != "ok"]
    if len(bad) <= max_failures:
        return
    n_err = sum(j.status == "error" for j in bad)
    first = "; ".join(
        f"q{j.request.question_id} turn {j.request.turn}: "
        + (j.error or f"no rating in {(j.outputs[-1] if j.outputs else '')[:80]!r}")
        for j in bad[:3]
    )
    raise JudgeFailed(
        f"mtbench.judge.max_failures: {len(bad)} of {len(judgments)} judgments failed after "
        f"retries ({n_err} error(s), {len(bad) - n_err} unparsable), {max_failures} allowed. "
        f"First: {first}. Every success is cached in {cache}: rerun to send only the missing "
        "calls (unparsable ratings are final; raise judge.max_failures to accept them)"
    )


def judgment_rows(judgments: Iterable[Judgment]) -> list[dict[str, Any]]:
    rows = [j.record() for j in judgments]
    return sorted(rows, key=lambda r: (r["question_id"], r["choice"], r["turn"]))


def require_turns(turns: Sequence[int]) -> list[int]:
    bad = [t for t in turns if t not in (1, 2)]
    if bad or not turns:
        raise ConfigError(f"mtbench.turns: {list(turns)} must be a non-empty subset of [1, 2]")
    return sorted(set(turns))
