"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat and Anthropic messages protocols.

Tests queue answers (status, headers, JSON body) or set a default; every request is kept
(path, headers, JSON body) so a test can count the calls that reached the "provider".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def chat_reply(
    text: str | None = "hello",
    *,
    model: str = "m1",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    cached: int | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An OpenAI chat completion."""
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage,
    }


def messages_reply(text: str = "hello", *, model: str = "claude-x") -> dict[str, Any]:
    """An Anthropic Messages API reply."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "text", "text": text},
            {"type": "tool_use", "id": "tu_1", "name": "search", "input": {"q": "x"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "output_tokens": 5,
            "cache_read_input_tokens": 3,
            "cache_creation_input_tokens": 2,
        },
    }


class LLMServer:
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.default: Answer | None = None
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # e.g. GET /v1/models: doctor's cheap call
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with server.lock:
                    server.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    server.arrived.notify_all()
                    answer = server.answers.pop(0) if server.answers else server.default
                if answer is None:
                    answer = Answer(500, {"error": {"message": "nothing queued"}})
                data = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def queue(self, *answers: Answer) -> None:
        with self.lock:
            self.answers.extend(answers)

    @property
    def calls(self) -> int:
        with self.lock:
            return len(self.requests)


@contextmanager
def llm_server() -> Iterator[LLMServer]:
    server = LLMServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
