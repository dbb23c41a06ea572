"""Answer generation: each model answers both turns in its own chat format (FastChat layout).

Three backends make the completions (`mtbench.answer.backend`): `hf` (local transformers),
`openai` (any OpenAI-compatible server: its chat endpoint, or its completions endpoint with the
model's chat format applied here) and `vllm` (the offline engine; GPU only, imported lazily).
The answer file keeps everything the model wrote, reasoning (`<think>`) included.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from jaflow.data.templates import TEMPLATES, get_template
from jaflow.errors import ConfigError, JaflowError
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


Conversation = list[dict[str, str]]


class AnswerFailed(JaflowError):
    """An answer server gave no usable answer after retries: the job fails, writing nothing."""


@dataclass
class Generator:
    """Completes a batch of conversations at one temperature: (prompt as recorded, answer) each."""

    backend: str
    fmt_name: str
    complete: Callable[[Sequence[Conversation], float, int], list[tuple[str, str]]]
    batch_size: int


def hf_generator(
    model: Any,
    tokenizer: Any,
    fmt: ChatFormat,
    *,
    max_new_tokens: int,
    top_p: float,
    repetition_penalty: float,
    batch_size: int,
) -> Generator:
    def complete(
        convs: Sequence[Conversation], temperature: float, seed: int
    ) -> list[tuple[str, str]]:
        prompts = [fmt.prompt(c) for c in convs]
        outs = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            seed=seed,
            add_special_tokens=fmt.add_special_tokens,
        )
        return [(p, fmt.clean(o)) for p, o in zip(prompts, outs, strict=True)]

    return Generator("hf", fmt.name, complete, batch_size)


def openai_generator(
    answer: Mapping[str, Any],
    api_model: str,
    fmt: ChatFormat | None,
    *,
    max_new_tokens: int,
    top_p: float,
    repetition_penalty: float,
) -> Generator:
    """Answers from an OpenAI-compatible server: `fmt` None sends messages to the chat endpoint;
    a format sends its prompt text to the completions endpoint (and stops where the next user
    turn would start)."""
    from jaflow.evaluate.mtbench.backends import OpenAITransport

    transport = OpenAITransport(
        api_model,
        base_url=answer["base_url"],
        api_key_env=answer["api_key_env"],
        timeout=answer["timeout"],
        max_retries=answer["max_retries"],
        backoff=answer["retry_backoff"],
        max_backoff=answer["retry_max_backoff"],
        config_key="mtbench.answer",
    )
    endpoint = "chat" if fmt is None else "completions"
    stops = list(STOP_STRINGS.get(fmt.name, ())) if fmt is not None else []

    def one(conv: Conversation, temperature: float, seed: int) -> tuple[str, str]:
        greedy = temperature < GREEDY_BELOW
        params: dict[str, Any] = {
            "model": api_model,
            "max_tokens": max_new_tokens,
            "seed": seed,
            "temperature": 0.0 if greedy else temperature,
            "n": 1,
        }
        if not greedy:
            params["top_p"] = top_p
        if answer["send_repetition_penalty"] and repetition_penalty != 1.0:
            params["extra_body"] = {"repetition_penalty": repetition_penalty}
        if fmt is None:
            params["messages"] = conv
            prompt = json.dumps(conv, ensure_ascii=False)
        else:
            prompt = fmt.prompt(conv)
            params["prompt"] = prompt
            if stops:
                params["stop"] = stops[:4]
        body, error, _ = transport.request(endpoint, lambda: params)
        if body is None:
            raise AnswerFailed(
                f"mtbench.answer: {transport.base_url} gave no answer for model "
                f"'{api_model}' after retries: {error}"
            )
        choice = body["choices"][0]
        text = (choice.get("message") or {}).get("content") if fmt is None else choice.get("text")
        if not isinstance(text, str):
            raise AnswerFailed(
                f"mtbench.answer: {transport.base_url} replied without text: {choice!r:.200}"
            )
        return prompt, (fmt.clean(text) if fmt is not None else text.strip())

    def complete(
        convs: Sequence[Conversation], temperature: float, seed: int
    ) -> list[tuple[str, str]]:
        with ThreadPoolExecutor(max_workers=answer["concurrency"]) as pool:
            futures = [pool.submit(one, c, temperature, seed) for c in convs]
            return [f.result() for f in futures]

    return Generator("openai", fmt.name if fmt else "server_chat", complete, batch_size=10**6)


def vllm_generator(
    hf_args: Mapping[str, Any],
    fmt_name: str | None,
    answer: Mapping[str, Any],
    *,
    max_new_tokens: int,
    top_p: float,
    repetition_penalty: float,
) -> Generator:
    """vLLM's offline engine on the graph model (GPU only)."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("mtbench.answer.backend: vllm needs a CUDA GPU; use hf (or openai) here")
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise ConfigError(
            "mtbench.answer.backend: vllm is not installed (pip install vllm)"
        ) from None
    from jaflow.hf import load_tokenizer

    tokenizer = load_tokenizer(dict(hf_args))
    fmt = ChatFormat.resolve(fmt_name, tokenizer)
    engine_args: dict[str, Any] = {
        "model": hf_args["pretrained"],
        "tokenizer": hf_args.get("tokenizer") or hf_args["pretrained"],
        "trust_remote_code": bool(hf_args.get("trust_remote_code")),
        "dtype": hf_args.get("dtype") or "auto",
        "gpu_memory_utilization": answer["gpu_memory_utilization"],
        "enable_lora": bool(hf_args.get("peft")),
    }
    llm = LLM(**engine_args)
    lora = None
    if hf_args.get("peft"):
        from vllm.lora.request import LoRARequest

        lora = LoRARequest("adapter", 1, hf_args["peft"])
    stops = list(STOP_STRINGS.get(fmt.name, ()))

    def complete(
        convs: Sequence[Conversation], temperature: float, seed: int
    ) -> list[tuple[str, str]]:
        greedy = temperature < GREEDY_BELOW
        sampling = SamplingParams(
            temperature=0.0 if greedy else temperature,
            top_p=1.0 if greedy else top_p,
            repetition_penalty=repetition_penalty,
            max_tokens=max_new_tokens,
            seed=seed,
            stop=stops or None,
        )
        prompts = [fmt.prompt(c) for c in convs]
        outs = llm.generate(prompts, sampling, lora_request=lora, use_tqdm=False)
        return [(p, fmt.clean(o.outputs[0].text)) for p, o in zip(prompts, outs, strict=True)]

    return Generator("vllm", fmt.name, complete, batch_size=10**6)


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
    answer: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Answers from the backend `answer` (mtbench.answer) names; None is local transformers."""
    backend = answer["backend"] if answer else "hf"
    sampling = dict(
        max_new_tokens=max_new_tokens, top_p=top_p, repetition_penalty=repetition_penalty
    )
    if backend == "hf":
        model, tokenizer = load_model(hf_args)
        fmt = ChatFormat.resolve(chat_format, tokenizer)
        gen = hf_generator(model, tokenizer, fmt, batch_size=batch_size, **sampling)
    elif backend == "openai":
        api_model = answer["served_models"].get(model_id, model_id)
        fmt = None
        if answer["endpoint"] == "completions":
            from jaflow.hf import load_tokenizer

            needs_tokenizer = chat_format in (None, "chat_template")
            fmt = ChatFormat.resolve(
                chat_format, load_tokenizer(hf_args) if needs_tokenizer else None
            )
        gen = openai_generator(answer, api_model, fmt, **sampling)
    elif backend == "vllm":
        gen = vllm_generator(hf_args, chat_format, answer, **sampling)
    else:
        raise ConfigError(f"mtbench.answer.backend: unknown backend '{backend}'")
    log.info(
        "answering %d questions x %d choices with %s (%s) in format %s",
        len(questions),
        num_choices,
        hf_args["pretrained"],
        gen.backend,
        gen.fmt_name,
    )
    return answer_with(
        questions,
        gen,
        model_id=model_id,
        temperatures=temperatures,
        max_new_tokens=max_new_tokens,
        num_choices=num_choices,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        seed=seed,
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
    """Answers from a loaded transformers model (see `answer_with`)."""
    gen = hf_generator(
        model,
        tokenizer,
        fmt,
        max_new_tokens=max_new_tokens,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        batch_size=batch_size,
    )
    return answer_with(
        questions,
        gen,
        model_id=model_id,
        temperatures=temperatures,
        max_new_tokens=max_new_tokens,
        num_choices=num_choices,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        seed=seed,
    )


def answer_with(
    questions: Sequence[Question],
    gen: Generator,
    *,
    model_id: str,
    temperatures: Mapping[str, float] | None,
    max_new_tokens: int,
    num_choices: int,
    top_p: float,
    repetition_penalty: float,
    seed: int,
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
    batch_size = gen.batch_size
    for choice in range(num_choices):
        for category, group in sorted(by_category.items()):
            temperature = temperature_for(category, temperatures)
            for start in range(0, len(group), batch_size):
                batch = group[start : start + batch_size]
                convs: dict[int, list[dict[str, str]]] = {q.question_id: [] for q in batch}
                n_turns = max(len(q.turns) for q in batch)
                for t in range(n_turns):
                    todo = [q for q in batch if t < len(q.turns)]
                    for q in todo:
                        convs[q.question_id].append({"role": "user", "content": q.turns[t]})
                    batch_seed = int(text_hash(seed, choice, category, start, t)[:8], 16)
                    outs = gen.complete(
                        [list(convs[q.question_id]) for q in todo], temperature, batch_seed
                    )
                    for q, (prompt, text) in zip(todo, outs, strict=True):
                        convs[q.question_id].append({"role": "assistant", "content": text})
                        answers.setdefault((q.question_id, choice), []).append(text)
                        if choice == 0:  # FastChat keeps the last turn's prompt: the whole dialogue
                            prompts_seen[q.question_id] = prompt
            log.info("choice %d: %s done", choice, category)
    records = []
    for q in sorted(questions, key=lambda q: q.question_id):
        temperature = temperature_for(q.category, temperatures)
        choices = [{"index": c, "turns": answers[(q.question_id, c)]} for c in range(num_choices)]
        records.append(
            {
                "question_id": q.question_id,
                "answer_id": text_hash(model_id, q.question_id, choices)[:22],
                "model_id": model_id,
                "choices": choices,
                "generate_params": {
                    "prompt": prompts_seen[q.question_id],
                    "backend": gen.backend,
                    "chat_format": gen.fmt_name,
                    "do_sample": temperature >= GREEDY_BELOW,
                    "max_new_token": max_new_tokens,
                    "temperature": temperature,
                    "top_p": top_p,
                    "repetition_penalty": repetition_penalty,
                    "seed": seed,
                },
            }
        )
    return records
