-- Every statement the PostgreSQL store runs, as named blocks (same names in every dialect).
-- Tables live in the schema "stepstone". Times are timestamptz; %(now)s is always passed in,
-- never read from the database clock.
--
-- Concurrency: SQLite serialises every write; here several transactions run at once under READ
-- COMMITTED, so the statements lock what they decide on. A worker's journal writes hold its run
-- row FOR SHARE (lease_check, record_step), so a claim that takes the run over waits for them and
-- a zombie's write can never land after the takeover. Whatever wakes a run (a signal, a child's
-- end) locks that run first, so it serialises with the run suspending and no wake-up is lost.
--
-- Notification: a change that makes a run claimable, finishes or parks one, or adds a user event
-- calls pg_notify('stepstone', '') in the same statement; listeners hear it when it commits.

-- name: migration_lock
-- Two processes migrating at once run one after the other (held until the transaction ends).
SELECT pg_advisory_xact_lock(7265310553461170321);

-- name: listen
-- The notification channel every change is announced on (pg_notify('stepstone', '')).
LISTEN stepstone;

-- name: create_schema_table
CREATE SCHEMA IF NOT EXISTS stepstone;
CREATE TABLE IF NOT EXISTS stepstone.migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL
);

-- name: schema_version
SELECT COALESCE(MAX(version), 0) AS version FROM stepstone.migrations;

-- name: has_schema_table
SELECT to_regclass('stepstone.migrations') IS NOT NULL AS present;

-- name: count_tables
-- Tables in stepstone's schema other than the migrations table.
SELECT count(*) AS n FROM pg_catalog.pg_tables
WHERE schemaname = 'stepstone' AND tablename <> 'migrations';

-- name: record_migration
INSERT INTO stepstone.migrations (version, name, applied_at) VALUES (%(version)s, %(name)s, %(now)s);

-- name: create_run
-- Returns the run only when it was created (neither its id nor, while unfinished, its dedup key
-- exists; a concurrent insert of either waits for the other to commit). A run nobody holds yet
-- wakes the workers.
WITH created AS (
    INSERT INTO stepstone.runs (
        run_id, workflow, version, state, input, queue, priority, wake_at, deadline_at,
        parent_run_id, parent_seq, forked_from, created_at, updated_at,
        lease_owner, lease_expires_at, lease_token, started_at, state_data,
        dedup_key, concurrency_key, labels, target_worker, pool, assigned_worker, retry_of,
        trace_context
    ) VALUES (
        %(run_id)s, %(workflow)s, %(version)s, %(state)s, %(input)s, %(queue)s, %(priority)s,
        %(wake_at)s, %(deadline_at)s, %(parent_run_id)s, %(parent_seq)s, %(forked_from)s,
        %(now)s, %(now)s, %(lease_owner)s, %(lease_expires_at)s, %(lease_token)s,
        %(started_at)s, %(state_data)s, %(dedup_key)s, %(concurrency_key)s, %(labels)s::jsonb,
        %(target_worker)s, %(pool)s, %(assigned_worker)s, %(retry_of)s, %(trace_context)s
    )
    ON CONFLICT DO NOTHING
    RETURNING *
)
SELECT created.*, (SELECT pg_notify('stepstone', '') WHERE created.lease_owner IS NULL) AS woke
FROM created;

-- name: find_dedup
SELECT * FROM stepstone.runs
WHERE dedup_key = %(dedup_key)s AND state NOT IN ('completed', 'failed', 'cancelled');

-- name: get_run
SELECT * FROM stepstone.runs WHERE run_id = %(run_id)s;

-- name: list_runs
-- `created_at IS NOT NULL` (always true) lets the plan use the partial runs_by_created.
SELECT * FROM stepstone.runs
WHERE created_at IS NOT NULL
  AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(workflow)s::text IS NULL OR workflow = %(workflow)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(parent_run_id)s::text IS NULL OR parent_run_id = %(parent_run_id)s::text)
  AND (%(labels)s::jsonb IS NULL OR labels @> %(labels)s::jsonb)
  AND (%(before)s::text IS NULL OR (created_at, run_id) < (
      SELECT created_at, run_id FROM stepstone.runs WHERE run_id = %(before)s::text))
ORDER BY created_at DESC, run_id DESC
LIMIT %(limit)s;

-- name: list_children
-- A parent's children (describe) through runs_by_parent, whatever plan list_runs has prepared.
SELECT * FROM stepstone.runs
WHERE parent_run_id = %(parent_run_id)s::text
ORDER BY created_at DESC, run_id DESC
LIMIT %(limit)s;

