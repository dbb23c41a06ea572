"""Judge backends: any OpenAI-compatible endpoint, or a local transformers model (offline).

`OpenAITransport` is the one HTTP path (judges and answer servers): jittered exponential backoff
that honours Retry-After, malformed bodies retried and recorded, and 400/401/403/404/422 failing
at once with the server's message and the model name. Requests adapt to reasoning models
(`max_completion_tokens`, no temperature) by config, or when the server's 400 says so.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jaflow.errors import ConfigError, JaflowError
from jaflow.evaluate.mtbench.judge import Call, OnResult

log = logging.getLogger(__name__)

FATAL_STATUS = (400, 401, 403, 404, 409, 422)
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class JudgeFatal(JaflowError):
    """The endpoint refuses every call (bad key, unknown model, bad request): stop, don't retry."""


class Malformed(Exception):
    """A 200 reply whose body is not a usable completion."""


def api_key(key_env: str | None, config_key: str) -> str | None:
    """The key from the environment variable the config names (None: an endpoint without a key)."""
    if not key_env:
        return None
    key = os.environ.get(key_env)
    if not key:
        raise ConfigError(
            f"{config_key}: environment variable {key_env} is not set "
            "(set it, or null for an endpoint without a key)"
        )
    return key


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a 429/503 asks us to wait: retry-after-ms, or Retry-After (seconds or HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(e: Any) -> str:
    """The server's own words from an APIStatusError: error.message, else the body text."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    response = getattr(e, "response", None)
    text = getattr(response, "text", "") if response is not None else ""
    return (text or str(e))[:500]


def _param(e: Any) -> str | None:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("param"), str):
            return err["param"]
    return None


class OpenAITransport:
    """One model on one OpenAI-compatible endpoint, through the real `openai` (>=1) client."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        api_key_env: str | None,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        config_key: str,
    ):
        import openai

        self._openai = openai
        self._secret = api_key(api_key_env, f"{config_key}.api_key_env")
        self.base_url = base_url or DEFAULT_BASE_URL
        self.client = openai.OpenAI(
            api_key=self._secret or "no-key", base_url=self.base_url, timeout=timeout, max_retries=0
        )
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.config_key = config_key
        self._rng = random.Random()
        self.usage = {
            "requests": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "reasoning_tokens": 0,
        }
        self._lock = threading.Lock()

    def scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def delay(self, attempt: int, wait: float | None) -> float:
        """Jittered exponential backoff; never shorter than the server's Retry-After."""
        base = min(self.max_backoff, self.backoff * 2**attempt)
        jittered = base / 2 + self._rng.uniform(0, base / 2)
        return max(wait, jittered) if wait is not None else jittered

    def _retryable(self, e: Exception) -> bool:
        o = self._openai
        if isinstance(e, o.APIConnectionError):  # includes APITimeoutError
            return True
        return isinstance(e, o.APIStatusError) and (
            e.status_code in (408, 429) or e.status_code >= 500
        )

    def fatal(self, e: Any) -> JudgeFatal:
        return JudgeFatal(
            f"{self.config_key}: {self.base_url} refused model '{self.model}' "
            f"(HTTP {e.status_code} {type(e).__name__}): {self.scrub(server_message(e))}"
        )

    def _post(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        api = self.client.chat.completions if endpoint == "chat" else self.client.completions
        raw = api.with_raw_response.create(**params)
        text = raw.http_response.text
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            raise Malformed(f"malformed JSON body ({e.msg} at {e.pos}): {text[:120]!r}") from None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("choices"), list)
            or not body["choices"]
        ):
            raise Malformed(f"no choices in the reply: {text[:120]!r}")
        return body

    def request(
        self,
        endpoint: str,
        params: Callable[[], dict[str, Any]],
        adapt: Callable[[Any], bool] | None = None,
    ) -> tuple[dict[str, Any] | None, str | None, list[str]]:
        """(body, None, events) or (None, error, events) once retries are spent; raises
        JudgeFatal on a deterministic refusal. `params()` builds the request each attempt;
        `adapt(e)` may change what it builds after a 400 and return True to resend."""
        o = self._openai
        events: list[str] = []
        attempt = 0
        adaptations = 0
        while True:
            try:
                body = self._post(endpoint, params())
                self._count(body)
                return body, None, events
            except o.APIStatusError as e:
                if e.status_code == 400 and adapt is not None and adaptations < 3 and adapt(e):
                    adaptations += 1
                    events.append(f"adapted after HTTP 400: {self.scrub(server_message(e))[:200]}")
                    continue
                if e.status_code in FATAL_STATUS or not self._retryable(e):
                    raise self.fatal(e) from None
                error = self.scrub(f"HTTP {e.status_code} {type(e).__name__}: {server_message(e)}")
                wait = retry_after(e.response.headers if e.response is not None else None)
            except o.APIConnectionError as e:
                error, wait = self.scrub(f"{type(e).__name__}: {e}"), None
            except (Malformed, o.APIResponseValidationError) as e:
                error, wait = self.scrub(f"{type(e).__name__}: {e}"), None
            events.append(error[:300])
            if attempt >= self.max_retries:
                log.warning(
                    "%s call failed for good after %d attempt(s): %s",
                    self.config_key,
                    attempt + 1,
                    error,
                )
                return None, error, events
            pause = self.delay(attempt, wait)
            log.info(
                "%s call failed (%s); retry %d/%d in %.2fs%s",
                self.config_key,
                error,
                attempt + 1,
                self.max_retries,
                pause,
                f" (Retry-After {wait:g}s)" if wait is not None else "",
            )
            time.sleep(pause)
            attempt += 1

    def _count(self, body: dict[str, Any]) -> None:
        usage = call_usage(body)
        with self._lock:
            self.usage["requests"] += 1
            for key, value in usage.items():
                self.usage[key] += value


TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")


def call_usage(body: Mapping[str, Any]) -> dict[str, int]:
    """Tokens one reply says it cost: prompt, completion (reasoning included) and reasoning."""
    usage = body.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    out = {
        k: usage[k] for k in ("prompt_tokens", "completion_tokens") if isinstance(usage.get(k), int)
    }
    if isinstance(details.get("reasoning_tokens"), int):
        out["reasoning_tokens"] = details["reasoning_tokens"]
    return out


class OpenAIBackend:
    """A judge on an OpenAI-compatible chat endpoint, adapting to reasoning models."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        api_key_env: str | None,
        concurrency: int,
        timeout: float,
        max_retries: int,
        max_new_tokens: int,
        backoff: float,
        max_backoff: float,
        temperature: float | None,
        token_param: str,
        reasoning_effort: str | None,
    ):
        self.transport = OpenAITransport(
            model,
            base_url=base_url,
            api_key_env=api_key_env,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            config_key="mtbench.judge",
        )
        self.model = model
        self.concurrency = concurrency
        self.max_new_tokens = max_new_tokens
        if token_param == "auto":  # a reasoning effort means a reasoning model: its parameter
            token_param = "max_completion_tokens" if reasoning_effort else "max_tokens"
        self.token_param = token_param
        self.temperature = temperature
        self.reasoning_effort = reasoning_effort
        self._lock = threading.Lock()

    @classmethod
    def from_judge(cls, judge: Mapping[str, Any], *, concurrency: int) -> OpenAIBackend:
        """The backend the `mtbench.judge` settings describe (the batch API sends one at a time)."""
        return cls(
            judge["model"],
            base_url=judge["base_url"],
            api_key_env=judge["api_key_env"],
            concurrency=concurrency,
            timeout=judge["timeout"],
            max_retries=judge["max_retries"],
            max_new_tokens=judge["max_new_tokens"],
            backoff=judge["retry_backoff"],
            max_backoff=judge["retry_max_backoff"],
            temperature=judge["temperature"],
            token_param=judge["token_param"],
            reasoning_effort=judge["reasoning_effort"],
        )

    @property
    def usage(self) -> dict[str, int]:
        return self.transport.usage

    def sent_settings(self) -> dict[str, Any]:
        """What the requests carry now (after any adaptation to the server)."""
        return {
            "token_param": self.token_param,
            "temperature": self.temperature,
            "reasoning_effort": self.reasoning_effort,
        }

    def params(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        with self._lock:
            p: dict[str, Any] = {
                "model": self.model,
                "messages": [dict(m) for m in messages],
                "n": 1,
                self.token_param: self.max_new_tokens,
            }
            if self.temperature is not None:
                p["temperature"] = self.temperature
            if self.reasoning_effort:
                p["reasoning_effort"] = self.reasoning_effort
        return p

    def adapt(self, e: Any) -> bool:
        """Change the request as a 400 asks (a reasoning model's refusals); False: nothing to change."""
        param = _param(e)
        text = server_message(e)
        with self._lock:
            if self.token_param == "max_tokens" and (
                param == "max_tokens" or ("max_tokens" in text and "max_completion_tokens" in text)
            ):
                self.token_param = "max_completion_tokens"
                log.warning(
                    "mtbench.judge: %s refuses max_tokens; sending max_completion_tokens "
                    "(set judge.token_param: max_completion_tokens to skip this)",
                    self.model,
                )
                return True
            if self.temperature is not None and (
                param == "temperature" or re.search(r"\btemperature\b", text)
            ):
                log.warning(
                    "mtbench.judge: %s refuses temperature %s; sending the server's default "
                    "(set judge.temperature: null to skip this): %s",
                    self.model,
                    self.temperature,
                    text,
                )
                self.temperature = None
                return True
        return False

    def complete(
        self, messages: Sequence[Mapping[str, str]]
    ) -> tuple[str | None, str | None, list[str], dict[str, int]]:
        """(output, error, transport events, token usage) of one judge call."""
        body, error, events = self.transport.request(
            "chat", lambda: self.params(messages), self.adapt
        )
        if body is None:
            return None, error, events, {}
        usage = call_usage(body)
        message = body["choices"][0].get("message") or {}
        content = message.get("content")
        if not isinstance(content, str):
            # a reasoning model that spent its whole budget thinking returns no content
            reason = body["choices"][0].get("finish_reason")
            return "", None, [*events, f"no content (finish_reason {reason})"], usage
        return content, None, events, usage

    def run(self, calls: Sequence[Call], on_result: OnResult) -> None:
        stop = threading.Event()

        def one(call: Call) -> None:
            if stop.is_set():
                return
            try:
                output, error, events, usage = self.complete(call.messages)
            except JudgeFatal:
                stop.set()  # calls already in flight finish; no new one starts
                raise
            on_result(call, output, error, events=events, usage=usage)  # cached before the next

        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            for future in [pool.submit(one, c) for c in calls]:
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a fatal error sends nothing more
        log.info("mtbench.judge usage: %s", json.dumps(self.usage))


BATCH_DONE = ("completed", "failed", "expired", "cancelled")


class BatchBackend:
    """OpenAI's Batch API (`judge.batch: true`, half the price): the missing calls go up as one
    batch, polled until done; results land in the same cache. Submitted batches are recorded in
    a state file before polling, so a killed run resumes by polling them, never resubmitting."""

    name = "openai-batch"

    def __init__(self, judge: Mapping[str, Any], state: str | os.PathLike):
        self.chat = OpenAIBackend.from_judge(judge, concurrency=1)
        self.transport = self.chat.transport
        self.client = self.transport.client
        self.poll = judge["batch_poll_interval"]
        self.state = Path(state)
        self.usage = self.transport.usage

    # -- state: {batch_id: [call keys]} of batches submitted and not yet collected ---------------

    def _load(self) -> dict[str, list[str]]:
        if not self.state.exists():
            return {}
        return json.loads(self.state.read_text(encoding="utf-8"))

    def _save(self, state: dict[str, list[str]]) -> None:
        from jaflow.io import write_json

        write_json(self.state, state)

    def _api(self, what: str, fn: Callable[[], Any]) -> Any:
        """One batch-API call with the transport's retry policy for transient faults."""
        o = self.transport._openai
        for attempt in range(self.transport.max_retries + 1):
            try:
                return fn()
            except o.APIStatusError as e:
                if e.status_code in FATAL_STATUS or not self.transport._retryable(e):
                    raise self.transport.fatal(e) from None
                wait = retry_after(e.response.headers if e.response is not None else None)
                error = f"HTTP {e.status_code}: {server_message(e)}"
            except o.APIConnectionError as e:
                wait, error = None, f"{type(e).__name__}: {e}"
            if attempt == self.transport.max_retries:
                raise JudgeFatal(
                    f"mtbench.judge.batch: {what} failed after retries: {self.transport.scrub(error)}"
                )
            time.sleep(self.transport.delay(attempt, wait))
        raise AssertionError("unreachable")

    def _submit(self, calls: Sequence[Call]) -> str:
        lines = [
            json.dumps(
                {
                    "custom_id": c.key,
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": self.chat.params(c.messages),
                },
                ensure_ascii=False,
            )
            for c in calls
        ]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        upload = self._api(
            "upload",
            lambda: self.client.files.create(file=("judge_batch.jsonl", data), purpose="batch"),
        )
        batch = self._api(
            "create",
            lambda: self.client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
            ),
        )
        log.info("mtbench.judge.batch: submitted %s with %d call(s)", batch.id, len(calls))
        return batch.id

    def run(self, calls: Sequence[Call], on_result: OnResult) -> None:
        by_key = {c.key: c for c in calls}
        state = self._load()
        pending = {k for keys in state.values() for k in keys}
        new = [c for c in calls if c.key not in pending]
        if new:
            state[self._submit(new)] = [c.key for c in new]
            self._save(state)  # before polling: a kill from here on resumes this batch
        for batch_id in list(state):
            keys = state[batch_id]
            if not set(keys) & set(by_key):  # every call of it is cached already
                del state[batch_id]
                self._save(state)
                continue
            while True:
                batch = self._api("poll", lambda b=batch_id: self.client.batches.retrieve(b))
                if batch.status in BATCH_DONE:
                    break
                time.sleep(self.poll)
            self._collect(batch, keys, by_key, on_result)
            del state[batch_id]
            self._save(state)

    def _collect(
        self, batch: Any, keys: Sequence[str], by_key: Mapping[str, Call], on_result: OnResult
    ) -> None:
        seen: set[str] = set()
        for file_id in (batch.output_file_id, getattr(batch, "error_file_id", None)):
            if not file_id:
                continue
            text = self._api("download", lambda fid=file_id: self.client.files.content(fid).text)
            for line in text.splitlines():
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    custom_id = row["custom_id"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.warning(
                        "mtbench.judge.batch: %s: malformed result line %.120r", batch.id, line
                    )
                    continue
                call = by_key.get(custom_id)
                if call is None or custom_id in seen:
                    continue
                seen.add(custom_id)
                response = row.get("response") or {}
                body = response.get("body") or {}
                try:
                    content = body["choices"][0]["message"]["content"]
                except (KeyError, IndexError, TypeError):
                    content = None
                if response.get("status_code") == 200 and isinstance(content, str):
                    usage = call_usage(body)
                    with self.transport._lock:
                        self.usage["requests"] += 1
                        for k, v in usage.items():
                            self.usage[k] += v
                    on_result(call, content, None, usage=usage)
                else:
                    error = (
                        row.get("error")
                        or body.get("error")
                        or f"HTTP {response.get('status_code')}"
                    )
                    on_result(call, None, self.transport.scrub(f"batch {batch.id}: {error}"[:300]))
        for key in keys:
            if key in by_key and key not in seen:
                on_result(
                    by_key[key], None, f"batch {batch.id} ended {batch.status} without this call"
                )


class HFBackend:
    """A local judge model through transformers: greedy, batched, fully offline."""

    name = "hf"

    def __init__(self, hf_args: dict[str, Any], *, max_new_tokens: int, batch_size: int):
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
                self.model,
                self.tokenizer,
                [self.prompt(c.messages) for c in batch],
                max_new_tokens=self.max_new_tokens,
                temperature=0.0,
                add_special_tokens=special,
            )
            for call, out in zip(batch, outs, strict=True):
                on_result(call, out, None)
            log.info("judged %d/%d", min(start + self.batch_size, len(calls)), len(calls))


