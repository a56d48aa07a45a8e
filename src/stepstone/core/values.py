"""Journaled values: ``ctx.now()``/``random()``/``uuid()``, the run's ``ctx.state`` and events.

A journaled value is recorded the first time it is asked for and read back on replay, so the
workflow sees the same value both times; it is written in the background (the call does not
await). ``ctx.state`` changes are saved with the run's next write; events are emitted once (a
replay does not emit them again).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stepstone.core import codec
from stepstone.core.model import StepKind, StepRecord, StepStatus
from stepstone.core.port import NewEvent
from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    import uuid

    from stepstone.core.engine import Execution

__all__ = ["StateView", "Values"]


class Values:
    """The journaled values, state and events of one execution."""

    __slots__ = ("_emitted", "_exe", "_state_dirty", "state")

    def __init__(self, exe: Execution, state_json: str | None) -> None:
        self._exe = exe
        self.state: dict[str, Any] = json.loads(state_json) if state_json else {}
        self._state_dirty = False
        self._emitted = 0

    # --- now, random, uuid -------------------------------------------------------------------

    def journaled(
        self, kind: StepKind, make: Callable[[], Any], tp: Any, name: str | None = None
    ) -> Any:
        """``ctx.now()``/``random()``/``uuid()`` (and ``ctx.prompt``/``ctx.artifact``, named):
        replay the recorded value or record a new one."""
        exe = self._exe
        exe.raise_if_unwinding()
        seq = exe.journal.allocate()
        name = kind.value if name is None else name
        record = exe.journal.lookup(seq, kind, name)
        if record is not None:
            return codec.decode(record.output_json, tp, f"ctx.{kind.value}() #{seq}")
        exe.frontier(seq)
        value = make()
        exe.record_later(
            StepRecord(
                seq,
                name,
                kind,
                StepStatus.COMPLETED,
                output_json=codec.encode(value, name),
                started_at=exe.now(),
            )
        )
        return value

    def current_time(self) -> datetime:
        return self.journaled(StepKind.NOW, self._exe.now, datetime)  # type: ignore[no-any-return]

    def new_random(self) -> float:
        import random  # on use: 0.7% of a `stepstone run -f` process to import

        value: float = self.journaled(StepKind.RANDOM, random.random, float)
        return value

    def new_uuid(self) -> uuid.UUID:
        import uuid  # imported at the first ctx.uuid(): ~2 ms a CLI process need not pay

        return self.journaled(StepKind.UUID, uuid.uuid4, uuid.UUID)  # type: ignore[no-any-return]

    # --- state -------------------------------------------------------------------------------

    def set_state(self, key: str, value: Any) -> None:
        self._exe.raise_if_unwinding()
        codec.encode(value, f"ctx.state[{key!r}]")  # fail here, at the assignment, not later
        self.state[key] = value
        self._state_dirty = True

    def del_state(self, key: str) -> None:
        del self.state[key]
        self._state_dirty = True

    def state_changed(self) -> None:
        """Mark the state as changed (a write that carried it was rolled back)."""
        self._state_dirty = True

    def take_state(self) -> str | None:
        """The state as stored, if it changed since it was last taken (else None)."""
        if not self._state_dirty:
            return None
        self._state_dirty = False
        return codec.encode(self.state, "ctx.state")

    # --- events ------------------------------------------------------------------------------

    def emit(self, kind: str, data: Any) -> None:
        exe = self._exe
        exe.raise_if_unwinding()
        if not isinstance(kind, str) or not kind:
            raise InvalidArgument("ctx.emit(kind, data): kind must be a non-empty string")
        data_json = codec.encode(data, f"ctx.emit({kind!r})")
        idx = self._emitted
        self._emitted += 1
        if exe.journal.replaying or exe.check_only:
            return  # emitted the first time this code ran
        event = NewEvent(kind, data_json, idx)
        exe.schedule(exe.store_call(exe.rt.store.append_events(exe.claim, [event], now=exe.now())))


class StateView(MutableMapping[str, Any]):
    """``ctx.state``: a dict whose changes are saved with the next checkpoint, visible outside."""

    __slots__ = ("_values",)

    def __init__(self, values: Values) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values.state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise InvalidArgument(f"ctx.state keys must be strings, got {type(key).__name__}")
        self._values.set_state(key, value)

    def __delitem__(self, key: str) -> None:
        self._values.del_state(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values.state)

    def __len__(self) -> int:
        return len(self._values.state)

    def __repr__(self) -> str:
        return f"ctx.state({self._values.state!r})"
