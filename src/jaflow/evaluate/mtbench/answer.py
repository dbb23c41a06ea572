"""Answer generation: each model answers both turns in its own chat format (FastChat layout)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jaflow.data.templates import TEMPLATES, get_template
from jaflow.evaluate.mtbench.categories import GREEDY_BELOW, temperature_for
from jaflow.evaluate.mtbench.data import Question, text_hash
from jaflow.evaluate.mtbench.generation import (
    apply_chat_template,
    generate,
    has_chat_template,
    load_model,
)

log = logging.getLogger(__name__)

# Where a template model starts writing the next user turn: the answer ends there.
STOP_STRINGS: dict[str, tuple[str, ...]] = {
    "alpaca": ("### Instruction:",),
    "alpaca_ja": ("### 指示:",),
    "rinna_chat": ("<NL>ユーザー:", "ユーザー:"),
    "bilingual_chat": ("\nユーザー:", "ユーザー:"),
}


@dataclass(frozen=True)
class ChatFormat:
    """Turns a conversation into a generation prompt and a raw completion into an answer."""

    name: str  # a jaflow template name, or "chat_template"
    tokenizer: Any = None

    @classmethod
    def resolve(cls, name: str | None, tokenizer: Any) -> ChatFormat:
        if name in (None, "chat_template"):
            if has_chat_template(tokenizer):
                return cls("chat_template", tokenizer)
            log.warning("the tokenizer has no chat template; answering in the plain format")
            return cls("plain")
        get_template(name)  # unknown names fail here, naming the known ones
        return cls(name)

    @property
    def add_special_tokens(self) -> bool:
        return self.name != "chat_template"  # a chat template writes its own BOS

    def prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        if self.name == "chat_template":
            return apply_chat_template(self.tokenizer, messages)
        return TEMPLATES[self.name]().prompt_for(messages)

    def clean(self, text: str) -> str:
        template = TEMPLATES.get(self.name)
        for stop in STOP_STRINGS.get(self.name) or (template.stop_strings if template else ()):
            if stop in text:
                text = text[: text.index(stop)]
        if self.name == "rinna_chat":
            text = text.replace("<NL>", "\n")
        return text.strip()


def answer_questions(
    questions: Sequence[Question],
    hf_args: dict[str, Any],
    *,
    model_id: str,
    chat_format: str | None,
    temperatures: Mapping[str, float] | None = None,
    max_new_tokens: int = 512,
    num_choices: int = 1,
    batch_size: int = 8,
    top_p: float = 0.9,
    repetition_penalty: float = 1.1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    model, tokenizer = load_model(hf_args)
    fmt = ChatFormat.resolve(chat_format, tokenizer)
    log.info("answering %d questions x %d choices with %s in format %s",
             len(questions), num_choices, hf_args["pretrained"], fmt.name)
    return generate_answers(
        questions, model, tokenizer, fmt, model_id=model_id, temperatures=temperatures,
        max_new_tokens=max_new_tokens, num_choices=num_choices, batch_size=batch_size,
        top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
    )


def generate_answers(
    questions: Sequence[Question],
    model: Any,
    tokenizer: Any,
    fmt: ChatFormat,
    *,
    model_id: str,
    temperatures: Mapping[str, float] | None = None,
    max_new_tokens: int = 512,
    num_choices: int = 1,
    batch_size: int = 8,
    top_p: float = 0.9,
    repetition_penalty: float = 1.1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Answers in FastChat's model_answer layout, both turns, `num_choices` samples each.

    Questions are batched within a category (one temperature per batch); turn t+1 waits for
    turn t of the same batch, since its prompt holds the earlier answer.
    """
    answers: dict[tuple[int, int], list[str]] = {}
    prompts_seen: dict[int, str] = {}
    by_category: dict[str, list[Question]] = {}
    for q in questions:
        by_category.setdefault(q.category, []).append(q)
    for choice in range(num_choices):
        for category, group in sorted(by_category.items()):
            temperature = temperature_for(category, temperatures)
            for start in range(0, len(group), batch_size):
                batch = group[start : start + batch_size]
                convs: dict[int, list[dict[str, str]]] = {q.question_id: [] for q in batch}
                n_turns = max(len(q.turns) for q in batch)
                for t in range(n_turns):
                    todo = [q for q in batch if t < len(q.turns)]
                    prompts = []
                    for q in todo:
                        convs[q.question_id].append({"role": "user", "content": q.turns[t]})
                        prompts.append(fmt.prompt(convs[q.question_id]))
                    batch_seed = int(text_hash(seed, choice, category, start, t)[:8], 16)
                    outs = generate(
                        model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                        temperature=temperature, top_p=top_p,
                        repetition_penalty=repetition_penalty, seed=batch_seed,
                        add_special_tokens=fmt.add_special_tokens,
                    )
                    for q, prompt, out in zip(todo, prompts, outs, strict=True):
                        text = fmt.clean(out)
                        convs[q.question_id].append({"role": "assistant", "content": text})
                        answers.setdefault((q.question_id, choice), []).append(text)
                        if choice == 0:  # FastChat keeps the last turn's prompt: the whole dialogue
                            prompts_seen[q.question_id] = prompt
            log.info("choice %d: %s done", choice, category)
    records = []
    for q in sorted(questions, key=lambda q: q.question_id):
        temperature = temperature_for(q.category, temperatures)
        choices = [{"index": c, "turns": answers[(q.question_id, c)]} for c in range(num_choices)]
        records.append({
            "question_id": q.question_id,
            "answer_id": text_hash(model_id, q.question_id, choices)[:22],
            "model_id": model_id,
            "choices": choices,
            "generate_params": {
                "prompt": prompts_seen[q.question_id],
                "chat_format": fmt.name,
                "do_sample": temperature >= GREEDY_BELOW,
                "max_new_token": max_new_tokens,
                "temperature": temperature,
                "top_p": top_p,
                "repetition_penalty": repetition_penalty,
                "seed": seed,
            },
        })
    return records
