"""Each store operation's statements, written once for every dialect (see :mod:`.tx`).

The stores call them as ``scripts.<noun>.<operation>(tx, ...)``.
"""

from stepstone.store.scripts import (
    claims,
    control,
    housekeeping,
    inbox,
    leases,
    ledger,
    memory,
    outcomes,
    runs,
    schedules,
    signals,
    steps,
    workers,
)

__all__ = [
    "claims",
    "control",
    "housekeeping",
    "inbox",
    "leases",
    "ledger",
    "memory",
    "outcomes",
    "runs",
    "schedules",
    "signals",
    "steps",
    "workers",
]
