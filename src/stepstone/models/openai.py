"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp, gateways) over HTTP.

The stdlib's HTTP client on a thread: no SDK needed. ``POST {base_url}/chat/completions`` with
the messages, tools and (when ``json_schema=True``: the server constrains its output) a
``response_format`` for structured output. Status codes become the
:class:`~stepstone.errors.ModelError` kinds: 429 rate limited (with ``Retry-After`` /
``retry-after-ms``), 5xx overloaded, 401/403 auth, other 4xx invalid request; an unreachable
server or a timeout is unavailable. The API key goes in the ``Authorization`` header only: never
in an error, a log line or the store.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from stepstone.core.llm import ModelReply, ModelRequest, ToolCall, Usage
from stepstone.errors import (
    ModelAuthError,
    ModelError,
    ModelInvalidRequest,
    ModelOverloaded,
    ModelRateLimited,
    ModelUnavailable,
)

__all__ = ["OpenAICompatibleProvider", "error_for_status", "retry_after_s"]


class OpenAICompatibleProvider:
    """An OpenAI-compatible endpoint.

    >>> OpenAICompatibleProvider("http://127.0.0.1:11434/v1")             # Ollama, no key
    >>> OpenAICompatibleProvider("https://api.openai.com/v1", api_key=key, json_schema=True)
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        name: str = "openai",
        timeout_s: float = 120.0,
        json_schema: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.json_schema = json_schema
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider({self.base_url!r}, name={self.name!r})"

    async def complete(self, request: ModelRequest) -> ModelReply:
        body = json.dumps(self.payload(request)).encode()
        data = await asyncio.to_thread(self._post, body)
        return self.reply(data, request)

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend(_message(m) for m in request.messages)
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.tools:
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.response_schema is not None and self.json_schema and not request.tools:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.response_schema},
            }
        return payload

    def _post(self, body: bytes) -> Any:
        headers = {"Content-Type": "application/json", **self.headers}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = f"{self.base_url}/chat/completions"
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc.read())
            after = retry_after_s(exc.headers)
            raise error_for_status(self.name, exc.code, detail, after) from None
        except TimeoutError:
            raise ModelUnavailable(
                self.name, f"no answer from {url} in {self.timeout_s}s"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelUnavailable(self.name, f"cannot reach {url}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ModelOverloaded(self.name, f"{url} answered with no JSON") from None

    def reply(self, data: Any, request: ModelRequest) -> ModelReply:
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise ModelOverloaded(self.name, "the reply has no choices") from None
        calls = []
        for i, call in enumerate(message.get("tool_calls") or ()):
            fn = call.get("function") or {}
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except ValueError:
                args = {"_raw": fn.get("arguments")}
            calls.append(ToolCall(str(call.get("id", f"call_{i}")), str(fn.get("name")), args))
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens")
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        return ModelReply(
            text=message.get("content") or "",
            model=str(data.get("model") or request.model),
            usage=Usage(
                input_tokens=prompt_tokens - int(cached or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
                cache_read_tokens=None if cached is None else int(cached),
            ),
            tool_calls=tuple(calls),
            stop_reason=choice.get("finish_reason"),
        )


def _message(m: Mapping[str, Any]) -> dict[str, Any]:
    """A stepstone message as the chat API takes it (tool calls as function calls)."""
    out = dict(m)
    out.pop("is_error", None)  # an error tool result says so in its content here
    calls = out.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))},
            }
            if "function" not in c
            else c
            for c in calls
        ]
    if not isinstance(out.get("content"), str) and out.get("content") is not None:
        out["content"] = json.dumps(out["content"])
    return out


def _detail(body: bytes) -> str:
    try:
        data = json.loads(body)
        error = data.get("error", data)
        message = error.get("message") if isinstance(error, Mapping) else error
        return str(message)[:300]
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace")


def error_for_status(provider: str, status: int, detail: str, after: float | None) -> ModelError:
    """The ModelError kind of an HTTP status (429 rate limit, 5xx/529 overload, 401/403 auth)."""
    problem = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status == 429:
        return ModelRateLimited(provider, problem, after)
    if status >= 500:
        return ModelOverloaded(provider, problem, after)
    if status in (401, 403):
        return ModelAuthError(provider, problem)
    if status == 408:
        return ModelUnavailable(provider, problem, after)
    return ModelInvalidRequest(provider, problem)


def retry_after_s(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds a provider asks to wait: ``retry-after-ms``, or ``Retry-After`` (seconds or an
    HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
