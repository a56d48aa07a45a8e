"""Replay rules: map each call at ``(run_id, seq)`` to its recorded outcome or a new execution.

This module is the only place that decides what a journal entry means for the call now being made:
``seq`` is handed out in call order (before any ``await``), a recorded entry whose kind or name
differs from the call raises :class:`NonDeterminismError`, and entries left over when the workflow
returns are a mismatch too. (How a recorded failure is raised again:
:mod:`stepstone.core.failures`.)
"""

from __future__ import annotations

from collections.abc import Iterable

from stepstone.core.model import StepKind, StepRecord
from stepstone.errors import NonDeterminismError

__all__ = ["Journal", "describe_call"]


def describe_call(kind: StepKind, name: str) -> str:
    """How a call is named in non-determinism reports: steps by name, the rest as ``ctx.<kind>``."""
    if kind is StepKind.STEP:
        return name
    if kind in (StepKind.NOW, StepKind.RANDOM, StepKind.UUID, StepKind.SLEEP):
        return f"ctx.{kind.value}()"
    return f"ctx.{kind.value}({name!r})"


class Journal:
    """The recorded entries of one run, consumed in ``seq`` order by the replaying workflow."""

    __slots__ = ("_last", "_next", "_records", "run_id")

    def __init__(self, run_id: str, records: Iterable[StepRecord] = ()) -> None:
        self.run_id = run_id
        self._records = {r.seq: r for r in records}
        self._last = max(self._records, default=-1)
        self._next = 0

    def allocate(self) -> int:
        """The seq of the call being made now."""
        seq = self._next
        self._next = seq + 1
        return seq

    def lookup(self, seq: int, kind: StepKind, name: str) -> StepRecord | None:
        """The entry recorded at ``seq`` for this call, or None if the call is new."""
        record = self._records.get(seq)
        if record is None:
            return None
        if record.kind is not kind or record.name != name:
            raise NonDeterminismError(
                self.run_id, seq, describe_call(record.kind, record.name), describe_call(kind, name)
            )
        return record

    def remember(self, record: StepRecord) -> None:
        self._records[record.seq] = record
        self._last = max(self._last, record.seq)

    @property
    def replaying(self) -> bool:
        """True while recorded entries lie ahead of the next seq."""
        return self._last >= self._next

    def check_fully_consumed(self) -> None:
        """At a normal return: an entry the code never reached means the code changed."""
        leftover = [seq for seq in self._records if seq >= self._next]
        if leftover:
            seq = min(leftover)
            record = self._records[seq]
            raise NonDeterminismError(
                self.run_id, seq, describe_call(record.kind, record.name), "(workflow returned)"
            )

    def __len__(self) -> int:
        return len(self._records)