-- name: find_claimable
-- Candidates, locked (rows another claimer holds are skipped, never waited for): due runs and
-- expired leases, each over its own partial index, first by priority then by how long they have
-- been due. Routing (labels, target or assigned worker, pool) filters both; the queues and keys
-- at their concurrency or rate limit filter only new work (%(due_queues)s, %(full_queues)s with
-- %(full_keys)s), since a recovery takes no new slot. On a retry after an unacknowledged
-- commit, the runs this worker took at this very `now` come first ("lost": hand them over
-- again rather than leave them leased to a worker that does not know it holds them).
-- With %(take)s, when no candidate's queue has stored limits (`limited`), the candidates are
-- also taken, in the same statement (a claim is then one round trip); otherwise they are only
-- returned, and the claim counts the limits and takes the admitted ones with claim_run.
WITH due AS (
    SELECT run_id, state, queue, concurrency_key, started_at IS NULL AS first_start, priority,
           wake_at AS due, EXISTS (
               SELECT 1 FROM stepstone.queues q WHERE q.name = runs.queue
                 AND (q.concurrency IS NOT NULL OR q.per_key_concurrency IS NOT NULL
                      OR q.rate_limit IS NOT NULL)) AS limited
    FROM stepstone.runs
    WHERE state IN ('pending', 'sleeping', 'waiting') AND wake_at <= %(now)s
      AND queue = ANY(%(due_queues)s::text[]) AND workflow = ANY(%(workflows)s::text[])
      AND (target_worker IS NULL OR target_worker = %(worker_id)s::text)
      AND (assigned_worker IS NULL OR assigned_worker = %(worker_id)s::text)
      AND (pool IS NULL OR pool = %(pool)s::text)
      AND (labels IS NULL OR labels <@ %(labels)s::jsonb)
      AND (concurrency_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM unnest(%(full_queues)s::text[], %(full_keys)s::text[]) AS f (q, k)
          WHERE f.q = runs.queue AND f.k = runs.concurrency_key))
    ORDER BY priority DESC, wake_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT run_id, state, queue, concurrency_key, started_at IS NULL AS first_start, priority,
           lease_expires_at AS due, false AS limited
    FROM stepstone.runs
    WHERE state = 'running' AND lease_expires_at <= %(now)s
      AND queue = ANY(%(queues)s::text[]) AND workflow = ANY(%(workflows)s::text[])
      AND (target_worker IS NULL OR target_worker = %(worker_id)s::text)
      AND (pool IS NULL OR pool = %(pool)s::text)
      AND (labels IS NULL OR labels <@ %(labels)s::jsonb)
    ORDER BY priority DESC, lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), lost AS (
    SELECT run_id, 'lost'::text AS state, queue, concurrency_key,
           started_at = %(now)s AS first_start, priority, '-infinity'::timestamptz AS due,
           false AS limited
    FROM stepstone.runs
    WHERE %(retry)s::boolean AND state = 'running' AND lease_owner = %(worker_id)s::text
      AND updated_at = %(now)s AND lease_expires_at > %(now)s
    FOR UPDATE
), picked AS (
    SELECT * FROM lost
    UNION ALL SELECT * FROM due
    UNION ALL SELECT * FROM expired
    ORDER BY priority DESC, due
    LIMIT %(limit)s
), taking AS (
    SELECT run_id, state AS prior_state, first_start FROM picked
    WHERE %(take)s::boolean AND NOT EXISTS (SELECT 1 FROM picked WHERE limited)
), claimed AS (
    UPDATE stepstone.runs r SET
        recoveries = r.recoveries + (CASE WHEN t.prior_state = 'running' THEN 1 ELSE 0 END),
        state = 'running',
        lease_owner = %(worker_id)s::text,
        lease_expires_at = %(expires_at)s,
        lease_token = r.lease_token + 1,
        started_at = COALESCE(r.started_at, %(now)s),
        updated_at = %(now)s,
        wake_at = NULL,
        waits = NULL
    FROM taking t
    WHERE r.run_id = t.run_id
    RETURNING r.*, t.prior_state, t.first_start
), logged AS (
    INSERT INTO stepstone.events (run_id, idx, kind, data, source, created_at)
    SELECT run_id, NULL,
           CASE WHEN prior_state = 'running' THEN 'recovered' ELSE 'claimed' END,
           %(event)s::text, 'system', %(now)s
    FROM claimed WHERE prior_state <> 'lost'
)
SELECT p.run_id AS candidate, p.state AS candidate_state, p.queue AS candidate_queue,
       p.concurrency_key AS candidate_key, p.first_start AS candidate_first_start, p.limited,
       c.*
FROM picked p LEFT JOIN claimed c ON c.run_id = p.run_id
ORDER BY p.priority DESC, p.due;

-- name: running_counts
-- Executing runs per queue and concurrency key, for the queues that have limits. A running run
-- always holds a lease: the lease condition lets runs_leased find them (state alone has no
-- index, and scanning every run ever stored on each claim of a limited queue is O(history)).
SELECT queue, concurrency_key, count(*) AS n FROM stepstone.runs
WHERE lease_expires_at IS NOT NULL AND state = 'running' AND queue = ANY(%(queues)s::text[])
GROUP BY queue, concurrency_key;

-- name: recent_starts
SELECT queue, key, started_at FROM stepstone.queue_starts
WHERE queue = ANY(%(queues)s::text[]) AND started_at > %(since)s;

-- name: record_start
INSERT INTO stepstone.queue_starts (queue, key, started_at) VALUES (%(queue)s, %(key)s, %(now)s);

-- name: prune_starts
DELETE FROM stepstone.queue_starts WHERE queue = %(queue)s AND started_at <= %(before)s;

-- name: get_queues
-- The limited queues among these, locked until the claim commits: claims of a limited queue
-- count its running runs and recent starts one after the other, so together they never
-- overshoot a limit.
SELECT * FROM stepstone.queues
WHERE name = ANY(%(names)s::text[])
  AND (concurrency IS NOT NULL OR per_key_concurrency IS NOT NULL OR rate_limit IS NOT NULL)
ORDER BY name
FOR UPDATE;

-- name: list_queues
SELECT * FROM stepstone.queues ORDER BY name;

-- name: upsert_queue
INSERT INTO stepstone.queues (
    name, concurrency, per_key_concurrency, rate_limit, rate_period_s, rate_limit_per_key,
    updated_at
) VALUES (
    %(name)s, %(concurrency)s, %(per_key_concurrency)s, %(rate_limit)s, %(rate_period_s)s,
    %(rate_limit_per_key)s, %(now)s
)
ON CONFLICT (name) DO UPDATE SET
    concurrency = excluded.concurrency, per_key_concurrency = excluded.per_key_concurrency,
    rate_limit = excluded.rate_limit, rate_period_s = excluded.rate_period_s,
    rate_limit_per_key = excluded.rate_limit_per_key, updated_at = excluded.updated_at;

-- name: get_pool
-- Locked until the new run is stored: concurrent assignments advance the cursor one by one.
SELECT * FROM stepstone.pools WHERE name = %(name)s FOR UPDATE;

-- name: list_pools
SELECT * FROM stepstone.pools ORDER BY name;

