"""How the SQLite store keeps times (REAL epoch seconds) and lists (JSON text); the row mappings
themselves are shared (:mod:`stepstone.store.records`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stepstone.core.clock import from_timestamp
from stepstone.store.records import Columns, dump_labels

__all__ = [
    "COLUMNS",
    "dt",
    "dump_labels",
    "event_from_row",
    "run_from_row",
    "run_params",
    "signal_from_row",
    "step_from_row",
    "step_params",
    "ts",
    "worker_from_row",
]


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def dt(value: float | None) -> datetime | None:
    return from_timestamp(value) if value is not None else None


def _names_in(value: Any) -> tuple[str, ...]:
    return tuple(json.loads(value)) if value else ()


def _names_out(names: tuple[str, ...]) -> str:
    return json.dumps(list(names))


COLUMNS = Columns(time_in=dt, time_out=ts, names_in=_names_in, names_out=_names_out)

run_from_row = COLUMNS.run
step_from_row = COLUMNS.step
signal_from_row = COLUMNS.signal
event_from_row = COLUMNS.event
worker_from_row = COLUMNS.worker
run_params = COLUMNS.run_columns
step_params = COLUMNS.step_params
