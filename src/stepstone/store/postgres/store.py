"""The PostgreSQL store: many workers on many hosts sharing one database.

Everything lives in the schema ``stepstone``; every statement is a named block of
``queries.sql``, prepared on first use with a generic plan.

- **Claims**: candidates are locked ``FOR UPDATE SKIP LOCKED`` over narrow partial indexes (due
  runs by priority then due time; expired leases), so concurrent claimers never wait for each
  other and never get the same run. With no queue limits involved the whole claim is one
  statement (one round trip); see :mod:`.claims` for limited queues.
- **Fencing**: a worker's journal writes hold its run row ``FOR SHARE`` until they commit and
  check the lease token in the same statement, so a takeover waits for them and a zombie's
  write, which sees a stale token, changes nothing (:class:`LeaseLost`). Whatever wakes a run
  (a signal, a child's end) locks it first, so it serialises with the run suspending.
- **Wake-ups**: statements that make work claimable (a new run, a signal, a parent woken, an
  operator's cancel/pause/unpause, runs released) or end a claim (finished, suspended, paused,
  handed back) call ``pg_notify('stepstone', '')``, so the notification is sent when the change
  commits. Each store keeps one listening connection per event loop (reconnected with back-off
  when lost); :meth:`change_token` and :meth:`wait_for_change` count what it hears, so a wait
  returns within a millisecond or so of a commit in any process. Polling with the caller's
  timeout is only the fallback while the listener is down.
- **Group commit**: see :mod:`.writer`. With nothing else ready on the loop, a journal write is
  one statement in autocommit: one round trip.
- **Durability**: sessions force ``synchronous_commit=on``, so a recorded step is flushed to the
  server's WAL before the workflow moves past it. ``durability="normal"`` (the default) is that;
  ``"full"`` asks for ``remote_apply``, which also waits for synchronous standbys (if the server
  has any) to apply the commit. Neither ever turns durability off.
- **Resilience**: a lost connection or a restarting server is retried with back-off for up to
  ``retry_s`` (the pool reconnects in the background), then raises StoreUnavailable. Every write
  may run again safely, even when its first attempt committed and only the answer was lost:
  upserts (steps, runs by id, workers, user events by index) are idempotent, and the others
  recognise their earlier attempt's commit by the caller's ``now`` stamped on the row: a claim
  hands over again the runs this worker took at that ``now`` (instead of leaving them leased to
  a worker that does not know it holds them); closing a claim finds the run already closed
  under its token at that ``now`` (instead of LeaseLost); a consumed signal is returned again
  (instead of taking the next one); a control request, retry, fork or signal finds its own
  change. So nothing recorded is lost and no recorded step runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stepstone.core.model import (
    Claim,
    Control,
    EventRecord,
    LeaseStatus,
    NewRun,
    Run,
    RunQuery,
    RunState,
    SignalRecord,
    StepRecord,
    WorkerInfo,
)
from stepstone.core.port import Cancelled, ClaimFilter, ClaimOutcome, LeaseLost, NewEvent
from stepstone.errors import (
    InvalidArgument,
    RunNotFound,
    RunStateError,
    Transient,
)
from stepstone.store.postgres import claims
from stepstone.store.postgres import transactions as tx
from stepstone.store.postgres.housekeeping import Housekeeping
from stepstone.store.postgres.link import Conn
from stepstone.store.postgres.rows import (
    event_from,
    later,
    run_from,
    signal_from,
    step_from,
    step_params,
)
from stepstone.store.rules import fork_of, signal_awaited, signal_taken

__all__ = ["PostgresStore"]

Q = tx.Q


class PostgresStore(Housekeeping):
    """A stepstone store in a PostgreSQL database (see the module docstring for the guarantees).

    >>> store = PostgresStore("postgresql://app@db.internal/app")
    >>> await store.migrate()

    Nothing connects until first use. ``pool_size`` bounds the connections per event loop (plus
    one listening connection); ``retry_s`` is how long an operation keeps retrying while the
    database is unreachable before it raises :class:`~stepstone.errors.StoreUnavailable`.
    """

    # --- runs ----------------------------------------------------------------------------------

    async def create_run(
        self, run: NewRun, *, now: datetime, claim_for: WorkerInfo | None = None, lease_s: float = 0
    ) -> tuple[Run, bool, Claim | None]:
        owner = claim_for.worker_id if claim_for else None

        async def body(conn: Conn, attempt: int) -> tuple[Run, bool, Claim | None]:
            stored, created = await tx.insert_run(conn, run, now, owner, lease_s, attempt)
            claim = None
            if created and owner is not None:
                claim = Claim(stored, owner, stored.lease_token, fresh=True)
            return stored, created, claim

        # a pool assignment holds the pool's row until the run is stored: a transaction
        pooled = run.routing.pool is not None
        return await self._write(body, tx=pooled, safe=False, notify=owner is None)

    async def get_run(self, run_id: str) -> Run | None:
        row = await self._row(Q.get_run, {"run_id": run_id})
        return run_from(row) if row is not None else None

    async def list_runs(self, query: RunQuery) -> list[Run]:
        if query.limit < 1:
            raise InvalidArgument(f"limit must be >= 1, got {query.limit}")
        params = {
            "states": [s.value for s in query.states] if query.states else None,
            "workflow": query.workflow,
            "queue": query.queue,
            "parent_run_id": query.parent_run_id,
            "before": query.before_run_id,
            "limit": query.limit,
        }
        return [run_from(r) for r in await self._rows(Q.list_runs, params)]

    async def claim_runs(
        self, worker: WorkerInfo, flt: ClaimFilter, *, limit: int, lease_s: float, now: datetime
    ) -> list[Claim]:
        if limit <= 0 or not flt.workflows or not flt.queues:
            return []

        async def body(conn: Conn, attempt: int) -> list[Claim]:
            return await claims.claim_many(
                conn, worker, flt.queues, flt.workflows, limit, lease_s, now, attempt
            )

        # one statement in autocommit unless a queue has limits (then its own transaction)
        return await self._write(body, tx=False, safe=False)

    async def claim_run(
        self, run_id: str, worker: WorkerInfo, *, lease_s: float, now: datetime
    ) -> Claim | None:
        async def body(conn: Conn, attempt: int) -> Claim | None:
            return await claims.claim_one(conn, run_id, worker, lease_s, now, attempt)

        return await self._write(body, tx=False, safe=False)

    async def has_claimable(self, flt: ClaimFilter, *, now: datetime) -> bool:
        if not flt.workflows or not flt.queues:
            return False
        params = {"now": now, "queues": list(flt.queues), "workflows": list(flt.workflows)}
        row = await self._row(Q.has_claimable, params)
        return bool(row and row["found"])

    async def next_wake_at(self, flt: ClaimFilter, *, now: datetime) -> datetime | None:
        if not flt.workflows or not flt.queues:
            return None
        params = {"now": now, "queues": list(flt.queues), "workflows": list(flt.workflows)}
        row = await self._row(Q.next_wake_at, params)
        wake: datetime | None = row["wake_at"] if row is not None else None
        return wake

    async def close_claim(
        self, claim: Claim, outcome: ClaimOutcome, *, now: datetime, state_json: str | None = None
    ) -> RunState:
        async def body(conn: Conn, attempt: int) -> RunState:
            return await tx.close_claim(conn, claim, outcome, now, state_json, attempt)

        return await self._write(body, safe=isinstance(outcome, Cancelled), notify=True)

    async def request_control(
        self, run_id: str, action: Control | None, *, reason: str | None, now: datetime
    ) -> Run:
        async def body(conn: Conn, attempt: int) -> Run:
            run = await tx.get_run(conn, run_id)
            if run is None:
                raise RunNotFound(run_id)
            if attempt == 0 or run.updated_at != now:  # else: the earlier attempt committed
                await tx.control(conn, run, action, reason, now)
            return await self._reread(conn, run_id)

        return await self._write(body, notify=True)

    async def retry_run(self, run_id: str, *, now: datetime) -> Run:
        async def body(conn: Conn, attempt: int) -> Run:
            run = await tx.get_run(conn, run_id)
            if run is None:
                raise RunNotFound(run_id)
            if attempt > 0 and run.state is RunState.PENDING and run.updated_at == now:
                return run  # the earlier attempt committed
            if run.state not in (RunState.FAILED, RunState.BLOCKED):
                raise RunStateError(run_id, run.state.value, "retry", "failed or blocked")
            params = {"run_id": run_id, "expected": run.state.value, "now": now}
            if await tx.write(conn, Q.reset_for_retry, params) != 1:
                raise Transient(f"run {run_id} changed while being retried")
            seqs = list(run.error.step_seqs) if run.error else []
            await conn.execute(Q.delete_failed_steps, {"run_id": run_id, "seqs": seqs})
            await tx.event(conn, run_id, "retried", {"from": run.state.value}, now)
            return await self._reread(conn, run_id)

        return await self._write(body, notify=True)

    async def fork_run(
        self, run_id: str, *, from_seq: int, patch: dict[int, str], new_run_id: str, now: datetime
    ) -> Run:
        async def body(conn: Conn, attempt: int) -> Run:
            source = await tx.get_run(conn, run_id)
            if source is None:
                raise RunNotFound(run_id)
            new = fork_of(source, from_seq=from_seq, patch=patch, new_run_id=new_run_id)
            if attempt > 0:
                earlier = await tx.get_run(conn, new_run_id)
                if earlier and earlier.forked_from == run_id and earlier.created_at == now:
                    return earlier  # the earlier attempt committed the whole fork
            _, created = await tx.insert_run(
                conn, new, now, None, 0, 0, state_json=source.state_json
            )
            if not created:
                raise InvalidArgument(f"fork: a run with id {new_run_id!r} already exists")
            params = {"run_id": run_id, "new_run_id": new_run_id, "from_seq": from_seq}
            await conn.execute(Q.copy_steps, params)
            for seq, output in sorted(patch.items()):
                changed = await tx.write(
                    conn, Q.patch_step, {"run_id": new_run_id, "seq": seq, "output": output}
                )
                if changed != 1:
                    raise InvalidArgument(
                        f"fork: run {run_id} has no recorded step #{seq} to patch"
                    )
            await tx.event(conn, new_run_id, "forked", {"from": run_id, "from_seq": from_seq}, now)
            return await self._reread(conn, new_run_id)

        return await self._write(body, notify=True)

    @staticmethod
    async def _reread(conn: Conn, run_id: str) -> Run:
        run = await tx.get_run(conn, run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    # --- leases --------------------------------------------------------------------------------

    async def renew_leases(
        self, worker_id: str, *, lease_s: float, now: datetime, load: int = 0
    ) -> list[LeaseStatus]:
        async def body(conn: Conn, attempt: int) -> list[LeaseStatus]:
            params = {"owner": worker_id, "expires_at": later(now, lease_s)}
            rows = await tx.all_rows(conn, Q.renew_leases, params)
            touch = {"worker_id": worker_id, "now": now, "load": load}
            await conn.execute(Q.touch_worker, touch)
            return [LeaseStatus(r["run_id"], r["lease_token"], r["control"]) for r in rows]

        return await self._write(body, tx=False, safe=False)

    # --- steps ---------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        return [step_from(r) for r in await self._rows(Q.load_steps, {"run_id": run_id})]

    async def record_step(
        self, claim: Claim, record: StepRecord, *, now: datetime, state_json: str | None = None
    ) -> Control | None:
        params = step_params(claim.run_id, claim.lease_token, record)

        async def body(conn: Conn, attempt: int) -> Control | None:
            row = await tx.one_row(conn, Q.record_step, params)
            if row is None:
                raise LeaseLost(claim.run_id, claim.lease_token)
            if state_json is not None:
                await conn.execute(
                    Q.save_state,
                    {"run_id": claim.run_id, "token": claim.lease_token, "state_data": state_json},
                )
            control: Control | None = row["control"]
            return control

        # one statement in autocommit unless ctx.state changed too
        return await self._write(body, tx=state_json is not None, safe=False)

    async def start_child(
        self, claim: Claim, record: StepRecord, child: NewRun, *, now: datetime
    ) -> Run:
        async def body(conn: Conn, attempt: int) -> Run:
            await tx.fence(conn, claim)
            stored, _ = await tx.insert_run(conn, child, now, None, 0, attempt)
            params = step_params(claim.run_id, claim.lease_token, record)
            await conn.execute(Q.record_step, params)
            return stored

        return await self._write(body, safe=False, notify=True)

    # --- signals -------------------------------------------------------------------------------

    async def send_signal(
        self, run_id: str, name: str, payload_json: str, *, now: datetime
    ) -> SignalRecord:
        async def body(conn: Conn, attempt: int) -> SignalRecord:
            if attempt > 0:
                for row in await tx.all_rows(conn, Q.list_signals, {"run_id": run_id}):
                    earlier = signal_from(row)
                    if (earlier.name, earlier.payload_json, earlier.created_at) == (
                        name,
                        payload_json,
                        now,
                    ):
                        return earlier  # the earlier attempt committed
            params = {"run_id": run_id, "name": name, "payload": payload_json, "now": now}
            added = await tx.one_row(conn, Q.insert_signal, params)
            if added is None:
                run = await tx.get_run(conn, run_id)
                if run is None:
                    raise RunNotFound(run_id)
                raise RunStateError(
                    run_id, run.state.value, f"send signal {name!r} to", "an unfinished run"
                )
            await conn.execute(Q.wake_for_signal, {"run_id": run_id, "name": name, "now": now})
            return SignalRecord(added["signal_id"], run_id, name, payload_json, now)

        return await self._write(body, safe=False, notify=True)

    async def take_signal(
        self, claim: Claim, seq: int, name: str, *, until: datetime | None, now: datetime
    ) -> str | None:
        async def body(conn: Conn, attempt: int) -> str | None:
            await tx.fence(conn, claim)
            params = {"run_id": claim.run_id, "name": name, "seq": seq}
            found = await tx.one_row(conn, Q.next_signal, params)
            if found is not None:
                if found["consumed_seq"] is None:
                    await conn.execute(
                        Q.consume_signal,
                        {"seq": seq, "now": now, "signal_id": found["signal_id"]},
                    )
                payload: str = found["payload"]
                record = signal_taken(seq, name, payload, now)
                await conn.execute(
                    Q.record_step, step_params(claim.run_id, claim.lease_token, record)
                )
                return payload
            waiting = signal_awaited(seq, name, until, now)
            await conn.execute(
                Q.record_step_if_absent, step_params(claim.run_id, claim.lease_token, waiting)
            )
            return None

        return await self._write(body, safe=False)

    async def list_signals(self, run_id: str) -> list[SignalRecord]:
        return [signal_from(r) for r in await self._rows(Q.list_signals, {"run_id": run_id})]

    # --- events --------------------------------------------------------------------------------

    async def append_events(
        self, claim: Claim, events: Sequence[NewEvent], *, now: datetime
    ) -> None:
        async def body(conn: Conn, attempt: int) -> None:
            await tx.fence(conn, claim)
            for e in events:
                params = {
                    "run_id": claim.run_id,
                    "idx": e.idx,
                    "kind": e.kind,
                    "data": e.data_json,
                    "source": "user",
                    "now": now,
                }
                await conn.execute(Q.insert_event, params)

        await self._write(body, safe=False, notify=True)

    async def read_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        params = {"run_id": run_id, "after_id": after_id, "limit": limit}
        return [event_from(r) for r in await self._rows(Q.read_events, params)]
