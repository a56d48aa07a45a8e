"""Admission: which claimable runs may start now (queue limits) and which pool worker gets a run.

Adapters read the counts inside their claim transaction (executing runs per queue and key,
recent starts) and the candidate runs; these functions decide which candidates may start now,
and which worker of a pool a new run goes to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import field
from datetime import datetime, timedelta

from stepstone.core.frozen import frozen, record
from stepstone.core.model import PoolSpec, QueueSpec

__all__ = ["Candidate", "Limits", "PoolWorker", "choose_pool_worker"]


@frozen
class Candidate:
    """A claimable run as the claim query returns it."""

    run_id: str
    state: str
    queue: str
    concurrency_key: str | None
    first_start: bool

    @property
    def recovery(self) -> bool:
        """An expired lease: it already holds its slot, so no limit applies to it."""
        return self.state == "running"


@record
class Limits:
    """What each limited queue (and key) may still start in this claim.

    Built from the queue specs, the executing runs per (queue, key) and the recent starts per
    (queue, key); ``admit`` then takes candidates in order and counts them as it goes, so one
    batch cannot overshoot a limit either.
    """

    specs: dict[str, QueueSpec]
    running: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    starts: list[tuple[str, str | None, datetime]] = field(default_factory=list)
    now: datetime | None = None
    _queue_left: dict[str, int] = field(init=False, default_factory=dict)
    _key_left: dict[tuple[str, str], int] = field(init=False, default_factory=dict)
    _rate_left: dict[tuple[str, str | None], int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        per_queue: Counter[str] = Counter()
        for (queue, _), n in self.running.items():
            per_queue[queue] += n
        for name, spec in self.specs.items():
            if spec.concurrency is not None:
                self._queue_left[name] = max(spec.concurrency - per_queue[name], 0)
            if spec.per_key_concurrency is not None:
                for (queue, key), n in self.running.items():
                    if queue == name and key is not None:
                        self._key_left[(name, key)] = max(spec.per_key_concurrency - n, 0)
        for name, spec in self.specs.items():
            if spec.rate_limit is None or spec.rate_period_s is None or self.now is None:
                continue
            since = self.now - timedelta(seconds=spec.rate_period_s)
            recent = Counter(
                (q, k if spec.rate_limit_per_key else None)
                for q, k, at in self.starts
                if q == name and at > since
            )
            for bucket, n in recent.items():
                self._rate_left[bucket] = max(spec.rate_limit - n, 0)

    @property
    def limited_queues(self) -> tuple[str, ...]:
        return tuple(sorted(self.specs))

    def closed_queues(self) -> set[str]:
        """Queues that may start nothing now (concurrency full or rate exhausted)."""
        closed = {q for q, left in self._queue_left.items() if left <= 0}
        for (queue, key), left in self._rate_left.items():
            if key is None and left <= 0:
                closed.add(queue)
        return closed

    def full_keys(self) -> list[tuple[str, str]]:
        """(queue, key) pairs that may start nothing now."""
        full = {qk for qk, left in self._key_left.items() if left <= 0}
        full.update(
            (q, k) for (q, k), left in self._rate_left.items() if k is not None and left <= 0
        )
        return sorted(full)

    def admit(self, candidates: Iterable[Candidate], limit: int) -> list[Candidate]:
        """The candidates to claim, in order, at most ``limit``, within every limit."""
        chosen: list[Candidate] = []
        for c in candidates:
            if len(chosen) >= limit:
                break
            if c.recovery:
                chosen.append(c)
                continue
            spec = self.specs.get(c.queue)
            if spec is None:
                chosen.append(c)
                continue
            key = c.concurrency_key
            if not self._take(c.queue, key, spec, c.first_start):
                continue
            chosen.append(c)
        return chosen

    def _take(self, queue: str, key: str | None, spec: QueueSpec, first_start: bool) -> bool:
        queue_left = self._queue_left.get(queue)
        if queue_left is not None and queue_left <= 0:
            return False
        key_left: int | None = None
        if spec.per_key_concurrency is not None and key is not None:
            key_left = self._key_left.get((queue, key), spec.per_key_concurrency)
            if key_left <= 0:
                return False
        bucket = (queue, key if spec.rate_limit_per_key else None)
        rate_left: int | None = None
        if spec.rate_limit is not None and first_start:
            rate_left = self._rate_left.get(bucket, spec.rate_limit)
            if rate_left <= 0:
                return False
        if queue_left is not None:
            self._queue_left[queue] = queue_left - 1
        if key_left is not None and key is not None:
            self._key_left[(queue, key)] = key_left - 1
        if rate_left is not None:
            self._rate_left[bucket] = rate_left - 1
        return True

    def counts_start(self, queue: str) -> bool:
        """Whether a first start in ``queue`` must be recorded (the queue is rate limited)."""
        spec = self.specs.get(queue)
        return spec is not None and spec.rate_limit is not None

    def longest_period_s(self) -> float:
        return max((s.rate_period_s or 0.0 for s in self.specs.values()), default=0.0)


@frozen
class PoolWorker:
    """A live worker of a pool with its load (executing plus assigned, not yet claimed)."""

    worker_id: str
    capacity: int
    load: int

    @property
    def ratio(self) -> float:
        return self.load / self.capacity if self.capacity > 0 else float("inf")


def choose_pool_worker(
    pool: PoolSpec, workers: Sequence[PoolWorker], last_worker: str | None
) -> str | None:
    """The worker a new run of ``pool`` is assigned to, or None to leave it to any pool worker.

    ``round_robin`` takes the next live worker (by id) after the last one assigned;
    ``least_loaded`` the lowest load ratio (ties by id); ``threshold`` the same among workers
    below the threshold, and None when all are at or above it.
    """
    if pool.strategy == "direct" or not workers:
        return None
    ordered = sorted(workers, key=lambda w: w.worker_id)
    if pool.strategy == "round_robin":
        for w in ordered:
            if last_worker is None or w.worker_id > last_worker:
                return w.worker_id
        return ordered[0].worker_id
    eligible = ordered
    if pool.strategy == "threshold":
        eligible = [w for w in ordered if w.ratio < pool.threshold]
        if not eligible:
            return None
    return min(eligible, key=lambda w: (w.ratio, w.worker_id)).worker_id
