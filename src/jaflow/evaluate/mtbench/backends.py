"""Judge backends: any OpenAI-compatible endpoint, or a local transformers model (offline)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jaflow.errors import ConfigError, JaflowError
from jaflow.evaluate.mtbench.judge import Call, OnResult

log = logging.getLogger(__name__)


class JudgeFatal(JaflowError):
    """The endpoint refuses every call (bad key, unknown model): stop rather than record errors."""


class OpenAIBackend:
    """The `openai` (>=1) client; our own retries with exponential backoff on 429/5xx/timeouts."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 6,
        max_new_tokens: int = 1024,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ):
        import openai

        self._openai = openai
        key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not key:
            raise ConfigError(
                f"mtbench.judge.api_key_env: environment variable {api_key_env} is not set "
                "(set it, or api_key_env: null for an endpoint without a key)"
            )
        self._secret = key
        self.client = openai.OpenAI(
            api_key=key or "no-key", base_url=base_url, timeout=timeout, max_retries=0
        )
        self.model = model
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.max_new_tokens = max_new_tokens
        self.backoff = backoff
        self.max_backoff = max_backoff

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _retryable(self, e: Exception) -> bool:
        o = self._openai
        if isinstance(e, o.APIConnectionError):  # includes APITimeoutError
            return True
        return isinstance(e, o.APIStatusError) and (e.status_code == 429 or e.status_code >= 500)

    def complete(self, messages: Sequence[dict[str, str]]) -> tuple[str | None, str | None]:
        """(output, None) or (None, error) once retries are spent."""
        o = self._openai
        for attempt in range(self.max_retries + 1):
            try:
                r = self.client.chat.completions.create(
                    model=self.model, messages=list(messages), temperature=0,
                    max_tokens=self.max_new_tokens, n=1,
                )
                return (r.choices[0].message.content or "") if r.choices else "", None
            except (o.AuthenticationError, o.PermissionDeniedError, o.NotFoundError) as e:
                raise JudgeFatal(
                    f"mtbench.judge: the endpoint refused the request ({type(e).__name__}, "
                    f"HTTP {e.status_code}); check base_url, model and the API key variable"
                ) from None
            except o.APIError as e:
                error = self._scrub(f"{type(e).__name__}: {e}")
                if not self._retryable(e) or attempt == self.max_retries:
                    log.warning("judge call failed for good: %s", error)
                    return None, error
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                log.info("judge call failed (%s); retry %d/%d in %.1fs",
                         error, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def run(self, calls: Sequence[Call], on_result: OnResult) -> None:
        stop = threading.Event()

        def one(call: Call) -> None:
            if stop.is_set():
                return
            try:
                output, error = self.complete(call.messages)
            except JudgeFatal:
                stop.set()  # calls already in flight finish; no new one starts
                raise
            on_result(call, output, error)  # in the worker: cached before its next call

        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            for future in [pool.submit(one, c) for c in calls]:
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a fatal error sends nothing more


class HFBackend:
    """A local judge model through transformers: greedy, batched, fully offline."""

    name = "hf"

    def __init__(self, hf_args: dict[str, Any], *, max_new_tokens: int = 1024, batch_size: int = 8):
        from jaflow.evaluate.mtbench.generation import load_model

        self.model, self.tokenizer = load_model(hf_args)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def prompt(self, messages: Sequence[dict[str, str]]) -> str:
        from jaflow.evaluate.mtbench.generation import apply_chat_template, has_chat_template

        if has_chat_template(self.tokenizer):
            return apply_chat_template(self.tokenizer, messages)
        return plain_prompt(messages)

    def run(self, calls: Sequence[Call], on_result: OnResult) -> None:
        from jaflow.evaluate.mtbench.generation import generate, has_chat_template

        special = not has_chat_template(self.tokenizer)
        for start in range(0, len(calls), self.batch_size):
            batch = calls[start : start + self.batch_size]
            outs = generate(
                self.model, self.tokenizer, [self.prompt(c.messages) for c in batch],
                max_new_tokens=self.max_new_tokens, temperature=0.0, add_special_tokens=special,
            )
            for call, out in zip(batch, outs, strict=True):
                on_result(call, out, None)
            log.info("judged %d/%d", min(start + self.batch_size, len(calls)), len(calls))


def plain_prompt(messages: Sequence[dict[str, str]]) -> str:
    """The judge prompt for a model without a chat template: the messages, blank-line separated."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def make_backend(judge: dict[str, Any], judge_hf: dict[str, Any] | None, batch_size: int = 8) -> Any:
    """The backend `mtbench.judge` asks for; `judge_hf` is the graph's hf_args when judge.model is a graph model."""
    if judge["backend"] == "openai":
        return OpenAIBackend(
            judge["model"], base_url=judge.get("base_url"), api_key_env=judge.get("api_key_env"),
            concurrency=judge.get("concurrency", 4), timeout=judge.get("timeout", 120),
            max_retries=judge.get("max_retries", 6), max_new_tokens=judge.get("max_new_tokens", 1024),
            backoff=judge.get("retry_backoff", 1.0), max_backoff=judge.get("retry_max_backoff", 60.0),
        )
    if judge["backend"] == "hf":
        hf_args = judge_hf or {"pretrained": judge["model"], "peft": None, "tokenizer": None,
                               "use_fast": True, "trust_remote_code": False, "dtype": "auto"}
        return HFBackend(hf_args, max_new_tokens=judge.get("max_new_tokens", 1024),
                         batch_size=judge.get("batch_size", batch_size))
    raise ConfigError(f"mtbench.judge.backend: unknown backend '{judge['backend']}'")