def plain_prompt(messages: Sequence[dict[str, str]]) -> str:
    """The judge prompt for a model without a chat template: the messages, blank-line separated."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def judge_hf_args(judge: Mapping[str, Any], judge_hf: dict[str, Any] | None) -> dict[str, Any]:
    """The hf judge's from_pretrained arguments: the graph's, or judge.model as a path / hub id."""
    if judge_hf:
        return judge_hf
    return {
        "pretrained": judge["model"],
        "peft": None,
        "tokenizer": None,
        "use_fast": True,
        "trust_remote_code": False,
        "dtype": "auto",
    }


def judge_settings(judge: Mapping[str, Any]) -> dict[str, Any]:
    """The judge settings that shape its requests (and so its outputs)."""
    if judge["backend"] == "hf":
        return {"max_new_tokens": judge["max_new_tokens"], "temperature": 0}
    return {
        "max_new_tokens": judge["max_new_tokens"],
        "temperature": judge["temperature"],
        "token_param": judge["token_param"],
        "reasoning_effort": judge["reasoning_effort"],
    }


def judge_identity(judge: Mapping[str, Any], judge_hf: dict[str, Any] | None) -> dict[str, Any]:
    """What the judge is: an hf judge's content identity (weights' checksums), an API judge's
    model and endpoint. Never its name in the config."""
    if judge["backend"] == "hf":
        from jaflow.provenance import model_identity

        return {"backend": "hf", "model": model_identity(judge_hf_args(judge, judge_hf))}
    if judge["backend"] == "openai":
        return {
            "backend": "openai",
            "model": judge["model"],
            "base_url": judge["base_url"] or DEFAULT_BASE_URL,
        }
    raise ConfigError(f"mtbench.judge.backend: unknown backend '{judge['backend']}'")


def judge_info(judge: Mapping[str, Any], judge_hf: dict[str, Any] | None, prompt_set: Any) -> Any:
    from jaflow.evaluate.mtbench.judge import JudgeInfo

    return JudgeInfo(
        name=judge["model"],
        identity=judge_identity(judge, judge_hf),
        settings=judge_settings(judge),
        prompt_set=prompt_set.identity,
    )


def judge_key_problem(judge: Mapping[str, Any]) -> str | None:
    """What is wrong with an API judge's key variable, or None."""
    try:
        check_judge_env(judge)
    except ConfigError as e:
        return str(e)
    return None


def check_judge_env(judge: Mapping[str, Any]) -> None:
    """Before any job runs: an API judge's key variable must be set (ConfigError naming
    mtbench.judge.api_key_env), not after hours of answer generation."""
    if judge["backend"] == "openai":
        api_key(judge["api_key_env"], "mtbench.judge.api_key_env")


def make_backend(
    judge: Mapping[str, Any],
    judge_hf: dict[str, Any] | None,
    batch_size: int,
    batch_state: str | os.PathLike | None = None,
) -> Any:
    """The backend `mtbench.judge` asks for; `judge_hf` is the graph's hf_args when judge.model is a graph model."""
    if judge["backend"] == "openai" and judge["batch"]:
        if batch_state is None:
            raise ConfigError("mtbench.judge.batch: needs a state file beside the judge cache")
        return BatchBackend(judge, batch_state)
    if judge["backend"] == "openai":
        return OpenAIBackend.from_judge(judge, concurrency=judge["concurrency"])
    if judge["backend"] == "hf":
        return HFBackend(
            judge_hf_args(judge, judge_hf),
            max_new_tokens=judge["max_new_tokens"],
            batch_size=batch_size,
        )
    raise ConfigError(f"mtbench.judge.backend: unknown backend '{judge['backend']}'")
