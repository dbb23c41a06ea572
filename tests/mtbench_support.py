"""Test helpers for MT-Bench: a fault-injecting chat-completions judge server, a server that
answers with a real (tiny) transformers model, and filled mtbench configs.

The servers speak OpenAI's /v1/chat/completions (and /v1/completions) on 127.0.0.1 only. The judge
answers with the rating hidden in the answer under judgment (`<<7>>` -> "評価：[[7]]") and injects
faults by the order requests arrive in. Every request body it answered is counted, to prove resume
sends nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARK = re.compile(r"<<(\d+(?:\.\d+)?)>>")


def body_key(body: dict) -> str:
    return hashlib.sha256(
        json.dumps(body["messages"], ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()


def any_rating(user_prompt: str) -> int:
    """The rating a `rate_any` judge gives an unmarked answer: a function of the prompt it saw."""
    return int(hashlib.sha256(user_prompt.encode()).hexdigest(), 16) % 10 + 1


def filled_mtbench(mtbench: dict[str, Any]) -> dict[str, Any]:
    """`mtbench` with every default the schema gives (what the workflow hands a job)."""
    from jaflow.config import validate_config

    return validate_config({"mtbench": mtbench})["mtbench"]


class JudgeServer:
    """A chat-completions server; `faults` maps the 1-based arrival number to a fault name:
    '429', '500', 'timeout' (sleep past the client's timeout), 'garbage' (unparsable text),
    'retry_after' (429 with Retry-After: 1), 'malformed' (a 200 whose body is not JSON).
    `down_until`: every request up to that arrival number gets a 500 (an outage).
    `models`: the model names it serves (others get a 404 naming the model).
    `reasoning`: refuse max_tokens and any temperature but 1, as OpenAI's reasoning models do."""

    def __init__(
        self,
        faults: dict[int, str] | None = None,
        hang_after: int | None = None,
        sleep: float = 2.0,
        api_key: str = "sk-test",
        down_until: int = 0,
        models: tuple[str, ...] | None = None,
        reasoning: bool = False,
        rate_any: bool = False,
        port: int = 0,
    ):
        self.faults = dict(faults or {})
        self.rate_any = rate_any  # rate answers without a hidden mark too (see `any_rating`)
        self.down_until = down_until
        self.models = models
        self.reasoning = reasoning
        self.times: list[float] = []  # arrival time of each request (after the auth check)
        # the Batch API: uploaded files, batches (done once `batch_release` is set), polls
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_created = threading.Event()
        self.batch_release = threading.Event()
        self.batch_release.set()
        self.batch_polls = 0
        self.refused: Counter[str] = Counter()
        self.hang_after = hang_after  # answer this many requests, then hang and set `hung`
        self.sleep = sleep
        self.api_key = api_key
        self.arrivals = 0
        self.answered: Counter[str] = Counter()
        self.seen: list[dict] = []
        self.bad_auth = 0
        self.hung = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _raw(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, code: int, kind: str, message: str, param: str | None = None) -> None:
                with server.lock:
                    server.refused[kind] += 1
                return self._send(
                    code,
                    {
                        "error": {
                            "message": message,
                            "type": "invalid_request_error",
                            "param": param,
                            "code": kind,
                        }
                    },
                )

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {server.api_key}":
                    return True
                with server.lock:
                    server.bad_auth += 1
                self._send(401, {"error": {"message": "bad key", "type": "auth"}})
                return False

            def do_GET(self):  # the Batch API: batch status, file contents
                if not self._authorized():
                    return
                parts = self.path.strip("/").split("/")  # v1/batches/<id> or v1/files/<id>/content
                with server.lock:
                    server.batch_polls += 1
                if parts[1] == "batches":
                    return self._send(200, server.batch_object(parts[2]))
                return self._raw(200, server.files[parts[2]])

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/files"):  # multipart upload of a batch input file
                    if not self._authorized():
                        return
                    return self._send(200, server.upload(self.headers["Content-Type"], raw))
                body = json.loads(raw)
                if self.path.endswith("/batches"):
                    if not self._authorized():
                        return
                    return self._send(200, server.create_batch(body))
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    with server.lock:
                        server.bad_auth += 1
                    return self._send(401, {"error": {"message": "bad key", "type": "auth"}})
                if server.models is not None and body["model"] not in server.models:
                    return self._refuse(
                        404,
                        "model_not_found",
                        f"The model `{body['model']}` does not exist or you do not have access to it.",
                    )
                if server.reasoning and "max_tokens" in body:
                    return self._refuse(
                        400,
                        "unsupported_parameter",
                        "Unsupported parameter: 'max_tokens' is "
                        "not supported with this model. Use 'max_completion_tokens' instead.",
                        "max_tokens",
                    )
                if server.reasoning and body.get("temperature", 1) != 1:
                    return self._refuse(
                        400,
                        "unsupported_value",
                        "Unsupported value: 'temperature' does not "
                        "support 0 with this model. Only the default (1) value is supported.",
                        "temperature",
                    )
                with server.lock:
                    server.arrivals += 1
                    n = server.arrivals
                    server.seen.append(body)
                    server.times.append(time.monotonic())
                    hang = (
                        server.hang_after is not None
                        and server.answered.total() >= server.hang_after
                    )
                if hang:
                    server.hung.set()
                    server.release.wait(30)
                    return
                fault = server.faults.get(n)
                if n <= server.down_until:
                    return self._send(500, {"error": {"message": "outage", "type": "server"}})
                if fault == "retry_after":
                    return self._raw(
                        429,
                        b'{"error": {"message": "wait", "type": "rate_limit"}}',
                        {"Retry-After": "1"},
                    )
                if fault == "malformed":
                    return self._raw(200, b'{"id": "cmpl-x", "choices": [{"message": {"content": "')
                if fault == "429":
                    return self._send(
                        429, {"error": {"message": "slow down", "type": "rate_limit"}}
                    )
                if fault == "500":
                    return self._send(500, {"error": {"message": "boom", "type": "server"}})
                if fault == "timeout":
                    time.sleep(server.sleep)
                    return self._send(500, {"error": {"message": "too late", "type": "server"}})
                text = server.reply(body, fault)
                with server.lock:
                    server.answered[body_key(body)] += 1
                self._send(
                    200,
                    {
                        "id": f"cmpl-{n}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        # `port`: a rerun must reach the same endpoint (the base_url is part of the judge's identity)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def upload(self, content_type: str, raw: bytes) -> dict:
        import email
        import email.policy

        msg = email.message_from_bytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw, policy=email.policy.HTTP
        )
        data = next(
            p.get_payload(decode=True)
            for p in msg.iter_parts()
            if p.get_param("name", header="content-disposition") == "file"
        )
        with self.lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = data
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": 0,
            "filename": "input.jsonl",
            "purpose": "batch",
            "status": "processed",
        }

    def create_batch(self, body: dict) -> dict:
        with self.lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            self.batches[batch_id] = {"input": body["input_file_id"], "output": None}
        self.batch_created.set()
        return self.batch_object(batch_id)

    def batch_object(self, batch_id: str) -> dict:
        """The batch; once released, its requests are answered (each line as a chat call)."""
        with self.lock:
            batch = self.batches[batch_id]
            done = self.batch_release.is_set()
            if done and batch["output"] is None:
                lines = []
                for line in self.files[batch["input"]].decode().splitlines():
                    req = json.loads(line)
                    self.seen.append(req["body"])
                    self.answered[body_key(req["body"])] += 1
                    text = self.reply(req["body"], None)
                    lines.append(
                        json.dumps(
                            {
                                "id": f"r-{req['custom_id'][:8]}",
                                "custom_id": req["custom_id"],
                                "response": {
                                    "status_code": 200,
                                    "request_id": "x",
                                    "body": {
                                        "id": "c",
                                        "object": "chat.completion",
                                        "model": req["body"]["model"],
                                        "choices": [
                                            {
                                                "index": 0,
                                                "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": text},
                                            }
                                        ],
                                        "usage": {
                                            "prompt_tokens": 1,
                                            "completion_tokens": 1,
                                            "total_tokens": 2,
                                        },
                                    },
                                },
                                "error": None,
                            },
                            ensure_ascii=False,
                        )
                    )
                out_id = f"file-out-{batch_id}"
                self.files[out_id] = ("\n".join(lines) + "\n").encode()
                batch["output"] = out_id
        return {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": batch["input"],
            "completion_window": "24h",
            "created_at": 0,
            "status": "completed" if done else "in_progress",
            "output_file_id": batch["output"],
            "error_file_id": None,
        }

    def reply(self, body: dict, fault: str | None) -> str:
        messages = body["messages"]
        user = messages[-1]["content"]
        if "アシスタントA" in user:  # pairwise: the better hidden mark wins; 'first' always picks A
            marks = [float(m) for m in MARK.findall(user)]
            a, b = (marks[1], marks[3]) if len(marks) == 4 else (marks[0], marks[1])
            if fault == "first":
                return "Aのほうが良い。[[A]]"
            return "判定：" + ("[[A]]" if a > b else "[[B]]" if b > a else "[[C]]")
        if fault == "garbage":
            return "よく書けていますが、点数は七点くらいです。"
        if len(messages) >= 3 and messages[-2]["role"] == "assistant":  # the follow-up
            marks = MARK.findall(messages[-3]["content"])
            return f"評価：[[{marks[-1]}]]" if marks else "わかりません"
        marks = MARK.findall(messages[-1]["content"])
        if not marks and self.rate_any:
            return f"説明。評価：[[{any_rating(messages[-1]['content'])}]]"
        return f"説明。評価：[[{marks[-1]}]]" if marks else "評価できません"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class ModelServer:
    """An OpenAI-compatible server answering with a real (tiny) transformers model, as vLLM
    would serve it: /v1/chat/completions applies the tokenizer's chat template server-side,
    /v1/completions takes the prompt text as sent. `think` is prefixed to every completion, as a
    reasoning model writes its reasoning first."""

    def __init__(self, model_dir: str, served_name: str, think: str = ""):
        from jaflow.evaluate.mtbench.generation import load_model

        hf_args = {
            "pretrained": str(model_dir),
            "peft": None,
            "tokenizer": None,
            "use_fast": True,
            "trust_remote_code": False,
            "dtype": "float32",
        }
        self.model, self.tokenizer = load_model(hf_args)
        self.served_name = served_name
        self.think = think
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body.get("model") != server.served_name:
                    return self._send(
                        404, {"error": {"message": f"model {body.get('model')} not served"}}
                    )
                chat = self.path.endswith("/chat/completions")
                with server.lock:
                    server.requests.append(("chat" if chat else "completions", body))
                    text = server.complete(body, chat)
                choice = (
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                    if chat
                    else {"index": 0, "finish_reason": "stop", "text": text}
                )
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion" if chat else "text_completion",
                        "created": 0,
                        "model": server.served_name,
                        "choices": [choice],
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def complete(self, body: dict, chat: bool) -> str:
        from jaflow.evaluate.mtbench.generation import apply_chat_template, generate

        if chat:
            prompt = apply_chat_template(self.tokenizer, body["messages"])
        else:
            prompt = body["prompt"]
        out = generate(
            self.model,
            self.tokenizer,
            [prompt],
            max_new_tokens=body["max_tokens"],
            temperature=body.get("temperature", 1.0),
            top_p=body.get("top_p", 1.0),
            repetition_penalty=body.get("repetition_penalty", 1.0),
            seed=body.get("seed", 0),
            add_special_tokens=not chat,
        )[0]
        for stop in body.get("stop") or ():
            out = out.split(stop)[0]
        return self.think + out

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
