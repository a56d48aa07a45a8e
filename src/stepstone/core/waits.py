"""Waits: durable timers and signal waits, which suspend the run instead of holding a worker.

A wait records what it waits for and raises :class:`~stepstone.errors.Suspend` (through
:meth:`Execution.suspend <stepstone.core.engine.Execution.suspend>`); a replay after the timer is
due, or after the signal came, returns at once. A wait that is already satisfied never suspends.
A signal whose payload fails the wait's type (its ``schema``, or the workflow's ``signals=``
type) is rejected when the wait meets it (see :func:`payload_problem`) and the wait goes on.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stepstone.core import codec
from stepstone.core.jsonschema import check_schema, first_problem, schema_for
from stepstone.core.model import StepKind, StepRecord, StepStatus, Wait, WaitInfo
from stepstone.core.records import SignalOutcome, SignalWait, Until
from stepstone.errors import DecodeError, InvalidArgument, WaitTimeout

if TYPE_CHECKING:
    from stepstone.core.engine import Execution

__all__ = ["JSONSchemaType", "Waits", "payload_problem"]


class JSONSchemaType:
    """A wait's ``schema`` given as a JSON Schema document (a mapping) rather than a type: the
    payload is checked against it and returned as plain JSON."""

    __slots__ = ("schema",)

    def __init__(self, schema: Mapping[str, Any]) -> None:
        check_schema(dict(schema))
        self.schema = dict(schema)


def payload_problem(raw: Any, tp: Any, name: str) -> str | None:
    """The first way the signal payload ``raw`` (plain JSON) fails type ``tp`` (its JSON Schema,
    then decoding it), or None when a wait for signal ``name`` declaring ``tp`` accepts it."""
    if tp is codec._NO_HINT:
        return None
    if isinstance(tp, JSONSchemaType):
        return first_problem(raw, tp.schema)
    problem = first_problem(raw, schema_for(tp))
    if problem:
        return problem
    try:
        codec.decode_value(raw, tp, f"signal {name!r}")
    except DecodeError as exc:
        return f"{exc.path}: {exc.problem}"
    return None


class Waits:
    """The timers and signal waits of one execution."""

    __slots__ = ("_exe",)

    def __init__(self, exe: Execution) -> None:
        self._exe = exe

    def call_sleep(self, until: datetime) -> Coroutine[Any, Any, None]:
        """A ``ctx.sleep``: its journal position is taken now; the coroutine waits."""
        exe = self._exe
        exe.raise_if_unwinding()
        return self.sleep_until(exe.journal.allocate(), until)

    def call_signal(
        self, name: str, timeout_s: float | None, schema: Any, info: WaitInfo | None = None
    ) -> Coroutine[Any, Any, Any]:
        """A ``ctx.wait_for_signal``: arguments checked and journal position taken now; the
        coroutine waits and returns the payload, decoded by ``schema`` (or the workflow's
        ``signals=`` type; a mapping is a JSON Schema document: plain JSON is returned)."""
        exe = self._exe
        exe.raise_if_unwinding()
        if not isinstance(name, str) or not name:
            raise InvalidArgument("wait_for_signal needs a non-empty signal name")
        if timeout_s is not None and timeout_s < 0:
            raise InvalidArgument(f"timeout_s must be >= 0, got {timeout_s}")
        if isinstance(schema, Mapping):
            schema = JSONSchemaType(schema)
        tp = schema if schema is not None else exe.wf.signals.get(name, codec._NO_HINT)
        return self.wait_signal(exe.journal.allocate(), name, timeout_s, tp, info)

    async def sleep_until(self, seq: int, until: datetime) -> None:
        exe = self._exe
        exe.raise_if_unwinding()
        record = exe.journal.lookup(seq, StepKind.SLEEP, "sleep")
        if record is None:
            exe.frontier(seq)
            done = until <= exe.now()
            await exe.persist(
                StepRecord(
                    seq,
                    "sleep",
                    StepKind.SLEEP,
                    StepStatus.COMPLETED if done else StepStatus.WAITING,
                    output_json=Until(until).encode(),
                    started_at=exe.now(),
                )
            )
            if done:
                return
        else:
            recorded = Until.decode(record.output_json).at
            until = recorded if recorded is not None else until
            if record.status is StepStatus.COMPLETED:
                return
            if until <= exe.now():
                if not exe.check_only:  # mark it over, so describe() shows it done
                    await exe.persist(
                        replace(record, status=StepStatus.COMPLETED, finished_at=exe.now())
                    )
                return
            exe.frontier(seq)
        raise exe.suspend(Wait("timer", seq, until=until))

    async def wait_signal(
        self, seq: int, name: str, timeout_s: float | None, tp: Any, info: WaitInfo | None = None
    ) -> Any:
        exe = self._exe
        exe.raise_if_unwinding()
        record = exe.journal.lookup(seq, StepKind.SIGNAL, name)
        if record is not None and record.status is StepStatus.COMPLETED:
            return self._result(SignalOutcome.decode(record.output_json), seq, name, timeout_s, tp)
        exe.frontier(seq)
        if record is None:
            until = exe.now() + timedelta(seconds=timeout_s) if timeout_s is not None else None
        else:
            until = SignalWait.decode(record.output_json).until
        await exe.flush_background()
        check = (
            None
            if tp is codec._NO_HINT
            else lambda text: payload_problem(json.loads(text), tp, name)
        )
        now = exe.now()
        payload = await exe.store_call(
            exe.rt.store.take_signal(exe.claim, seq, name, until=until, now=now, check=check)
        )
        if payload is not None:
            taken = SignalOutcome(payload)
            exe.journal.remember(
                StepRecord(
                    seq, name, StepKind.SIGNAL, StepStatus.COMPLETED, output_json=taken.encode()
                )
            )
            return self._result(taken, seq, name, timeout_s, tp)
        if until is not None and now >= until:  # the store recorded the time-out (one write)
            timed_out = SignalOutcome(timed_out=True)
            exe.journal.remember(
                StepRecord(
                    seq, name, StepKind.SIGNAL, StepStatus.COMPLETED, output_json=timed_out.encode()
                )
            )
            return self._result(timed_out, seq, name, timeout_s, tp)
        exe.journal.remember(
            StepRecord(
                seq,
                name,
                StepKind.SIGNAL,
                StepStatus.WAITING,
                output_json=SignalWait(until).encode(),
            )
        )
        schema = None if tp is codec._NO_HINT else codec.encode(_schema_of(tp), "signal schema")
        wait = Wait("signal", seq, name=name, until=until, schema_json=schema, info=info)
        raise exe.suspend(wait)

    def _result(
        self, outcome: SignalOutcome, seq: int, name: str, timeout_s: float | None, tp: Any
    ) -> Any:
        if outcome.timed_out:
            raise WaitTimeout(f"signal {name!r}", timeout_s)
        where = f"run {self._exe.run.run_id} signal {name!r} #{seq}"
        if isinstance(tp, JSONSchemaType):
            tp = codec._NO_HINT
        return codec.decode(outcome.payload_json, tp, where)


def _schema_of(tp: Any) -> Any:
    return tp.schema if isinstance(tp, JSONSchemaType) else schema_for(tp)
