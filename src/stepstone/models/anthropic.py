"""Anthropic's Messages API through the official SDK (``pip install 'stepstone[anthropic]'``).

The SDK is imported when a provider is made, never by ``import stepstone``; its own retries are
off (``max_retries=0``) so that the step's RetryPolicy decides, honouring the retry-after the
SDK's error carries. The SDK reads ``ANTHROPIC_API_KEY`` itself when no ``api_key`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stepstone.core.llm import ModelReply, ModelRequest, ToolCall, Usage
from stepstone.errors import InvalidArgument, ModelError, ModelUnavailable
from stepstone.models.openai import error_for_status, retry_after_s

__all__ = ["AnthropicProvider"]


class AnthropicProvider:
    """Claude models via the ``anthropic`` SDK.

    >>> AnthropicProvider()                                   # ANTHROPIC_API_KEY from the env
    >>> AnthropicProvider(base_url="http://127.0.0.1:8080", api_key="test")
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        name: str = "anthropic",
        timeout_s: float = 120.0,
    ) -> None:
        try:
            import anthropic
        except ImportError:
            raise InvalidArgument(
                "the anthropic provider needs the SDK: pip install 'stepstone[anthropic]'"
            ) from None
        self.name = name
        self._sdk = anthropic
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self.name!r})"

    async def complete(self, request: ModelRequest) -> ModelReply:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [_message(m) for m in request.messages],
        }
        if request.system:
            kwargs["system"] = request.system
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.tools:
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        sdk = self._sdk
        try:
            message = await self._client.messages.create(**kwargs)
        except sdk.APIStatusError as exc:
            raise self._status_error(exc) from None
        except sdk.APITimeoutError:
            raise ModelUnavailable(self.name, "no answer in time") from None
        except sdk.APIConnectionError as exc:
            raise ModelUnavailable(self.name, f"cannot reach the API: {exc}") from None
        text = "".join(b.text for b in message.content if getattr(b, "type", "") == "text")
        calls = tuple(
            ToolCall(b.id, b.name, dict(b.input))
            for b in message.content
            if getattr(b, "type", "") == "tool_use"
        )
        u = message.usage
        return ModelReply(
            text=text,
            model=message.model,
            usage=Usage(
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                cache_read_tokens=getattr(u, "cache_read_input_tokens", None),
                cache_write_tokens=getattr(u, "cache_creation_input_tokens", None),
            ),
            tool_calls=calls,
            stop_reason=message.stop_reason,
        )

    def _status_error(self, exc: Any) -> ModelError:
        status = int(getattr(exc, "status_code", 0) or 0)
        body = getattr(exc, "body", None)
        detail = ""
        if isinstance(body, Mapping):
            error = body.get("error", body)
            detail = str(error.get("message", "")) if isinstance(error, Mapping) else str(error)
        response = getattr(exc, "response", None)
        after = retry_after_s(response.headers) if response is not None else None
        return error_for_status(self.name, status, detail[:300], after)


def _message(m: Mapping[str, Any]) -> dict[str, Any]:
    """A stepstone message as the Messages API takes it (tool calls and results as blocks)."""
    role, content = m.get("role"), m.get("content")
    if role == "tool":
        text = content if isinstance(content, str) else json.dumps(content)
        block = {"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": text}
        if m.get("is_error"):
            block["is_error"] = True
        return {"role": "user", "content": [block]}
    calls = m.get("tool_calls")
    if role == "assistant" and calls:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
        blocks += [
            {"type": "tool_use", "id": c["id"], "name": c["name"], "input": c.get("arguments", {})}
            for c in calls
        ]
        return {"role": "assistant", "content": blocks}
    return {"role": role, "content": content}
