"""Durable memory: ``ctx.memory(scope, key)``, a JSON document shared across runs.

A document lives at ``(scope, owner, key)``: ``scope`` is ``"session"``, ``"user"`` or
``"global"``; ``owner`` names the session or the user (a global document has none). Each read is
a step, so a replay sees what the first execution saw. Each write is a step whose write lands in
the transaction that records it, as a compare-and-set on the version read: a write from a run
that crashed before its step was recorded never lands, and one that lands is recorded with it.
:meth:`Memory.update` reads, applies a function and writes in one step, which a conflicting
write (another run changed the document in between) runs again on the new version.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from stepstone.core import codec
from stepstone.core.definitions import StepOptions
from stepstone.core.frozen import frozen
from stepstone.core.retry import NO_RETRY
from stepstone.errors import InvalidArgument, MemoryConflict

if TYPE_CHECKING:
    from stepstone.core.engine import Execution

__all__ = [
    "MEMORY_SCOPES",
    "Memory",
    "MemoryDoc",
    "MemoryScope",
    "MemoryWrite",
    "Written",
    "check_address",
    "conflict_again",
    "conflict_pause",
]

T = TypeVar("T")
MemoryScope = Literal["session", "user", "global"]
MEMORY_SCOPES: tuple[MemoryScope, ...] = ("session", "user", "global")
KEY_MAX = 200
"""The longest scope owner or key accepted."""

CONFLICT_RETRIES = 50
"""How many times :meth:`Memory.update` runs again on conflicting writes before it fails."""


@frozen
class MemoryDoc:
    """A stored memory document: its JSON text, its version (writes so far) and the step that
    last wrote it (``run_id``/``seq``: None for a write from outside a run)."""

    scope: str
    owner: str
    key: str
    value_json: str
    version: int
    run_id: str | None
    seq: int | None
    updated_at: datetime

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)


@frozen
class MemoryWrite:
    """A write to make with a step's record: ``expected`` is the version it was computed from
    (0: the document was absent); ``again``: a conflict runs the step again (it reads the
    document itself)."""

    scope: str
    owner: str
    key: str
    value_json: str
    expected: int
    again: bool = False


@frozen
class Written:
    """What a step body returns when it writes memory: the value to record, and the write
    (made in the same transaction as the step's record)."""

    value: Any
    write: MemoryWrite


def check_address(scope: str, key: str, owner: str | None) -> tuple[str, str, str]:
    """``(scope, owner, key)`` checked: a known scope, an owner exactly when the scope needs
    one, and a non-empty key."""
    if scope not in MEMORY_SCOPES:
        raise InvalidArgument(f"memory scope {scope!r} is not one of {', '.join(MEMORY_SCOPES)}")
    if scope == "global":
        if owner:
            raise InvalidArgument(f"memory scope 'global' takes no owner (got {owner!r})")
        owner = ""
    elif not owner or not isinstance(owner, str):
        raise InvalidArgument(
            f"memory scope {scope!r} needs an owner (owner=, or --owner: the {scope} id the "
            "document belongs to)"
        )
    if not isinstance(key, str) or not key:
        raise InvalidArgument("a memory key must be a non-empty string")
    for what, text in (("owner", owner), ("key", key)):
        if len(text) > KEY_MAX:
            raise InvalidArgument(f"memory {what} is {len(text)} characters; at most {KEY_MAX}")
    return scope, owner, key


class Memory:
    """One memory document, seen from a run (``ctx.memory(scope, key, owner=)``).

    >>> prefs = ctx.memory("user", "prefs", owner=user_id)
    >>> theme = (await prefs.get(default={})).get("theme")
    >>> await prefs.update(lambda doc: {**(doc or {}), "visits": (doc or {}).get("visits", 0) + 1})

    Every method is a checkpointed step (in a plain ``def`` workflow it blocks and returns the
    value). :attr:`version` is the version this run last read or wrote.
    """

    __slots__ = ("_exe", "_wrap", "key", "owner", "scope", "version")

    def __init__(
        self,
        exe: Execution,
        wrap: Callable[[Coroutine[Any, Any, Any]], Any],
        scope: str,
        key: str,
        owner: str | None,
    ) -> None:
        self.scope, self.owner, self.key = check_address(scope, key, owner)
        self._exe, self._wrap = exe, wrap
        self.version: int | None = None

    def __repr__(self) -> str:
        where = f"{self.scope}/{self.owner}/{self.key}" if self.owner else f"global/{self.key}"
        return f"<Memory {where} version={self.version}>"

    def _where(self) -> str:
        return f"{self.scope}/{self.key}"

    async def _load(self) -> MemoryDoc | None:  # inside a step body
        exe = self._exe
        return await exe.store_call(exe.rt.store.get_memory(self.scope, self.owner, self.key))

    def _call(self, verb: str, body: Callable[[], Awaitable[Any]]) -> Awaitable[dict[str, Any]]:
        """Take the next journal position for ``body`` (run once: retries are the caller's)."""
        from stepstone.core.steps import MODEL_CALL  # steps imports this module

        options = StepOptions(retry=NO_RETRY)
        setattr(body, MODEL_CALL, True)  # replay --from-seq: the recorded access is the cassette
        return self._exe.steps.lazy(f"memory.{verb} {self._where()}", body, (), {}, options, dict)

    async def _value(self, call: Awaitable[dict[str, Any]], give: str = "value") -> Any:
        """The recorded ``{"value", "version"}`` of a read or write: its ``give`` field,
        remembering the version."""
        got = await call
        self.version = got["version"]
        return got[give]

    def get(self, default: Any = None) -> Any:
        """The document's value (``default`` when it does not exist), as JSON values; recorded,
        so a replay returns what this run read. Remembers the version for :meth:`set`."""
        fallback = codec.encode(default, f"memory {self._where()} default")

        async def read() -> dict[str, Any]:
            doc = await self._load()
            if doc is None:
                return {"value": json.loads(fallback), "version": 0}
            return {"value": doc.value, "version": doc.version}

        return self._wrap(self._value(self._call("get", read)))

    def set(self, value: Any) -> Any:
        """Write ``value`` (any JSON-encodable value) and return the new version.

        After :meth:`get` (or an earlier write) in this run, the write is compare-and-set on
        that version: if another run wrote in between, :class:`~stepstone.errors.MemoryConflict`
        is raised (and recorded: a replay raises it again); use :meth:`update` to retry on the
        new value instead. Without a read first, the write replaces whatever is there."""
        value_json = codec.encode(value, f"memory {self._where()}")
        read = self.version

        async def put() -> Written:
            base, again = read, False
            if base is None:  # nothing read: write over the current version, whatever it is
                doc = await self._load()
                base, again = (0 if doc is None else doc.version), True
            write = MemoryWrite(self.scope, self.owner, self.key, value_json, base, again)
            return Written({"value": None, "version": base + 1}, write)

        return self._wrap(self._value(self._call("set", put), "version"))

    def update(self, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Read the document, compute ``fn(value)`` (``default`` when absent; ``fn`` may be
        async) and write the result, in one step; returns the written value. A write from
        another run in between makes the step run again on the newer value, so concurrent
        updates from many runs all land (a counter incremented by 100 runs reads 100)."""
        where = f"memory {self._where()}"
        fallback = codec.encode(default, f"{where} default")

        async def change() -> Written:
            doc = await self._load()
            current = json.loads(fallback) if doc is None else doc.value
            version = 0 if doc is None else doc.version
            new = fn(current)
            if inspect.isawaitable(new):
                new = await new
            value_json = codec.encode(new, f"{where} update")
            write = MemoryWrite(self.scope, self.owner, self.key, value_json, version, again=True)
            return Written({"value": json.loads(value_json), "version": version + 1}, write)

        return self._wrap(self._value(self._call("update", change)))


def conflict_again(exc: BaseException, write: MemoryWrite | None, conflicts: int) -> bool:
    """Whether a step whose write conflicted runs again (an update, not past the limit)."""
    return (
        isinstance(exc, MemoryConflict)
        and write is not None
        and write.again
        and conflicts < CONFLICT_RETRIES
    )


def conflict_pause(conflicts: int) -> float:
    """Seconds to wait before running a conflicted update again: random, up to 1 ms doubled
    per conflict, capped at 50 ms."""
    import random

    return random.uniform(0.0, min(0.001 * 2 ** min(conflicts, 10), 0.05))
