"""Journal records: each kind's stored form is pinned byte for byte and round-trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stepstone.core.model import ErrorInfo, Wait
from stepstone.core.records import (
    ChildOutcome,
    ChildRef,
    SignalOutcome,
    SignalWait,
    Until,
    waits_event,
    waits_from_event,
)
from stepstone.store.rules import signal_awaited, signal_taken

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

RECORDS = [
    (Until(AT), '{"until":"2026-01-02T03:04:05.678000+00:00"}'),
    (Until(None), '{"until":null}'),
    (SignalWait(AT), '{"until": "2026-01-02T03:04:05.678000+00:00"}'),
    (SignalWait(None), '{"until": null}'),
    (SignalOutcome('{"ok":true,"by":"ann"}'), '{"payload":{"ok":true,"by":"ann"}}'),
    (SignalOutcome("null"), '{"payload":null}'),
    (SignalOutcome(timed_out=True), '{"timeout":true}'),
    (ChildRef("p.0"), '{"run_id":"p.0"}'),
    (
        ChildOutcome("p.0", "completed", '{"n":[1,2]}'),
        '{"run_id":"p.0","state":"completed","output":{"n":[1,2]}}',
    ),
    (
        ChildOutcome("p.1", "failed", None, ErrorInfo("ValueError", "bad")),
        '{"run_id":"p.1","state":"failed","error":{"type":"ValueError","message":"bad"}}',
    ),
]


@pytest.mark.parametrize(("record", "stored"), RECORDS, ids=[repr(r) for r, _ in RECORDS])
def test_each_record_kind_has_one_stored_form_and_round_trips(record: object, stored: str) -> None:
    assert record.encode() == stored  # type: ignore[attr-defined]
    assert type(record).decode(stored) == record  # type: ignore[attr-defined]


def test_decoding_tolerates_other_spacing_and_missing_fields() -> None:
    assert Until.decode(None) == Until(None)
    assert SignalWait.decode('{"until":"2026-01-02T03:04:05.678000+00:00"}') == SignalWait(AT)
    assert SignalOutcome.decode('{"payload": {"a": 1}}') == SignalOutcome('{"a":1}')
    assert ChildRef.decode('{"run_id":"c","state":"completed","output":1}') == ChildRef("c")
    assert ChildOutcome.decode("{}") == ChildOutcome("?", "failed")


def test_the_stores_signal_records_are_the_typed_ones() -> None:
    taken = signal_taken(3, "go", '{"x":1}', AT)
    assert taken.output_json == '{"payload":{"x":1}}'
    awaited = signal_awaited(3, "go", AT, AT)
    assert awaited.output_json == SignalWait(AT).encode()
    assert SignalWait.decode(awaited.output_json) == SignalWait(AT)


def test_a_waits_event_reads_back_as_its_waits() -> None:
    waits = (Wait("timer", 2, until=AT), Wait("signal", 3, name="go"), Wait("timer", -1, until=AT))
    data = waits_event(waits)
    assert waits_from_event(data) == (Wait("timer", 0, until=AT), Wait("signal", 0, name="go"))
