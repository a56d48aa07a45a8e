"""Journal records: what each kind of journal entry's stored ``output_json`` means, typed.

Steps and journaled values store their value as plain JSON (see :mod:`stepstone.core.codec`);
every other entry stores one of the small records below. Each has one ``encode`` (the stored
text, byte for byte what stepstone has always written, so existing databases read unchanged) and
one ``decode`` (tolerant: a missing field reads as its default).

======================  =============================================  ===========================
record                  stored as                                      written for
======================  =============================================  ===========================
:class:`Until`          ``{"until":"<iso>"}``                          a sleep; a retry back-off
:class:`SignalWait`     ``{"until": "<iso>"}`` (or ``null``)           a signal wait still waiting
:class:`SignalOutcome`  ``{"payload":<json>}`` / ``{"timeout":true}``  a signal wait that ended
:class:`ChildRef`       ``{"run_id":"<id>"}``                          a child started, or waited
:class:`ChildOutcome`   ``{"run_id":…,"state":…,"output":…,"error":…}``  a child waited to its end
======================  =============================================  ===========================

:func:`waits_event` / :func:`waits_from_event` are the data of a run's ``waiting``/``sleeping``
event: what it waits for. :func:`failure_event` / :func:`failures_from_events` are the data of
the events that keep the errors a later write would erase: a step's failed attempt
(``attempt_failed``: the next attempt's record replaces it; a retried run's failed step, which
``retry`` deletes) and a retried run's failure (``failed``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from stepstone.core.frozen import frozen
from stepstone.core.model import ErrorInfo, EventRecord, StepRecord, Wait

__all__ = [
    "ChildOutcome",
    "ChildRef",
    "FailureRecord",
    "SignalOutcome",
    "SignalWait",
    "Until",
    "failure_event",
    "failures_from_events",
    "waits_event",
    "waits_from_event",
]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _fields(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _at(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@frozen
class Until:
    """A timer's due time: a sleep's end, or when a retrying step's next attempt is due."""

    at: datetime | None

    def encode(self) -> str:
        return _compact({"until": _iso(self.at)})

    @classmethod
    def decode(cls, text: str | None) -> Until:
        return cls(_at(_fields(text).get("until")))


@frozen
class SignalWait:
    """A signal wait that found no signal; ``until`` is when it times out (None: never).

    Stores write it with JSON's default separators (a space after ``:``), as they always have.
    """

    until: datetime | None

    def encode(self) -> str:
        return json.dumps({"until": _iso(self.until)})

    @classmethod
    def decode(cls, text: str | None) -> SignalWait:
        return cls(Until.decode(text).at)


@frozen
class SignalOutcome:
    """How a signal wait ended: the signal's payload (JSON text), or it timed out."""

    payload_json: str | None = None
    timed_out: bool = False

    def encode(self) -> str:
        if self.timed_out:
            return '{"timeout":true}'
        return f'{{"payload":{self.payload_json or "null"}}}'

    @classmethod
    def decode(cls, text: str | None) -> SignalOutcome:
        fields = _fields(text)
        if fields.get("timeout"):
            return cls(timed_out=True)
        return cls(_compact(fields.get("payload")))


@frozen
class ChildRef:
    """The child run a start or a wait refers to (every child record names it)."""

    run_id: str

    def encode(self) -> str:
        return _compact({"run_id": self.run_id})

    @classmethod
    def decode(cls, text: str | None) -> ChildRef:
        return cls(str(_fields(text).get("run_id")))


@frozen
class ChildOutcome:
    """How a waited-for child run ended: its state, and its output or error (type and message)."""

    run_id: str
    state: str
    output_json: str | None = None
    error: ErrorInfo | None = None

    def encode(self) -> str:
        outcome: dict[str, Any] = {"run_id": self.run_id, "state": self.state}
        if self.output_json is not None:
            outcome["output"] = json.loads(self.output_json)
        if self.error is not None:
            outcome["error"] = {"type": self.error.type, "message": self.error.message}
        return _compact(outcome)

    @classmethod
    def decode(cls, text: str | None) -> ChildOutcome:
        fields = _fields(text)
        error = fields.get("error")
        return cls(
            fields.get("run_id", "?"),
            fields.get("state", "failed"),
            _compact(fields["output"]) if "output" in fields else None,
            None
            if error is None
            else ErrorInfo(error.get("type", "Error"), error.get("message", "")),
        )


def waits_event(waits: tuple[Wait, ...]) -> dict[str, Any]:
    """The ``waiting``/``sleeping`` event's data: what the run waits for (not its deadline)."""
    return {
        "waits": [
            {"kind": w.kind, "name": w.name, "until": _iso(w.until)} for w in waits if w.seq >= 0
        ]
    }


def waits_from_event(data: dict[str, Any]) -> tuple[Wait, ...]:
    """The waits a ``waiting``/``sleeping`` event names (their seq is not part of it: 0)."""
    return tuple(Wait(w["kind"], 0, w.get("name"), _at(w.get("until"))) for w in data["waits"])


@frozen
class FailureRecord:
    """An error the run's current rows no longer show: a step's failed attempt (``seq``,
    ``step``, ``attempt`` set) or, before a ``retry``, the run's own failure (they are None)."""

    at: datetime
    error: ErrorInfo
    seq: int | None = None
    step: str | None = None
    attempt: int | None = None


def failure_event(error: ErrorInfo, step: StepRecord | None = None) -> dict[str, Any]:
    """The data of an ``attempt_failed`` event (``step``: the attempt's record) or of a retried
    run's ``failed`` event (no step)."""
    data: dict[str, Any] = {}
    if step is not None:
        data = {"seq": step.seq, "step": step.name, "attempt": step.attempts}
    data["error"] = {"type": error.type, "message": error.message}
    if error.traceback:
        data["error"]["traceback"] = error.traceback
    return data


def failures_from_events(events: Iterable[EventRecord]) -> tuple[FailureRecord, ...]:
    """The failures the run's system events keep, in the order they happened."""
    found = []
    for event in events:
        if event.source != "system" or event.kind not in ("attempt_failed", "failed"):
            continue
        data = _fields(event.data_json)
        error = data.get("error") or {}
        info = ErrorInfo(
            error.get("type", "Error"), error.get("message", ""), error.get("traceback")
        )
        found.append(
            FailureRecord(
                event.created_at, info, data.get("seq"), data.get("step"), data.get("attempt")
            )
        )
    return tuple(sorted(found, key=lambda f: f.at))
