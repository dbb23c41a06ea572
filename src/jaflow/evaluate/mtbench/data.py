"""MT-Bench files in FastChat's layouts: questions, reference answers, judge prompts, answers.

- question.jsonl: `{"question_id": int, "category": str, "turns": [str, str]}` (an optional
  `reference: [str, ...]` is read as upstream English MT-Bench has it).
- reference_answer/<judge>.jsonl and model_answer/<model>.jsonl:
  `{"question_id", "answer_id", "model_id", "choices": [{"index", "turns": [...]}], ...}`.
- judge prompts: `{"name", "type", "system_prompt", "prompt_template", "output_format", ...}`,
  loaded as a `PromptSet` that carries its name and the sha256 of the file's bytes.
Each loader takes a local path or an http(s) URL; bad rows raise DataError naming file and line.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import parse_jsonl

# jaflow's own prompts, for the offline demo: not jp-stable's (ratings are not comparable).
DEMO_JUDGE_PROMPTS = "judge_prompts_jaflow_demo.jsonl"
DEMO_PROMPT_SET = "jaflow-demo-ja"
# jp-stable's Japanese judge prompts (Stability-AI/FastChat, branch jp-stable, commit e37eb28),
# what the card configs use; the file holds single-v1 and single-math-v1 only (turn 1).
JP_STABLE_JUDGE_PROMPTS = {
    "name": "jp-stable-judge_ja_prompts",
    "source": "https://raw.githubusercontent.com/Stability-AI/FastChat/"
    "e37eb28ee490480f6f4989274ed47c55f7dfce82/fastchat/llm_judge/data/judge_ja_prompts.jsonl",
    "sha256": "a3ef723f4e282ced514c8919773549675f0c0f87a61e5a5f46c320b048803b40",
}


@dataclass(frozen=True)
class Question:
    question_id: int
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] | None = None


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    type: str
    system_prompt: str
    prompt_template: str
    output_format: str
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def fingerprint(self) -> str:
        text = json.dumps([self.name, self.system_prompt, self.prompt_template], ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_bytes(source: str | Path) -> bytes:
    source = str(source)
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=60) as r:  # noqa: S310 - user-configured URL
            return r.read()
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{source}: file not found") from None


def _read_text(source: str | Path) -> str:
    return _read_bytes(source).decode("utf-8")


def read_jsonl_source(source: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line of a local file or URL."""
    return list(parse_jsonl(_read_text(source).splitlines(), str(source)))


def _require(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise DataError(f"{where}: missing field '{key}'")
    if not isinstance(obj[key], kind):
        raise DataError(f"{where}: field '{key}' has the wrong type ({type(obj[key]).__name__})")
    return obj[key]


def _str_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise DataError(f"{where}: field '{key}' must be a non-empty list of strings")
    return tuple(value)


def load_questions(source: str | Path) -> list[Question]:
    questions: list[Question] = []
    seen: set[int] = set()
    for lineno, obj in read_jsonl_source(source):
        where = f"{source}:{lineno}"
        qid = _require(obj, "question_id", (int, str), where)
        try:
            qid = int(qid)  # FastChat's load_questions casts too (old files used strings)
        except ValueError:
            raise DataError(f"{where}: question_id '{qid}' is not an integer") from None
        if qid in seen:
            raise DataError(f"{where}: question_id {qid} appears twice")
        seen.add(qid)
        category = _require(obj, "category", str, where)
        turns = _str_list(obj.get("turns"), "turns", where)
        ref = obj.get("reference")
        reference = _str_list(ref, "reference", where) if ref is not None else None
        questions.append(Question(qid, category, turns, reference))
    if not questions:
        raise DataError(f"{source}: no questions")
    return questions


def load_answers(source: str | Path) -> dict[int, dict[str, Any]]:
    """question_id -> answer record (model answers or reference answers)."""
    answers: dict[int, dict[str, Any]] = {}
    for lineno, obj in read_jsonl_source(source):
        where = f"{source}:{lineno}"
        qid = int(_require(obj, "question_id", (int, str), where))
        choices = _require(obj, "choices", list, where)
        if not choices:
            raise DataError(f"{where}: field 'choices' is empty")
        for i, choice in enumerate(choices):
            if not isinstance(choice, dict):
                raise DataError(f"{where}: choices[{i}] is not an object")
            _str_list(choice.get("turns"), f"choices[{i}].turns", where)
        answers[qid] = obj
    return answers


def load_references(
    source: str | Path | None, questions: list[Question]
) -> dict[int, tuple[str, ...]]:
    """Reference answers: the file's first choice, else a question's own `reference` field."""
    refs = {q.question_id: q.reference for q in questions if q.reference is not None}
    if source:
        for qid, rec in load_answers(source).items():
            refs[qid] = tuple(rec["choices"][0]["turns"])
    return refs


@dataclass(frozen=True)
class PromptSet:
    """Judge prompts by name, with what identifies them: a name and the file's sha256."""

    name: str
    sha256: str
    source: str
    prompts: dict[str, JudgePrompt]

    @property
    def identity(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}


def _parse_prompts(text: str, source: str) -> dict[str, JudgePrompt]:
    prompts: dict[str, JudgePrompt] = {}
    for lineno, obj in parse_jsonl(text.splitlines(), source):
        where = f"{source}:{lineno}"
        name = _require(obj, "name", str, where)
        kind = _require(obj, "type", str, where)
        if kind not in ("single", "pairwise"):
            raise DataError(f"{where}: type '{kind}' is not 'single' or 'pairwise'")
        known = {"name", "type", "system_prompt", "prompt_template", "output_format"}
        prompts[name] = JudgePrompt(
            name=name,
            type=kind,
            system_prompt=_require(obj, "system_prompt", str, where),
            prompt_template=_require(obj, "prompt_template", str, where),
            output_format=_require(obj, "output_format", str, where),
            extra={k: v for k, v in obj.items() if k not in known},
        )
    return prompts


def prompt_source(spec: str | dict[str, Any] | None) -> str:
    """Where `mtbench.judge_prompts` points (a path, a URL, or jaflow's demo file)."""
    if spec is None:
        return str(resources.files("jaflow.evaluate.mtbench") / DEMO_JUDGE_PROMPTS)
    return str(spec["source"] if isinstance(spec, dict) else spec)


def load_prompt_set(spec: str | Path | dict[str, Any] | None) -> PromptSet:
    """`mtbench.judge_prompts`: null (jaflow's demo prompts), a path or URL, or
    {name, source, sha256} (the file must have that sha256, e.g. jp-stable's at a commit)."""
    source = prompt_source(spec if not isinstance(spec, Path) else str(spec))
    data = _read_bytes(source)
    sha = hashlib.sha256(data).hexdigest()
    if spec is None:
        name = DEMO_PROMPT_SET
    elif isinstance(spec, dict):
        name = spec["name"]
        if spec["sha256"] is not None and spec["sha256"].lower() != sha:
            raise DataError(
                f"mtbench.judge_prompts.sha256: {source} has sha256 {sha}, the config pins "
                f"{spec['sha256']} (a different file: check the URL's commit, or update the pin)"
            )
    else:
        name = Path(source.split("?")[0]).stem
    return PromptSet(
        name=name, sha256=sha, source=source, prompts=_parse_prompts(data.decode("utf-8"), source)
    )


def load_judge_prompts(source: str | Path | dict[str, Any] | None) -> dict[str, JudgePrompt]:
    """Judge prompts by name; None loads jaflow's own (demo) Japanese prompts."""
    return load_prompt_set(source).prompts


def text_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()