-- name: upsert_pool
INSERT INTO stepstone.pools (name, strategy, threshold, updated_at)
VALUES (%(name)s, %(strategy)s, %(threshold)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET
    strategy = excluded.strategy, threshold = excluded.threshold, updated_at = excluded.updated_at;

-- name: set_pool_cursor
UPDATE stepstone.pools SET last_worker = %(worker_id)s WHERE name = %(name)s;

-- name: pool_workers
-- Live workers of a pool with their load: the runs they hold a lease on (counted here, since the
-- load a worker reports lags its claims by up to a heartbeat) or their reported load if higher,
-- plus the runs assigned to them and not yet claimed.
SELECT w.worker_id, w.concurrency,
       GREATEST(w.load, (SELECT count(*) FROM stepstone.runs h
                         WHERE h.lease_owner = w.worker_id AND h.state = 'running'))
       + (SELECT count(*) FROM stepstone.runs r
          WHERE r.assigned_worker = w.worker_id
            AND r.state IN ('pending', 'sleeping', 'waiting')) AS load
FROM stepstone.workers w
WHERE w.pool = %(pool)s AND w.heartbeat_at + make_interval(secs => w.lease_s) >= %(now)s
ORDER BY w.worker_id;

-- name: has_claimable
SELECT EXISTS (
    SELECT 1 FROM stepstone.runs
    WHERE state IN ('pending', 'sleeping', 'waiting') AND wake_at <= %(now)s
      AND queue = ANY(%(queues)s::text[]) AND workflow = ANY(%(workflows)s::text[])
) OR EXISTS (
    SELECT 1 FROM stepstone.runs
    WHERE state = 'running' AND lease_expires_at <= %(now)s
      AND queue = ANY(%(queues)s::text[]) AND workflow = ANY(%(workflows)s::text[])
) AS found;

-- name: claim_run
-- Take these runs if they are still claimable (an expired lease counts as a recovery); on a
-- retry after an unacknowledged commit, also those this worker took at this `now` ("lost").
-- Each row is locked and checked again at its newest version, so a run claimed or changed
-- meanwhile is left out.
WITH picked AS (
    SELECT run_id,
           CASE WHEN state = 'running' AND lease_expires_at <= %(now)s THEN 'running'
                WHEN state = 'running' THEN 'lost'
                ELSE state END AS prior_state,
           CASE WHEN state = 'running' AND lease_expires_at > %(now)s THEN started_at = %(now)s
                ELSE started_at IS NULL END AS first_start
    FROM stepstone.runs
    WHERE run_id = ANY(%(run_ids)s::text[])
      AND ((state IN ('pending', 'sleeping', 'waiting') AND wake_at <= %(now)s)
           OR (state = 'running' AND lease_expires_at <= %(now)s)
           OR (%(retry)s::boolean AND state = 'running' AND lease_owner = %(owner)s::text
               AND updated_at = %(now)s))
    FOR UPDATE
), claimed AS (
    UPDATE stepstone.runs r SET
        recoveries = r.recoveries + (CASE WHEN p.prior_state = 'running' THEN 1 ELSE 0 END),
        state = 'running',
        lease_owner = %(owner)s::text,
        lease_expires_at = %(expires_at)s,
        lease_token = r.lease_token + 1,
        started_at = COALESCE(r.started_at, %(now)s),
        updated_at = %(now)s,
        wake_at = NULL,
        waits = NULL
    FROM picked p
    WHERE r.run_id = p.run_id
    RETURNING r.*, p.prior_state, p.first_start
), logged AS (
    INSERT INTO stepstone.events (run_id, idx, kind, data, source, created_at)
    SELECT run_id, NULL,
           CASE WHEN prior_state = 'running' THEN 'recovered' ELSE 'claimed' END,
           %(event)s::text, 'system', %(now)s
    FROM claimed WHERE prior_state <> 'lost'
)
SELECT * FROM claimed;

-- name: next_wake_at
-- Timers of sleeping and waiting runs (runs_timers), delayed starts (runs_due), lease expiries.
SELECT LEAST(
    (SELECT MIN(wake_at) FROM stepstone.runs
     WHERE state IN ('sleeping', 'waiting') AND wake_at > %(now)s
       AND queue = ANY(%(queues)s::text[]) AND workflow = ANY(%(workflows)s::text[])),
    (SELECT MIN(wake_at) FROM stepstone.runs
     WHERE state = 'pending' AND wake_at > %(now)s
       AND queue = ANY(%(queues)s::text[]) AND workflow = ANY(%(workflows)s::text[])),
    (SELECT MIN(lease_expires_at) FROM stepstone.runs
     WHERE state = 'running' AND lease_expires_at > %(now)s
       AND queue = ANY(%(queues)s::text[]) AND workflow = ANY(%(workflows)s::text[]))
) AS wake_at;

-- name: lease_check
-- The fence: held until the transaction ends, so no claim can take the run over meanwhile.
SELECT control FROM stepstone.runs
WHERE run_id = %(run_id)s AND lease_token = %(token)s AND state = 'running'
FOR SHARE;

-- name: finish_run
-- completed, failed or cancelled: the lease and any control request end with the run.
WITH finished AS (
    UPDATE stepstone.runs SET
        state = %(state)s, output = %(output)s::text, error = %(error)s::text,
        finished_at = %(now)s, updated_at = %(now)s,
        lease_owner = NULL, lease_expires_at = NULL, control = NULL, waits = NULL, wake_at = NULL,
        state_data = COALESCE(%(state_data)s::text, state_data)
    WHERE run_id = %(run_id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM finished;

-- name: park_run
-- paused, blocked, suspended or handed back: the run keeps its journal and waits to be claimed.
WITH parked AS (
    UPDATE stepstone.runs SET
        state = %(state)s, error = %(error)s::text, waits = %(waits)s::json,
        wake_at = %(wake_at)s::timestamptz, updated_at = %(now)s,
        lease_owner = NULL, lease_expires_at = NULL, control = NULL,
        state_data = COALESCE(%(state_data)s::text, state_data)
    WHERE run_id = %(run_id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM parked;

-- name: wake_parent
-- The parent is locked even when it is not waiting (yet): a parent suspending on this child at
-- the same moment then sees the child finished, or is woken here once it has suspended.
WITH parent AS (
    SELECT run_id, state FROM stepstone.runs WHERE run_id = %(run_id)s FOR NO KEY UPDATE
), woken AS (
    UPDATE stepstone.runs r SET state = 'pending', wake_at = %(now)s, updated_at = %(now)s
    FROM parent p
    WHERE r.run_id = p.run_id AND p.state = 'waiting'
    RETURNING r.run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM woken;

-- name: signal_waiting
SELECT EXISTS (
    SELECT 1 FROM stepstone.signals
    WHERE run_id = %(run_id)s AND consumed_seq IS NULL AND problem IS NULL
      AND name = ANY(%(names)s::text[])
) AS found;

-- name: child_finished
SELECT EXISTS (
    SELECT 1 FROM stepstone.runs
    WHERE run_id = ANY(%(run_ids)s::text[]) AND state IN ('completed', 'failed', 'cancelled')
) AS found;

-- name: set_control
WITH changed AS (
    UPDATE stepstone.runs SET
        control = %(control)s::text, control_reason = %(reason)s::text, updated_at = %(now)s
    WHERE run_id = %(run_id)s AND state = 'running'
    RETURNING run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM changed;

-- name: set_state
-- An operator's change of a run that no worker holds, guarded by the state it was read in.
WITH changed AS (
    UPDATE stepstone.runs SET
        state = %(state)s, wake_at = %(wake_at)s::timestamptz,
        error = COALESCE(%(error)s::text, error),
        finished_at = %(finished_at)s::timestamptz, updated_at = %(now)s,
        lease_owner = NULL, lease_expires_at = NULL, control = NULL
    WHERE run_id = %(run_id)s AND state = %(expected)s
    RETURNING run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM changed;

-- name: descendants
WITH RECURSIVE tree (run_id) AS (
    SELECT run_id FROM stepstone.runs WHERE parent_run_id = %(run_id)s
    UNION
    SELECT r.run_id FROM stepstone.runs r JOIN tree t ON r.parent_run_id = t.run_id
)
SELECT r.run_id, r.state FROM stepstone.runs r JOIN tree t ON r.run_id = t.run_id
WHERE r.state NOT IN ('completed', 'failed', 'cancelled');

-- name: reset_for_retry
WITH reset AS (
    UPDATE stepstone.runs SET
        state = 'pending', wake_at = %(now)s, error = NULL, output = NULL, finished_at = NULL,
        recoveries = 0, control = NULL, control_reason = NULL, deadline_at = NULL,
        waits = NULL, updated_at = %(now)s
    WHERE run_id = %(run_id)s AND state = %(expected)s
    RETURNING run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM reset;

-- name: delete_failed_steps
DELETE FROM stepstone.steps
WHERE run_id = %(run_id)s AND status IN ('failed', 'started') AND seq = ANY(%(seqs)s::integer[]);

-- name: copy_steps
INSERT INTO stepstone.steps (
    run_id, seq, name, kind, status, output, error, attempts, started_at, finished_at
)
SELECT %(new_run_id)s, seq, name, kind, status, output, error, attempts, started_at, finished_at
FROM stepstone.steps
WHERE run_id = %(run_id)s AND seq < %(from_seq)s AND status IN ('completed', 'failed');

-- name: patch_step
UPDATE stepstone.steps SET output = %(output)s, status = 'completed', error = NULL
WHERE run_id = %(run_id)s AND seq = %(seq)s;

-- name: renew_leases
-- Only the runs the worker still executes: a lease it holds on a run whose execution ended
-- without closing its claim must expire, or the run would stay running for ever.
UPDATE stepstone.runs SET lease_expires_at = %(expires_at)s
WHERE run_id = ANY(%(run_ids)s::text[])
  AND lease_owner = %(owner)s AND state = 'running'
RETURNING run_id, lease_token, control;

-- name: load_steps
SELECT * FROM stepstone.steps WHERE run_id = %(run_id)s ORDER BY seq;

-- name: record_step
-- Fenced: written only while the run is running under this lease token, with the run row held
-- FOR SHARE until the write commits. A failed attempt (%(failed_attempt)s, a retrying step
-- record replaces the earlier one) is also logged as an event, so its error is kept. Returns the
-- control requested for the run (no row: the lease is gone and nothing was written).
WITH fence AS (
    SELECT control FROM stepstone.runs
    WHERE run_id = %(run_id)s AND lease_token = %(token)s AND state = 'running'
    FOR SHARE
), recorded AS (
    INSERT INTO stepstone.steps (
        run_id, seq, name, kind, status, output, error, attempts, started_at, finished_at
    )
    SELECT %(run_id)s, %(seq)s, %(name)s, %(kind)s, %(status)s, %(output)s::text,
           %(error)s::text, %(attempts)s, %(started_at)s::timestamptz,
           %(finished_at)s::timestamptz
    FROM fence
    ON CONFLICT (run_id, seq) DO UPDATE SET
        status = excluded.status, output = excluded.output, error = excluded.error,
        attempts = excluded.attempts,
        started_at = COALESCE(steps.started_at, excluded.started_at),
        finished_at = excluded.finished_at
), logged AS (
    INSERT INTO stepstone.events (run_id, idx, kind, data, source, created_at)
    SELECT %(run_id)s, NULL, 'attempt_failed', %(failed_attempt)s::text, 'system',
           %(finished_at)s::timestamptz
    FROM fence WHERE %(failed_attempt)s::text IS NOT NULL
)
SELECT control FROM fence;

-- name: record_step_if_absent
INSERT INTO stepstone.steps (
    run_id, seq, name, kind, status, output, error, attempts, started_at, finished_at
) VALUES (
    %(run_id)s, %(seq)s, %(name)s, %(kind)s, %(status)s, %(output)s::text, %(error)s::text,
    %(attempts)s, %(started_at)s::timestamptz, %(finished_at)s::timestamptz
)
ON CONFLICT (run_id, seq) DO NOTHING;

-- name: save_state
UPDATE stepstone.runs SET state_data = %(state_data)s
WHERE run_id = %(run_id)s AND lease_token = %(token)s;

-- name: insert_signal
-- Only for an unfinished run, which stays locked until the signal (and its wake-up) commits.
-- A payload refused at the door comes with its problem (and the wait that refused it, if any).
INSERT INTO stepstone.signals
    (run_id, name, payload, created_at, consumed_seq, consumed_at, problem)
SELECT run_id, %(name)s, %(payload)s, %(now)s, %(seq)s::integer, %(consumed_at)s::timestamptz,
    %(problem)s::text
FROM stepstone.runs
WHERE run_id = %(run_id)s AND state NOT IN ('completed', 'failed', 'cancelled')
FOR UPDATE
RETURNING signal_id;

-- name: wake_for_signal
WITH woken AS (
    UPDATE stepstone.runs SET state = 'pending', wake_at = %(now)s, updated_at = %(now)s
    WHERE run_id = %(run_id)s AND state = 'waiting'
      AND EXISTS (
          SELECT 1 FROM json_array_elements(runs.waits) AS w
          WHERE w ->> 'kind' = 'signal' AND w ->> 'name' = %(name)s::text
      )
    RETURNING run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM woken;

-- name: next_signal
-- The oldest unconsumed signal of this name, or the one this wait already consumed (a retry
-- after an unacknowledged commit must return the same payload, not take the next signal).
-- Rejected signals are never taken.
SELECT signal_id, payload, consumed_seq FROM stepstone.signals
WHERE run_id = %(run_id)s AND name = %(name)s
  AND (consumed_seq IS NULL OR consumed_seq = %(seq)s) AND problem IS NULL
ORDER BY consumed_seq IS NULL, signal_id
LIMIT 1
FOR UPDATE;

-- name: consume_signal
UPDATE stepstone.signals SET consumed_seq = %(seq)s, consumed_at = %(now)s
WHERE signal_id = %(signal_id)s;

-- name: reject_signal
-- Wait seq saw the signal and refused its payload: it stays on record, never taken.
UPDATE stepstone.signals
SET consumed_seq = %(seq)s, consumed_at = %(now)s, problem = %(problem)s
WHERE signal_id = %(signal_id)s;

-- name: list_signals
SELECT * FROM stepstone.signals WHERE run_id = %(run_id)s ORDER BY signal_id;

-- name: insert_event
-- User events (emitted by the run's code) wake listeners, so streams follow them at once.
WITH added AS (
    INSERT INTO stepstone.events (run_id, idx, kind, data, source, created_at)
    VALUES (%(run_id)s, %(idx)s, %(kind)s, %(data)s::text, %(source)s, %(now)s)
    ON CONFLICT DO NOTHING
    RETURNING source
)
SELECT pg_notify('stepstone', '') AS woke FROM added WHERE source = 'user';

-- name: read_events
SELECT * FROM stepstone.events
WHERE run_id = %(run_id)s AND event_id > %(after_id)s
ORDER BY event_id
LIMIT %(limit)s;

-- name: upsert_worker
INSERT INTO stepstone.workers (
    worker_id, host, pid, process_start, queues, concurrency, version, started_at, heartbeat_at,
    labels, pool, load, lease_s
) VALUES (
    %(worker_id)s, %(host)s, %(pid)s, %(process_start)s, %(queues)s::text[], %(concurrency)s,
    %(version)s, %(now)s, %(now)s, %(labels)s::jsonb, %(pool)s, %(load)s, %(lease_s)s
)
ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;

-- name: touch_worker
UPDATE stepstone.workers SET heartbeat_at = %(now)s, load = %(load)s
WHERE worker_id = %(worker_id)s;

-- name: delete_worker
DELETE FROM stepstone.workers WHERE worker_id = %(worker_id)s;

-- name: list_workers
SELECT * FROM stepstone.workers ORDER BY started_at;

-- name: release_worker_runs
WITH released AS (
    UPDATE stepstone.runs SET lease_expires_at = %(now)s
    WHERE lease_owner = %(worker_id)s AND state = 'running' AND lease_expires_at > %(now)s
    RETURNING run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM released;

-- name: unassign_worker_runs
-- Runs pinned or assigned to a dead worker go back to their pool or queue, never stranded.
-- Found through each column's own index (an OR of the two would need a bitmap scan, which the
-- store's sessions do not take) and checked again on the row being updated.
WITH pinned AS (
    SELECT run_id FROM stepstone.runs WHERE assigned_worker = %(worker_id)s
    UNION
    SELECT run_id FROM stepstone.runs WHERE target_worker = %(worker_id)s
), unassigned AS (
    UPDATE stepstone.runs r SET assigned_worker = NULL, target_worker = NULL, updated_at = %(now)s
    FROM pinned p
    WHERE r.run_id = p.run_id
      AND (r.assigned_worker = %(worker_id)s OR r.target_worker = %(worker_id)s)
      AND r.state NOT IN ('completed', 'failed', 'cancelled')
    RETURNING r.run_id
)
SELECT run_id, pg_notify('stepstone', '') AS woke FROM unassigned;

-- name: queue_stats
SELECT queue, state, count(*) AS n,
       MIN(CASE WHEN state = 'pending' AND wake_at <= %(now)s THEN wake_at END) AS oldest_due
FROM stepstone.runs WHERE state IN ('pending', 'sleeping', 'waiting') GROUP BY queue, state
UNION ALL
SELECT queue, state, count(*), NULL FROM stepstone.runs
WHERE lease_expires_at IS NOT NULL AND state = 'running'
GROUP BY queue, state
UNION ALL
SELECT queue, state, count(*), NULL FROM stepstone.runs WHERE state = 'paused'
GROUP BY queue, state
UNION ALL
SELECT queue, 'finished_' || state, count(*), NULL FROM stepstone.runs
WHERE finished_at > %(since)s GROUP BY queue, state;

-- name: purgeable_runs
SELECT run_id FROM stepstone.runs
WHERE finished_at < %(before)s AND state = ANY(%(states)s::text[])
LIMIT %(limit)s;

-- name: delete_runs
DELETE FROM stepstone.runs WHERE run_id = ANY(%(run_ids)s::text[]);

-- name: delete_finished_run
DELETE FROM stepstone.runs
WHERE run_id = %(run_id)s AND state IN ('completed', 'failed', 'cancelled');

-- name: delete_steps
DELETE FROM stepstone.steps WHERE run_id = ANY(%(run_ids)s::text[]);

-- name: delete_signals
DELETE FROM stepstone.signals WHERE run_id = ANY(%(run_ids)s::text[]);

-- name: delete_events
DELETE FROM stepstone.events WHERE run_id = ANY(%(run_ids)s::text[]);

-- name: delete_launches
DELETE FROM stepstone.launches WHERE run_id = ANY(%(run_ids)s::text[]);

-- name: delete_inbox
DELETE FROM stepstone.inbox WHERE run_id = ANY(%(run_ids)s::text[]);

-- name: export_runs
SELECT * FROM stepstone.runs
WHERE (%(after)s::text IS NULL OR run_id > %(after)s::text)
ORDER BY run_id
LIMIT %(limit)s;

-- name: export_steps
SELECT * FROM stepstone.steps WHERE run_id = ANY(%(run_ids)s::text[]) ORDER BY run_id, seq;

-- name: export_signals
SELECT * FROM stepstone.signals WHERE run_id = ANY(%(run_ids)s::text[]) ORDER BY signal_id;

-- name: export_events
SELECT * FROM stepstone.events WHERE run_id = ANY(%(run_ids)s::text[]) ORDER BY event_id;

-- name: export_ledger
SELECT * FROM stepstone.ledger WHERE run_id = ANY(%(run_ids)s::text[])
ORDER BY run_id, seq, created_at;

-- name: import_run
INSERT INTO stepstone.runs (
    run_id, workflow, version, state, input, output, error, queue, priority, control,
    control_reason, waits, wake_at, lease_owner, lease_expires_at, lease_token, recoveries,
    parent_run_id, parent_seq, deadline_at, state_data, forked_from, created_at, updated_at,
    started_at, finished_at, dedup_key, concurrency_key, labels, target_worker, pool,
    assigned_worker, retry_of, trace_context
) VALUES (
    %(run_id)s, %(workflow)s, %(version)s, %(state)s, %(input)s, %(output)s, %(error)s,
    %(queue)s, %(priority)s, %(control)s, %(control_reason)s, %(waits)s::json, %(wake_at)s,
    %(lease_owner)s, %(lease_expires_at)s, %(lease_token)s, %(recoveries)s, %(parent_run_id)s,
    %(parent_seq)s, %(deadline_at)s, %(state_data)s, %(forked_from)s, %(created_at)s,
    %(updated_at)s, %(started_at)s, %(finished_at)s, %(dedup_key)s, %(concurrency_key)s,
    %(labels)s::jsonb, %(target_worker)s, %(pool)s, %(assigned_worker)s, %(retry_of)s,
    %(trace_context)s
)
ON CONFLICT DO NOTHING;

-- name: import_signal
INSERT INTO stepstone.signals
    (run_id, name, payload, created_at, consumed_seq, consumed_at, problem)
VALUES (
    %(run_id)s, %(name)s, %(payload)s, %(created_at)s, %(consumed_seq)s, %(consumed_at)s,
    %(problem)s
);

-- name: import_event
INSERT INTO stepstone.events (run_id, idx, kind, data, source, created_at)
VALUES (%(run_id)s, %(idx)s, %(kind)s, %(data)s, %(source)s, %(created_at)s)
ON CONFLICT DO NOTHING;

-- name: insert_ledger
-- The priced model call of a step, in the transaction that records the step (after its fenced
-- write). The same write again (its commit unknown: same run, step and time) keeps the first
-- row; a step run again after `retry` (a new call) adds one.
INSERT INTO stepstone.ledger (
    run_id, seq, step, workflow, queue, model, input_tokens, output_tokens,
    cache_read_tokens, cache_write_tokens, cost_usd, latency_s, created_at, concurrency_key
) VALUES (
    %(run_id)s, %(seq)s, %(step)s, %(workflow)s, %(queue)s, %(model)s, %(input_tokens)s,
    %(output_tokens)s, %(cache_read_tokens)s::bigint, %(cache_write_tokens)s::bigint,
    %(cost_usd)s, %(latency_s)s, %(created_at)s, %(concurrency_key)s
)
ON CONFLICT (run_id, seq, created_at) DO NOTHING;

-- name: add_ledger_day
-- A new ledger row added to its day's sums (in the transaction that inserted it).
INSERT INTO stepstone.ledger_days AS d (day, workflow, queue, model, calls, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, latency_s)
VALUES ((%(created_at)s::timestamptz AT TIME ZONE 'UTC')::date, %(workflow)s, %(queue)s,
        %(model)s, 1, %(input_tokens)s, %(output_tokens)s,
        coalesce(%(cache_read_tokens)s::bigint, 0), coalesce(%(cache_write_tokens)s::bigint, 0),
        %(cost_usd)s, %(latency_s)s)
ON CONFLICT (day, workflow, queue, model) DO UPDATE SET
    calls = d.calls + 1,
    input_tokens = d.input_tokens + excluded.input_tokens,
    output_tokens = d.output_tokens + excluded.output_tokens,
    cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
    cost_usd = d.cost_usd + excluded.cost_usd,
    latency_s = d.latency_s + excluded.latency_s;

-- name: cost_rollup
-- The ledger added up, grouped by %(by)s ('model', 'workflow', 'day' in UTC; NULL: one total):
-- whole days from ledger_days (from %(first_day)s on), the rows of the partial day before it
-- (from %(since)s to %(first_day_at)s) from the ledger itself.
SELECT key,
       sum(calls)::bigint AS calls,
       sum(input_tokens)::bigint AS input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(cache_read_tokens)::bigint AS cache_read_tokens,
       sum(cache_write_tokens)::bigint AS cache_write_tokens,
       sum(cost_usd) AS cost_usd,
       sum(latency_s) AS latency_s
FROM (
    SELECT CASE %(by)s::text WHEN 'model' THEN model WHEN 'workflow' THEN workflow
                WHEN 'day' THEN to_char(day, 'YYYY-MM-DD') END AS key,
           calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
           cost_usd, latency_s
    FROM stepstone.ledger_days
    WHERE day >= %(first_day)s::date
      AND (%(workflow)s::text IS NULL OR workflow = %(workflow)s::text)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
    UNION ALL
    SELECT CASE %(by)s::text WHEN 'model' THEN model WHEN 'workflow' THEN workflow
                WHEN 'day' THEN to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') END,
           1, input_tokens, output_tokens, coalesce(cache_read_tokens, 0),
           coalesce(cache_write_tokens, 0), cost_usd, latency_s
    FROM stepstone.ledger
    WHERE created_at >= %(since)s::timestamptz AND created_at < %(first_day_at)s::timestamptz
      AND (%(workflow)s::text IS NULL OR workflow = %(workflow)s::text)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
) AS parts
GROUP BY 1
HAVING sum(calls) > 0
ORDER BY cost_usd DESC, key;

-- name: cost_of_run
-- One run's ledger rows added up (its primary key prefix), grouped by %(by)s.
SELECT CASE %(by)s::text WHEN 'model' THEN model WHEN 'workflow' THEN workflow
                WHEN 'day' THEN to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') END AS key,
       count(*) AS calls,
       coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
       coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
       coalesce(sum(cache_read_tokens), 0)::bigint AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0)::bigint AS cache_write_tokens,
       coalesce(sum(cost_usd), 0.0) AS cost_usd,
       coalesce(sum(latency_s), 0.0) AS latency_s
FROM stepstone.ledger
WHERE run_id = %(run_id)s
  AND (%(workflow)s::text IS NULL OR workflow = %(workflow)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND created_at >= %(since)s::timestamptz
GROUP BY 1
HAVING count(*) > 0
ORDER BY cost_usd DESC, key;

-- name: set_budget
INSERT INTO stepstone.budgets
    (scope, name, usd, tokens, alerts, downgrade_at, period_s, on_limit, updated_at)
VALUES (%(scope)s, %(name)s, %(usd)s::double precision, %(tokens)s::bigint, %(alerts)s,
        %(downgrade_at)s::double precision, %(period_s)s::double precision, %(on_limit)s,
        %(now)s)
ON CONFLICT (scope, name) DO UPDATE SET
    usd = excluded.usd, tokens = excluded.tokens, alerts = excluded.alerts,
    downgrade_at = excluded.downgrade_at, period_s = excluded.period_s,
    on_limit = excluded.on_limit, updated_at = excluded.updated_at;

-- name: delete_budget
DELETE FROM stepstone.budgets WHERE scope = %(scope)s AND name = %(name)s;

-- name: list_budgets
SELECT * FROM stepstone.budgets ORDER BY scope, name;

-- name: budgets_for
-- The budgets a model call of this run counts against.
SELECT * FROM stepstone.budgets
WHERE (scope = 'run' AND name = %(run_id)s) OR (scope = 'workflow' AND name = %(workflow)s)
   OR (scope = 'queue' AND name = %(queue)s) OR (scope = 'key' AND name = %(key)s::text);

-- name: spent_by_run
SELECT coalesce(sum(cost_usd), 0.0) AS usd,
       coalesce(sum(input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                    + coalesce(cache_write_tokens, 0)), 0)::bigint AS tokens
FROM stepstone.ledger WHERE run_id = %(name)s AND created_at >= %(since)s;

-- name: spent_by_key
-- A concurrency key's calls (its budgets are rate limits: short periods, few rows).
SELECT coalesce(sum(cost_usd), 0.0) AS usd,
       coalesce(sum(input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                    + coalesce(cache_write_tokens, 0)), 0)::bigint AS tokens
FROM stepstone.ledger WHERE concurrency_key = %(name)s AND created_at >= %(since)s;

-- name: spent_by_workflow
-- Whole days from ledger_days, the partial day before them from the ledger.
SELECT coalesce(sum(usd), 0.0) AS usd, coalesce(sum(tokens), 0)::bigint AS tokens
FROM (
    SELECT cost_usd AS usd,
           input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
    FROM stepstone.ledger_days WHERE workflow = %(name)s AND day >= %(first_day)s::date
    UNION ALL
    SELECT cost_usd, input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                     + coalesce(cache_write_tokens, 0)
    FROM stepstone.ledger
    WHERE workflow = %(name)s AND created_at >= %(since)s AND created_at < %(first_day_at)s
) AS parts;

-- name: spent_by_queue
-- Whole days from ledger_days, the partial day before them from the ledger.
SELECT coalesce(sum(usd), 0.0) AS usd, coalesce(sum(tokens), 0)::bigint AS tokens
FROM (
    SELECT cost_usd AS usd,
           input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
    FROM stepstone.ledger_days WHERE queue = %(name)s AND day >= %(first_day)s::date
    UNION ALL
    SELECT cost_usd, input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                     + coalesce(cache_write_tokens, 0)
    FROM stepstone.ledger
    WHERE queue = %(name)s AND created_at >= %(since)s AND created_at < %(first_day_at)s
) AS parts;

-- name: insert_schedule
INSERT INTO stepstone.schedules (
    name, workflow, cron, timezone, input, overlap, catchup, jitter_s, queue, paused,
    next_fire_at, last_tick_at, last_run_id, buffered_at, created_at, updated_at
) VALUES (
    %(name)s, %(workflow)s, %(cron)s, %(timezone)s, %(input)s, %(overlap)s, %(catchup)s,
    %(jitter_s)s, %(queue)s, %(paused)s, %(next_fire_at)s, %(last_tick_at)s, %(last_run_id)s,
    %(buffered_at)s, %(created_at)s, %(updated_at)s
)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: redefine_schedule
UPDATE stepstone.schedules SET
    workflow = %(workflow)s, cron = %(cron)s, timezone = %(timezone)s, input = %(input)s,
    overlap = %(overlap)s, catchup = %(catchup)s, jitter_s = %(jitter_s)s, queue = %(queue)s,
    next_fire_at = %(next_fire_at)s, buffered_at = NULL, updated_at = %(updated_at)s
WHERE name = %(name)s
RETURNING *;

-- name: get_schedule
SELECT * FROM stepstone.schedules WHERE name = %(name)s;

-- name: list_schedules
SELECT * FROM stepstone.schedules ORDER BY name;

-- name: set_schedule_paused
UPDATE stepstone.schedules
SET paused = %(paused)s, next_fire_at = %(next_fire_at)s, updated_at = %(now)s
WHERE name = %(name)s
RETURNING *;

-- name: delete_schedule
DELETE FROM stepstone.schedules WHERE name = %(name)s;

-- name: due_schedules
-- Schedules of these workflows with a tick due, or a tick held back by buffer_one; locked so
-- that another firer skips them (it fires the others) instead of waiting.
SELECT * FROM stepstone.schedules
WHERE NOT paused AND (next_fire_at <= %(now)s OR buffered_at IS NOT NULL)
  AND workflow = ANY(%(workflows)s::text[])
ORDER BY next_fire_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: next_schedule_due
-- When a schedule of these workflows is next due (now, while one holds back a tick).
SELECT MIN(CASE WHEN buffered_at IS NOT NULL THEN %(now)s::timestamptz ELSE next_fire_at END)
       AS due
FROM stepstone.schedules
WHERE NOT paused AND workflow = ANY(%(workflows)s::text[]);

-- name: advance_schedule
-- Only from the next fire time this firing read: a firing that lost a race changes nothing.
UPDATE stepstone.schedules SET
    next_fire_at = %(next_fire_at)s, last_tick_at = %(last_tick_at)s,
    last_run_id = %(last_run_id)s, buffered_at = %(buffered_at)s, updated_at = %(now)s
WHERE name = %(name)s AND next_fire_at IS NOT DISTINCT FROM %(expected)s::timestamptz;

-- name: create_tick_runs
-- The runs of many schedule ticks at once (one array per column); the tick is the run's id and
-- dedup key, so a tick whose run exists is skipped. Returns the runs created; wakes the workers.
WITH created AS (
    INSERT INTO stepstone.runs (
        run_id, workflow, version, state, input, queue, priority, wake_at, created_at,
        updated_at, dedup_key
    )
    SELECT t.run_id, t.workflow, t.version, 'pending', t.input, t.queue, t.priority, t.wake_at,
           %(now)s, %(now)s, t.run_id
    FROM unnest(
        %(run_id_list)s::text[], %(workflow_list)s::text[], %(version_list)s::text[],
        %(input_list)s::text[], %(queue_list)s::text[], %(priority_list)s::integer[],
        %(wake_at_list)s::timestamptz[]
    ) AS t(run_id, workflow, version, input, queue, priority, wake_at)
    ON CONFLICT DO NOTHING
    RETURNING run_id
)
SELECT created.run_id, (SELECT pg_notify('stepstone', '')) AS woke FROM created;

-- name: advance_schedules
-- advance_schedule for many schedules at once (one array per column).
UPDATE stepstone.schedules AS s SET
    next_fire_at = a.next_fire_at, last_tick_at = a.last_tick_at, last_run_id = a.last_run_id,
    updated_at = %(now)s
FROM unnest(
    %(name_list)s::text[], %(expected_list)s::timestamptz[], %(next_fire_at_list)s::timestamptz[],
    %(last_tick_at_list)s::timestamptz[], %(last_run_id_list)s::text[]
) AS a(name, expected, next_fire_at, last_tick_at, last_run_id)
WHERE s.name = a.name AND s.next_fire_at IS NOT DISTINCT FROM a.expected;

-- name: record_launch
-- A run started by `stepstone launch`: its outcomes go to the inbox. Written before the run.
INSERT INTO stepstone.launches (run_id, skill, budget_usd, launched_at)
VALUES (%(run_id)s, %(skill)s, %(budget_usd)s, %(now)s)
ON CONFLICT DO NOTHING;

-- name: launch_child
-- A child of a launched run is marked with the launched run it comes from (see record_outcome).
INSERT INTO stepstone.launches (run_id, skill, budget_usd, launched_at, via)
SELECT %(child_id)s, skill, NULL, %(now)s, COALESCE(via, run_id)
FROM stepstone.launches WHERE run_id = %(run_id)s
ON CONFLICT DO NOTHING;

-- name: record_outcome
-- One inbox row for an outcome of a launched run (nothing for other runs), in the transaction
-- of the state change; a child of a launched run (`via`) only when it waits for a human or is
-- paused by a budget. The summary and level are the run's latest ctx.notify since its previous
-- row, else the outcome's own.
INSERT INTO stepstone.inbox
    (run_id, skill, outcome, mark, level, summary, notify_event_id, created_at)
SELECT l.run_id, l.skill, %(outcome)s, %(mark)s,
       COALESCE(n.data::jsonb ->> 'level', %(level)s),
       CASE WHEN l.via IS NULL THEN '' ELSE 'child run of ' || l.via || ': ' END
       || COALESCE(n.data::jsonb ->> 'summary', %(summary)s),
       n.event_id, %(now)s
FROM stepstone.launches l
LEFT JOIN LATERAL (
    SELECT event_id, data FROM stepstone.events
    WHERE run_id = %(run_id)s AND kind = %(notify_kind)s AND source = 'user'
      AND event_id > COALESCE(
          (SELECT MAX(notify_event_id) FROM stepstone.inbox WHERE run_id = %(run_id)s), 0)
    ORDER BY event_id DESC LIMIT 1
) n ON true
WHERE l.run_id = %(run_id)s AND (l.via IS NULL OR %(outcome)s IN ('waiting', 'paused'))
ON CONFLICT DO NOTHING;

-- name: list_inbox
-- Unread first (oldest first), then read ones, newest first.
(SELECT * FROM stepstone.inbox WHERE read_at IS NULL ORDER BY item_id LIMIT %(limit)s)
UNION ALL
(SELECT * FROM stepstone.inbox WHERE %(all)s AND read_at IS NOT NULL
 ORDER BY item_id DESC LIMIT %(limit)s);

-- name: server_now
SELECT clock_timestamp() AS now;

-- name: count_unread
SELECT COUNT(*) AS n FROM stepstone.inbox WHERE read_at IS NULL;

-- name: dismiss_inbox
UPDATE stepstone.inbox SET read_at = %(now)s
WHERE read_at IS NULL AND (%(run_id)s::text IS NULL OR run_id = %(run_id)s::text);

-- name: get_memory
-- One memory document (ctx.memory), with its version and the step that last wrote it.
SELECT scope, owner, key, value, version, run_id, seq, updated_at
FROM stepstone.memory WHERE scope = %(scope)s AND owner = %(owner)s AND key = %(key)s;

-- name: create_memory
-- The first write of a document read as absent (version 0): nothing if another write won.
INSERT INTO stepstone.memory (scope, owner, key, value, version, run_id, seq, updated_at)
VALUES (%(scope)s, %(owner)s, %(key)s, %(value)s, 1, %(run_id)s, %(seq)s, %(now)s)
ON CONFLICT DO NOTHING;

-- name: update_memory
-- Compare-and-set: the write lands only on the version the writer read.
UPDATE stepstone.memory
SET value = %(value)s, version = version + 1, run_id = %(run_id)s, seq = %(seq)s,
    updated_at = %(now)s
WHERE scope = %(scope)s AND owner = %(owner)s AND key = %(key)s AND version = %(expected)s;

-- name: put_memory
-- A write that does not depend on a read (last writer wins); the new version.
INSERT INTO stepstone.memory AS m (scope, owner, key, value, version, run_id, seq, updated_at)
VALUES (%(scope)s, %(owner)s, %(key)s, %(value)s, 1, %(run_id)s, %(seq)s, %(now)s)
ON CONFLICT (scope, owner, key) DO UPDATE
SET value = excluded.value, version = m.version + 1, run_id = excluded.run_id,
    seq = excluded.seq, updated_at = excluded.updated_at
RETURNING version;

-- name: delete_memory
DELETE FROM stepstone.memory
WHERE scope = %(scope)s AND owner = %(owner)s AND key = %(key)s;

-- name: list_memory
-- Documents by scope, then owner (either may be null: any), then key.
SELECT scope, owner, key, value, version, run_id, seq, updated_at
FROM stepstone.memory
WHERE (%(scope)s::text IS NULL OR scope = %(scope)s)
  AND (%(owner)s::text IS NULL OR owner = %(owner)s)
ORDER BY scope, owner, key
LIMIT %(limit)s;

-- name: import_memory
-- A copied document as it was (`db copy`); one already here is kept.
INSERT INTO stepstone.memory (scope, owner, key, value, version, run_id, seq, updated_at)
VALUES (%(scope)s, %(owner)s, %(key)s, %(value)s, %(version)s, %(run_id)s, %(seq)s, %(now)s)
ON CONFLICT DO NOTHING;

-- name: export_launches
SELECT * FROM stepstone.launches WHERE run_id = ANY(%(run_ids)s::text[]);

-- name: export_inbox
SELECT * FROM stepstone.inbox WHERE run_id = ANY(%(run_ids)s::text[]) ORDER BY item_id;

-- name: import_launch
INSERT INTO stepstone.launches (run_id, skill, budget_usd, launched_at, via)
VALUES (%(run_id)s, %(skill)s, %(budget_usd)s::double precision, %(launched_at)s, %(via)s)
ON CONFLICT DO NOTHING;

-- name: import_inbox
-- A copied item; one whose summary came from a ctx.notify points at the run's latest.
INSERT INTO stepstone.inbox
    (run_id, skill, outcome, mark, level, summary, notify_event_id, created_at, read_at)
VALUES (%(run_id)s, %(skill)s, %(outcome)s, %(mark)s, %(level)s, %(summary)s,
        CASE WHEN %(notified)s THEN (SELECT MAX(event_id) FROM stepstone.events
                                     WHERE run_id = %(run_id)s AND kind = %(notify_kind)s) END,
        %(created_at)s, %(read_at)s)
ON CONFLICT DO NOTHING;

-- name: queue_throughput
-- Runs finished per queue in each of the equal slices of [since, since + buckets * width),
-- completed and failed apart (the dashboard's throughput over time).
SELECT queue, state,
       floor(extract(epoch FROM finished_at - %(since)s::timestamptz) / %(width)s)::int AS bucket,
       count(*) AS n
FROM stepstone.runs
WHERE finished_at >= %(since)s AND state IN ('completed', 'failed')
GROUP BY queue, state, bucket;

-- name: acquire_lease
-- One statement decides: the lease is inserted, or taken over when it expired, when this holder
-- has it already (a renewal: a retried acquire is one), or when its holder is the one the caller
-- found dead (`replacing`). A row comes back only when the caller holds the lease now; when it
-- does not, the conflicting row stays locked until the transaction ends (ON CONFLICT locks it),
-- so the read that follows sees who holds it.
INSERT INTO stepstone.leases AS l (name, holder, acquired_at, renewed_at, expires_at)
VALUES (%(name)s, %(holder)s, %(now)s, %(now)s, %(expires_at)s)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    acquired_at = CASE WHEN l.holder = excluded.holder
                       THEN l.acquired_at ELSE excluded.acquired_at END,
    renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
WHERE l.expires_at <= %(now)s OR l.holder = %(holder)s OR l.holder = %(replacing)s::text
RETURNING name, holder, acquired_at, renewed_at, expires_at;

-- name: renew_lease
UPDATE stepstone.leases SET renewed_at = %(now)s, expires_at = %(expires_at)s
WHERE name = %(name)s AND holder = %(holder)s;

-- name: release_lease
DELETE FROM stepstone.leases WHERE name = %(name)s AND holder = %(holder)s;

-- name: get_lease
SELECT name, holder, acquired_at, renewed_at, expires_at FROM stepstone.leases
WHERE name = %(name)s;
