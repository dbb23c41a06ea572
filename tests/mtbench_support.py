"""Test helper for MT-Bench: a fault-injecting chat-completions server.

The server speaks OpenAI's /v1/chat/completions on 127.0.0.1 only. It answers with the rating
hidden in the answer under judgment (`<<7>>` -> "評価：[[7]]") and injects faults by the order
requests arrive in. Every request body it answered is counted, to prove resume sends nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARK = re.compile(r"<<(\d+(?:\.\d+)?)>>")


def body_key(body: dict) -> str:
    return hashlib.sha256(json.dumps(body["messages"], ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class JudgeServer:
    """A chat-completions server; `faults` maps the 1-based arrival number to a fault name:
    '429', '500', 'timeout' (sleep past the client's timeout), 'garbage' (unparsable text)."""

    def __init__(self, faults: dict[int, str] | None = None, hang_after: int | None = None,
                 sleep: float = 2.0, api_key: str = "sk-test"):
        self.faults = dict(faults or {})
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

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    with server.lock:
                        server.bad_auth += 1
                    return self._send(401, {"error": {"message": "bad key", "type": "auth"}})
                with server.lock:
                    server.arrivals += 1
                    n = server.arrivals
                    server.seen.append(body)
                    hang = server.hang_after is not None and server.answered.total() >= server.hang_after
                if hang:
                    server.hung.set()
                    server.release.wait(30)
                    return
                fault = server.faults.get(n)
                if fault == "429":
                    return self._send(429, {"error": {"message": "slow down", "type": "rate_limit"}})
                if fault == "500":
                    return self._send(500, {"error": {"message": "boom", "type": "server"}})
                if fault == "timeout":
                    time.sleep(server.sleep)
                    return self._send(500, {"error": {"message": "too late", "type": "server"}})
                text = server.reply(body, fault)
                with server.lock:
                    server.answered[body_key(body)] += 1
                self._send(200, {
                    "id": f"cmpl-{n}", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

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
