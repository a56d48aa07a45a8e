"""How the PostgreSQL store keeps times (timestamptz, sessions in UTC: aware datetimes both ways)
and lists (text[]); the row mappings themselves are shared (:mod:`stepstone.store.records`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stepstone.store.records import Columns, dump_labels

__all__ = [
    "COLUMNS",
    "dump_labels",
    "event_from",
    "later",
    "run_columns",
    "run_from",
    "signal_from",
    "step_from",
    "step_params",
    "worker_from",
    "worker_params",
]


def later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def _same(value: Any) -> Any:
    return value


COLUMNS = Columns(time_in=_same, time_out=_same, names_in=tuple, names_out=list)

run_from = COLUMNS.run
step_from = COLUMNS.step
signal_from = COLUMNS.signal
event_from = COLUMNS.event
worker_from = COLUMNS.worker
run_columns = COLUMNS.run_columns
step_params = COLUMNS.step_params
worker_params = COLUMNS.worker_params
