"""The offline ``scripted`` provider: replies from a YAML or JSON file, for examples and tests.

A script is a list of replies (or ``{"replies": [...]}``)::

    replies:
      - match: "Summarise"          # the last user message contains it (or re: a regex)
        text: "A short summary."
      - json: {title: "Q3", score: 0.9}     # the reply's text is this value as JSON
        usage: {input_tokens: 120, output_tokens: 30}
      - tool_calls: [{name: search, arguments: {q: "stepstone"}}]   # id: optional (call_N)
      - error: {kind: rate_limited, retry_after_s: 0.1}   # once: the next call goes on
      - text: "served in order"     # a reply without match: the next unused one, in order

A call takes the first unused reply whose ``match`` fits its last user message; failing that,
the next unused reply without ``match``, in file order. For a ``ctx.agent`` loop (whose last
user message stays its prompt while tools answer) script one reply per turn, in order:
``tool_calls`` for the turns that use tools, then the final answer. A reply with
``repeat: true`` is never used up. No reply left: :class:`~stepstone.errors.ModelInvalidRequest`
naming the prompt. Usage not given is estimated (a token per 4 characters), so costs and ledgers
are non-zero offline.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepstone.core.llm import ModelReply, ModelRequest, ToolCall, Usage
from stepstone.errors import (
    InvalidArgument,
    ModelAuthError,
    ModelError,
    ModelInvalidRequest,
    ModelOverloaded,
    ModelRateLimited,
    ModelUnavailable,
)

__all__ = ["ScriptedProvider", "ScriptedReply"]

_ERRORS: dict[str, type[ModelError]] = {
    "rate_limited": ModelRateLimited,
    "overloaded": ModelOverloaded,
    "unavailable": ModelUnavailable,
    "auth": ModelAuthError,
    "invalid_request": ModelInvalidRequest,
}


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One scripted reply (see the module docstring for the file format)."""

    text: str = ""
    match: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    model: str | None = None
    error: Mapping[str, Any] | None = None
    repeat: bool = False

    def fits(self, prompt: str) -> bool:
        if self.match is None:
            return False
        if self.match.startswith("re:"):
            return re.search(self.match[3:], prompt) is not None
        return self.match in prompt


class ScriptedProvider:
    """Replies from a script instead of a model (no network, no key).

    >>> ScriptedProvider.from_file("examples/replies.yaml")
    >>> ScriptedProvider([ScriptedReply(text="hello")])
    """

    def __init__(
        self, replies: Sequence[ScriptedReply] = (), *, name: str = "scripted", source: str = ""
    ) -> None:
        self.name = name
        self.replies = list(replies)
        self.source = source or "the script"
        self._used: set[int] = set()
        self._lock = threading.Lock()
        self.calls = 0
        self.requests: list[ModelRequest] = []

    @classmethod
    def from_file(cls, path: str | Path, *, name: str = "scripted") -> ScriptedProvider:
        """Load a YAML (``.yaml``/``.yml``) or JSON script; a bad entry is an InvalidArgument
        naming the file and the entry."""
        p = Path(path).expanduser()
        try:
            text = p.read_text()
        except OSError as exc:
            raise InvalidArgument(f"scripted replies {p}: cannot read: {exc.strerror}") from None
        try:
            if p.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:
            raise InvalidArgument(f"scripted replies {p}: does not parse: {exc}") from None
        return cls(parse_script(data, str(p)), name=name, source=str(p))

    async def complete(self, request: ModelRequest) -> ModelReply:
        prompt = _last_user_text(request.messages)
        with self._lock:
            self.calls += 1
            self.requests.append(request)
            index = self._pick(prompt)
        if index is None:
            raise ModelInvalidRequest(
                self.name, f"no scripted reply left in {self.source} for prompt {prompt[:200]!r}"
            )
        reply = self.replies[index]
        if reply.error is not None:
            kind = str(reply.error.get("kind", "overloaded"))
            after = reply.error.get("retry_after_s")
            message = str(reply.error.get("message", f"scripted {kind}"))
            return _raise(_ERRORS[kind](self.name, message, after))
        usage = reply.usage or Usage(_tokens(request), max(1, len(reply.text) // 4))
        return ModelReply(
            text=reply.text,
            model=reply.model or request.model or "scripted",
            usage=usage,
            tool_calls=reply.tool_calls,
            stop_reason="tool_use" if reply.tool_calls else "end_turn",
        )

    def _pick(self, prompt: str) -> int | None:
        for i, reply in enumerate(self.replies):
            if i not in self._used and reply.fits(prompt):
                return self._take(i)
        for i, reply in enumerate(self.replies):
            if i not in self._used and reply.match is None:
                return self._take(i)
        return None

    def _take(self, i: int) -> int:
        if not self.replies[i].repeat:
            self._used.add(i)
        return i


def _raise(exc: ModelError) -> ModelReply:
    raise exc


def parse_script(data: Any, where: str) -> list[ScriptedReply]:
    """Script entries as :class:`ScriptedReply` values; InvalidArgument naming a bad one."""
    if isinstance(data, Mapping):
        data = data.get("replies")
    if not isinstance(data, list):
        raise InvalidArgument(f"scripted replies {where}: expected a list of replies")
    replies = []
    for i, entry in enumerate(data):
        at = f"scripted replies {where}: replies[{i}]"
        if isinstance(entry, str):
            replies.append(ScriptedReply(text=entry))
            continue
        if not isinstance(entry, Mapping):
            raise InvalidArgument(f"{at}: expected a mapping or a string, got {entry!r}")
        unknown = set(entry) - {"text", "json", "match", "tool_calls", "usage", "model", "error"}
        unknown -= {"repeat"}
        if unknown:
            raise InvalidArgument(f"{at}: unknown keys {sorted(unknown)}")
        text = entry.get("text", "")
        if "json" in entry:
            text = json.dumps(entry["json"])
        error = entry.get("error")
        if error is not None and (
            not isinstance(error, Mapping) or error.get("kind", "overloaded") not in _ERRORS
        ):
            raise InvalidArgument(f"{at}.error: kind must be one of {', '.join(_ERRORS)}")
        replies.append(
            ScriptedReply(
                text=str(text),
                match=entry.get("match"),
                tool_calls=tuple(
                    _tool_call(c, f"{at}.tool_calls[{j}]", j)
                    for j, c in enumerate(entry.get("tool_calls") or ())
                ),
                usage=_usage(entry.get("usage"), f"{at}.usage"),
                model=entry.get("model"),
                error=error,
                repeat=bool(entry.get("repeat", False)),
            )
        )
    return replies


def _tool_call(data: Any, at: str, index: int) -> ToolCall:
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise InvalidArgument(f"{at}: needs a name")
    args = data.get("arguments") or {}
    if not isinstance(args, Mapping):
        raise InvalidArgument(f"{at}.arguments: expected a mapping")
    return ToolCall(str(data.get("id", f"call_{index}")), data["name"], dict(args))


def _usage(data: Any, at: str) -> Usage | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"{at}: expected a mapping of token counts")
    try:
        return Usage(
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            None if data.get("cache_read_tokens") is None else int(data["cache_read_tokens"]),
            None if data.get("cache_write_tokens") is None else int(data["cache_write_tokens"]),
        )
    except (TypeError, ValueError):
        raise InvalidArgument(f"{at}: token counts must be integers") from None


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _tokens(request: ModelRequest) -> int:
    chars = len(request.system or "") + sum(
        len(str(m.get("content", ""))) for m in request.messages
    )
    return max(1, chars // 4)
