-- Every statement the SQLite store runs, as named blocks (same names in every dialect).
-- Times are REAL epoch seconds; :now is always passed in, never read from the database clock.

-- name: create_schema_table
CREATE TABLE IF NOT EXISTS stepstone_schema (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
);

-- name: schema_version
SELECT COALESCE(MAX(version), 0) FROM stepstone_schema;

-- name: has_schema_table
SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'stepstone_schema';

-- name: count_tables
SELECT COUNT(*) FROM sqlite_master WHERE type = 'table';

-- name: record_migration
INSERT INTO stepstone_schema (version, name, applied_at) VALUES (:version, :name, :now);

-- name: create_run
INSERT INTO runs (
    run_id, workflow, version, state, input, queue, priority, wake_at, deadline_at,
    parent_run_id, parent_seq, forked_from, created_at, updated_at,
    lease_owner, lease_expires_at, lease_token, started_at, state_data,
    dedup_key, concurrency_key, labels, target_worker, pool, assigned_worker, retry_of,
    trace_context
) VALUES (
    :run_id, :workflow, :version, :state, :input, :queue, :priority, :wake_at, :deadline_at,
    :parent_run_id, :parent_seq, :forked_from, :now, :now,
    :lease_owner, :lease_expires_at, :lease_token, :started_at, :state_data,
    :dedup_key, :concurrency_key, :labels, :target_worker, :pool, :assigned_worker, :retry_of,
    :trace_context
)
ON CONFLICT (run_id) DO NOTHING
RETURNING *;

-- name: find_dedup
SELECT * FROM runs
WHERE dedup_key = :dedup_key AND state NOT IN ('completed', 'failed', 'cancelled');

-- name: get_run
SELECT * FROM runs WHERE run_id = :run_id;

-- name: list_runs
SELECT * FROM runs
WHERE (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:workflow IS NULL OR workflow = :workflow)
  AND (:queue IS NULL OR queue = :queue)
  AND (:parent_run_id IS NULL OR parent_run_id = :parent_run_id)
  AND (:labels IS NULL OR NOT EXISTS (
      SELECT 1 FROM json_each(:labels) AS want
      WHERE want.value IS NOT (
          SELECT have.value FROM json_each(runs.labels) AS have WHERE have.key = want.key)))
  AND (:before IS NULL OR created_at < (SELECT created_at FROM runs WHERE run_id = :before)
       OR (created_at = (SELECT created_at FROM runs WHERE run_id = :before) AND run_id < :before))
ORDER BY created_at DESC, run_id DESC
LIMIT :limit;

-- name: list_children
-- A parent's children (describe) through runs_by_parent: given the parent as list_runs's optional
-- filter, the planner walks runs_by_created instead, all of it (376 ms on a store of 1M runs).
SELECT * FROM runs
WHERE parent_run_id = :parent_run_id
ORDER BY created_at DESC, run_id DESC
LIMIT :limit;

-- name: find_claimable
-- Due runs first by priority then by how long they have been due; expired leases are due too.
-- Routing (labels, target or assigned worker, pool) filters both; the queues and keys that are
-- at their concurrency or rate limit filter only new work (:due_queues, :full_queues with
-- :full_keys), since a recovery takes no new slot. `limited`: the run's queue has stored limits
-- (then the claim counts them before taking any). Only finds: SQLite takes the candidates with
-- claim_run (:take, :retry, :expires_at and :event are PostgreSQL's).
SELECT run_id AS candidate, state AS candidate_state, queue AS candidate_queue,
       concurrency_key AS candidate_key, started_at IS NULL AS candidate_first_start,
       limited FROM (
    SELECT run_id, state, queue, concurrency_key, started_at, priority, wake_at AS due,
           EXISTS (
               SELECT 1 FROM queues q WHERE q.name = runs.queue
                 AND (q.concurrency IS NOT NULL OR q.per_key_concurrency IS NOT NULL
                      OR q.rate_limit IS NOT NULL)) AS limited
    FROM runs
    WHERE state IN ('pending', 'sleeping', 'waiting') AND wake_at <= :now
      AND queue IN (SELECT value FROM json_each(:due_queues))
      AND workflow IN (SELECT value FROM json_each(:workflows))
      AND (target_worker IS NULL OR target_worker = :worker_id)
      AND (assigned_worker IS NULL OR assigned_worker = :worker_id)
      AND (pool IS NULL OR pool = :pool)
      AND (labels IS NULL OR NOT EXISTS (
          SELECT 1 FROM json_each(runs.labels) AS need
          WHERE need.value IS NOT (
              SELECT have.value FROM json_each(:labels) AS have WHERE have.key = need.key)))
      AND (concurrency_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM json_each(:full_queues) AS fq JOIN json_each(:full_keys) AS fk
            ON fk.key = fq.key
          WHERE fq.value = runs.queue AND fk.value = runs.concurrency_key))
    UNION ALL
    SELECT run_id, state, queue, concurrency_key, started_at, priority, lease_expires_at AS due,
           0 AS limited
    FROM runs
    WHERE state = 'running' AND lease_expires_at <= :now
      AND queue IN (SELECT value FROM json_each(:queues))
      AND workflow IN (SELECT value FROM json_each(:workflows))
      AND (target_worker IS NULL OR target_worker = :worker_id)
      AND (pool IS NULL OR pool = :pool)
      AND (labels IS NULL OR NOT EXISTS (
          SELECT 1 FROM json_each(runs.labels) AS need
          WHERE need.value IS NOT (
              SELECT have.value FROM json_each(:labels) AS have WHERE have.key = need.key)))
)
ORDER BY priority DESC, due
LIMIT :limit;

-- name: running_counts
-- Executing runs per queue and concurrency key, for the queues that have limits.
SELECT queue, concurrency_key, COUNT(*) AS n FROM runs
WHERE state = 'running' AND queue IN (SELECT value FROM json_each(:queues))
GROUP BY queue, concurrency_key;

-- name: recent_starts
SELECT queue, key, started_at FROM queue_starts
WHERE queue IN (SELECT value FROM json_each(:queues)) AND started_at > :since;

-- name: record_start
INSERT INTO queue_starts (queue, key, started_at) VALUES (:queue, :key, :now);

-- name: prune_starts
DELETE FROM queue_starts WHERE queue = :queue AND started_at <= :before;

-- name: get_queues
-- The limited queues among these.
SELECT * FROM queues
WHERE name IN (SELECT value FROM json_each(:names))
  AND (concurrency IS NOT NULL OR per_key_concurrency IS NOT NULL OR rate_limit IS NOT NULL)
ORDER BY name;

-- name: list_queues
SELECT * FROM queues ORDER BY name;

-- name: upsert_queue
INSERT INTO queues (
    name, concurrency, per_key_concurrency, rate_limit, rate_period_s, rate_limit_per_key,
    updated_at
) VALUES (
    :name, :concurrency, :per_key_concurrency, :rate_limit, :rate_period_s, :rate_limit_per_key,
    :now
)
ON CONFLICT (name) DO UPDATE SET
    concurrency = excluded.concurrency, per_key_concurrency = excluded.per_key_concurrency,
    rate_limit = excluded.rate_limit, rate_period_s = excluded.rate_period_s,
    rate_limit_per_key = excluded.rate_limit_per_key, updated_at = excluded.updated_at;

-- name: get_pool
SELECT * FROM pools WHERE name = :name;

-- name: list_pools
SELECT * FROM pools ORDER BY name;

-- name: upsert_pool
INSERT INTO pools (name, strategy, threshold, updated_at)
VALUES (:name, :strategy, :threshold, :now)
ON CONFLICT (name) DO UPDATE SET
    strategy = excluded.strategy, threshold = excluded.threshold, updated_at = excluded.updated_at;

-- name: set_pool_cursor
UPDATE pools SET last_worker = :worker_id WHERE name = :name;

-- name: pool_workers
-- Live workers of a pool with their load: the runs they hold a lease on (counted here, since the
-- load a worker reports lags its claims by up to a heartbeat) or their reported load if higher,
-- plus the runs assigned to them and not yet claimed.
SELECT w.worker_id, w.concurrency,
       MAX(w.load, (SELECT COUNT(*) FROM runs h
                    WHERE h.state = 'running' AND h.lease_expires_at IS NOT NULL
                      AND h.lease_owner = w.worker_id))
       + (SELECT COUNT(*) FROM runs r
          WHERE r.assigned_worker = w.worker_id
            AND r.state IN ('pending', 'sleeping', 'waiting')) AS load
FROM workers w
WHERE w.pool = :pool AND w.heartbeat_at + w.lease_s >= :now
ORDER BY w.worker_id;

-- name: has_claimable
SELECT EXISTS (
    SELECT 1 FROM runs
    WHERE state IN ('pending', 'sleeping', 'waiting') AND wake_at <= :now
      AND queue IN (SELECT value FROM json_each(:queues))
      AND workflow IN (SELECT value FROM json_each(:workflows))
) OR EXISTS (
    SELECT 1 FROM runs
    WHERE state = 'running' AND lease_expires_at <= :now
      AND queue IN (SELECT value FROM json_each(:queues))
      AND workflow IN (SELECT value FROM json_each(:workflows))
) AS found;

-- name: claim_run
-- Take these runs if they are still claimable (an expired lease counts as a recovery). RETURNING
-- sees only the new row: the claim script knows each run's prior state from its candidate and
-- logs the claim itself.
UPDATE runs SET
    recoveries = recoveries + (CASE WHEN state = 'running' THEN 1 ELSE 0 END),
    state = 'running',
    lease_owner = :owner,
    lease_expires_at = :expires_at,
    lease_token = lease_token + 1,
    started_at = COALESCE(started_at, :now),
    updated_at = :now,
    wake_at = NULL,
    waits = NULL
WHERE run_id IN (SELECT value FROM json_each(:run_ids))
  AND ((state IN ('pending', 'sleeping', 'waiting') AND wake_at <= :now)
       OR (state = 'running' AND lease_expires_at <= :now))
RETURNING *;

-- name: next_wake_at
SELECT MIN(t) AS wake_at FROM (
    SELECT MIN(wake_at) AS t FROM runs
    WHERE state IN ('pending', 'sleeping', 'waiting') AND wake_at > :now
      AND queue IN (SELECT value FROM json_each(:queues))
      AND workflow IN (SELECT value FROM json_each(:workflows))
    UNION ALL
    SELECT MIN(lease_expires_at) FROM runs
    WHERE state = 'running' AND lease_expires_at > :now
      AND queue IN (SELECT value FROM json_each(:queues))
      AND workflow IN (SELECT value FROM json_each(:workflows))
);

-- name: lease_check
SELECT control FROM runs WHERE run_id = :run_id AND lease_token = :token AND state = 'running';

-- name: finish_run
-- completed, failed or cancelled: the lease and any control request end with the run.
UPDATE runs SET
    state = :state, output = :output, error = :error, finished_at = :now, updated_at = :now,
    lease_owner = NULL, lease_expires_at = NULL, control = NULL, waits = NULL, wake_at = NULL,
    state_data = COALESCE(:state_data, state_data)
WHERE run_id = :run_id AND lease_token = :token AND state = 'running';

-- name: park_run
-- paused, blocked, suspended or handed back: the run keeps its journal and waits to be claimed.
UPDATE runs SET
    state = :state, error = :error, waits = :waits, wake_at = :wake_at, updated_at = :now,
    lease_owner = NULL, lease_expires_at = NULL, control = NULL,
    state_data = COALESCE(:state_data, state_data)
WHERE run_id = :run_id AND lease_token = :token AND state = 'running';

-- name: wake_parent
UPDATE runs SET state = 'pending', wake_at = :now, updated_at = :now
WHERE run_id = :run_id AND state = 'waiting';

-- name: signal_waiting
SELECT EXISTS (
    SELECT 1 FROM signals
    WHERE run_id = :run_id AND consumed_seq IS NULL AND problem IS NULL
      AND name IN (SELECT value FROM json_each(:names))
) AS found;

-- name: child_finished
SELECT EXISTS (
    SELECT 1 FROM runs
    WHERE run_id IN (SELECT value FROM json_each(:run_ids))
      AND state IN ('completed', 'failed', 'cancelled')
) AS found;

-- name: set_control
UPDATE runs SET control = :control, control_reason = :reason, updated_at = :now
WHERE run_id = :run_id AND state = 'running';

-- name: set_state
-- An operator's change of a run that no worker holds, guarded by the state it was read in.
UPDATE runs SET
    state = :state, wake_at = :wake_at, error = COALESCE(:error, error),
    finished_at = :finished_at, updated_at = :now,
    lease_owner = NULL, lease_expires_at = NULL, control = NULL
WHERE run_id = :run_id AND state = :expected;

-- name: descendants
WITH RECURSIVE tree (run_id) AS (
    SELECT run_id FROM runs WHERE parent_run_id = :run_id
    UNION
    SELECT r.run_id FROM runs r JOIN tree t ON r.parent_run_id = t.run_id
)
SELECT r.run_id, r.state FROM runs r JOIN tree t ON r.run_id = t.run_id
WHERE r.state NOT IN ('completed', 'failed', 'cancelled');

-- name: reset_for_retry
UPDATE runs SET
    state = 'pending', wake_at = :now, error = NULL, output = NULL, finished_at = NULL,
    recoveries = 0, control = NULL, control_reason = NULL, deadline_at = NULL,
    waits = NULL, updated_at = :now
WHERE run_id = :run_id AND state = :expected;

-- name: delete_failed_steps
DELETE FROM steps
WHERE run_id = :run_id AND status IN ('failed', 'started')
  AND seq IN (SELECT value FROM json_each(:seqs));

-- name: copy_steps
INSERT INTO steps (run_id, seq, name, kind, status, output, error, attempts, started_at, finished_at)
SELECT :new_run_id, seq, name, kind, status, output, error, attempts, started_at, finished_at
FROM steps
WHERE run_id = :run_id AND seq < :from_seq AND status IN ('completed', 'failed');

-- name: patch_step
UPDATE steps SET output = :output, status = 'completed', error = NULL
WHERE run_id = :run_id AND seq = :seq;

-- name: renew_leases
-- Only the runs the worker still executes: a lease it holds on a run whose execution ended
-- without closing its claim must expire, or the run would stay running for ever.
UPDATE runs SET lease_expires_at = :expires_at
WHERE run_id IN (SELECT value FROM json_each(:run_ids))
  AND lease_owner = :owner AND state = 'running'
RETURNING run_id, lease_token, control;

-- name: load_steps
SELECT * FROM steps WHERE run_id = :run_id ORDER BY seq;

-- name: record_step
-- Fenced: written only while the run is running under this lease token.
INSERT INTO steps (run_id, seq, name, kind, status, output, error, attempts, started_at, finished_at)
SELECT :run_id, :seq, :name, :kind, :status, :output, :error, :attempts, :started_at, :finished_at
FROM runs WHERE run_id = :run_id AND lease_token = :token AND state = 'running'
ON CONFLICT (run_id, seq) DO UPDATE SET
    status = excluded.status, output = excluded.output, error = excluded.error,
    attempts = excluded.attempts, started_at = COALESCE(steps.started_at, excluded.started_at),
    finished_at = excluded.finished_at
RETURNING (SELECT control FROM runs WHERE run_id = :run_id) AS control;

-- name: record_step_if_absent
INSERT INTO steps (run_id, seq, name, kind, status, output, error, attempts, started_at, finished_at)
VALUES (:run_id, :seq, :name, :kind, :status, :output, :error, :attempts, :started_at, :finished_at)
ON CONFLICT (run_id, seq) DO NOTHING;

-- name: save_state
UPDATE runs SET state_data = :state_data WHERE run_id = :run_id AND lease_token = :token;

-- name: insert_signal
-- Only for an unfinished run. A payload refused at the door comes with its :problem (and the
-- wait that refused it, if any: :seq).
INSERT INTO signals (run_id, name, payload, created_at, consumed_seq, consumed_at, problem)
SELECT run_id, :name, :payload, :now, :seq, :consumed_at, :problem FROM runs
WHERE run_id = :run_id AND state NOT IN ('completed', 'failed', 'cancelled')
RETURNING signal_id;

-- name: wake_for_signal
UPDATE runs SET state = 'pending', wake_at = :now, updated_at = :now
WHERE run_id = :run_id AND state = 'waiting'
  AND EXISTS (
      SELECT 1 FROM json_each(runs.waits)
      WHERE json_extract(value, '$.kind') = 'signal' AND json_extract(value, '$.name') = :name
  );

-- name: next_signal
-- The oldest unconsumed signal of this name (same shape as PostgreSQL's, whose retried wait
-- finds again the one it consumed: :seq). Rejected signals are never taken.
SELECT signal_id, payload, consumed_seq FROM signals
WHERE run_id = :run_id AND name = :name AND (consumed_seq IS NULL OR consumed_seq = :seq)
  AND problem IS NULL
ORDER BY consumed_seq IS NULL, signal_id
LIMIT 1;

-- name: consume_signal
UPDATE signals SET consumed_seq = :seq, consumed_at = :now WHERE signal_id = :signal_id;

-- name: reject_signal
-- Wait :seq saw the signal and refused its payload: it stays on record, never taken.
UPDATE signals SET consumed_seq = :seq, consumed_at = :now, problem = :problem
WHERE signal_id = :signal_id;

-- name: list_signals
SELECT * FROM signals WHERE run_id = :run_id ORDER BY signal_id;

-- name: insert_event
INSERT INTO events (run_id, idx, kind, data, source, created_at)
VALUES (:run_id, :idx, :kind, :data, :source, :now)
ON CONFLICT DO NOTHING;

-- name: read_events
SELECT * FROM events WHERE run_id = :run_id AND event_id > :after_id ORDER BY event_id LIMIT :limit;

-- name: upsert_worker
INSERT INTO workers (
    worker_id, host, pid, process_start, queues, concurrency, version, started_at, heartbeat_at,
    labels, pool, load, lease_s
) VALUES (
    :worker_id, :host, :pid, :process_start, :queues, :concurrency, :version, :now, :now,
    :labels, :pool, :load, :lease_s
)
ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;

-- name: touch_worker
UPDATE workers SET heartbeat_at = :now, load = :load WHERE worker_id = :worker_id;

-- name: delete_worker
DELETE FROM workers WHERE worker_id = :worker_id;

-- name: list_workers
SELECT * FROM workers ORDER BY started_at;

-- name: release_worker_runs
UPDATE runs SET lease_expires_at = :now
WHERE lease_owner = :worker_id AND state = 'running' AND lease_expires_at > :now;

-- name: unassign_worker_runs
-- Runs pinned or assigned to a dead worker go back to their pool or queue, never stranded.
UPDATE runs SET assigned_worker = NULL, target_worker = NULL, updated_at = :now
WHERE (assigned_worker = :worker_id OR target_worker = :worker_id)
  AND state NOT IN ('completed', 'failed', 'cancelled');

-- name: queue_stats
SELECT queue, state, COUNT(*) AS n,
       MIN(CASE WHEN state = 'pending' AND wake_at <= :now THEN wake_at END) AS oldest_due
FROM runs WHERE state IN ('pending', 'sleeping', 'waiting') GROUP BY queue, state
UNION ALL
SELECT queue, state, COUNT(*), NULL FROM runs WHERE state = 'running' GROUP BY queue, state
UNION ALL
SELECT queue, state, COUNT(*), NULL FROM runs
WHERE state IN ('failed', 'blocked', 'paused') AND state = 'paused' GROUP BY queue, state
UNION ALL
SELECT queue, 'finished_' || state, COUNT(*), NULL FROM runs
WHERE finished_at > :since GROUP BY queue, state;

-- name: purgeable_runs
SELECT run_id FROM runs
WHERE finished_at < :before AND state IN (SELECT value FROM json_each(:states))
LIMIT :limit;

-- name: delete_runs
DELETE FROM runs WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: delete_finished_run
DELETE FROM runs WHERE run_id = :run_id AND state IN ('completed', 'failed', 'cancelled');

-- name: delete_steps
DELETE FROM steps WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: delete_signals
DELETE FROM signals WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: delete_events
DELETE FROM events WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: delete_launches
DELETE FROM launches WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: delete_inbox
DELETE FROM inbox WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: export_runs
SELECT * FROM runs
WHERE (:after IS NULL OR run_id > :after)
ORDER BY run_id
LIMIT :limit;

-- name: export_steps
SELECT * FROM steps WHERE run_id IN (SELECT value FROM json_each(:run_ids)) ORDER BY run_id, seq;

-- name: export_signals
SELECT * FROM signals WHERE run_id IN (SELECT value FROM json_each(:run_ids)) ORDER BY signal_id;

-- name: export_events
SELECT * FROM events WHERE run_id IN (SELECT value FROM json_each(:run_ids)) ORDER BY event_id;

-- name: export_ledger
SELECT * FROM ledger WHERE run_id IN (SELECT value FROM json_each(:run_ids))
ORDER BY run_id, seq, created_at;

-- name: import_run
INSERT INTO runs (
    run_id, workflow, version, state, input, output, error, queue, priority, control,
    control_reason, waits, wake_at, lease_owner, lease_expires_at, lease_token, recoveries,
    parent_run_id, parent_seq, deadline_at, state_data, forked_from, created_at, updated_at,
    started_at, finished_at, dedup_key, concurrency_key, labels, target_worker, pool,
    assigned_worker, retry_of, trace_context
) VALUES (
    :run_id, :workflow, :version, :state, :input, :output, :error, :queue, :priority, :control,
    :control_reason, :waits, :wake_at, :lease_owner, :lease_expires_at, :lease_token, :recoveries,
    :parent_run_id, :parent_seq, :deadline_at, :state_data, :forked_from, :created_at,
    :updated_at, :started_at, :finished_at, :dedup_key, :concurrency_key, :labels,
    :target_worker, :pool, :assigned_worker, :retry_of, :trace_context
)
ON CONFLICT DO NOTHING;

-- name: import_signal
INSERT INTO signals (run_id, name, payload, created_at, consumed_seq, consumed_at, problem)
VALUES (:run_id, :name, :payload, :created_at, :consumed_seq, :consumed_at, :problem);

-- name: import_event
INSERT INTO events (run_id, idx, kind, data, source, created_at)
VALUES (:run_id, :idx, :kind, :data, :source, :created_at)
ON CONFLICT DO NOTHING;

-- name: insert_ledger
-- The priced model call of a step, in the transaction that records the step (after its fenced
-- write). The same write again (a retried transaction: same run, step and time) keeps the first
-- row; a step run again after `retry` (a new call) adds one.
INSERT INTO ledger (run_id, seq, step, workflow, queue, model, input_tokens, output_tokens,
                    cache_read_tokens, cache_write_tokens, cost_usd, latency_s, created_at,
                    concurrency_key)
VALUES (:run_id, :seq, :step, :workflow, :queue, :model, :input_tokens, :output_tokens,
        :cache_read_tokens, :cache_write_tokens, :cost_usd, :latency_s, :created_at,
        :concurrency_key)
ON CONFLICT (run_id, seq, created_at) DO NOTHING;

-- name: add_ledger_day
-- A new ledger row added to its day's sums (in the transaction that inserted it).
INSERT INTO ledger_days AS d (day, workflow, queue, model, calls, input_tokens, output_tokens,
                              cache_read_tokens, cache_write_tokens, cost_usd, latency_s)
VALUES (date(:created_at, 'unixepoch'), :workflow, :queue, :model, 1, :input_tokens,
        :output_tokens, coalesce(:cache_read_tokens, 0), coalesce(:cache_write_tokens, 0),
        :cost_usd, :latency_s)
ON CONFLICT (day, workflow, queue, model) DO UPDATE SET
    calls = d.calls + 1,
    input_tokens = d.input_tokens + excluded.input_tokens,
    output_tokens = d.output_tokens + excluded.output_tokens,
    cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
    cost_usd = d.cost_usd + excluded.cost_usd,
    latency_s = d.latency_s + excluded.latency_s;

-- name: cost_rollup
-- The ledger added up, grouped by :by ('model', 'workflow', 'day' in UTC; NULL: one total):
-- whole days from ledger_days (from :first_day on), the rows of the partial day before it
-- (from :since to :first_day_at) from the ledger itself.
SELECT key,
       sum(calls) AS calls,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cache_read_tokens) AS cache_read_tokens,
       sum(cache_write_tokens) AS cache_write_tokens,
       sum(cost_usd) AS cost_usd,
       sum(latency_s) AS latency_s
FROM (
    SELECT CASE :by WHEN 'model' THEN model WHEN 'workflow' THEN workflow
                    WHEN 'day' THEN day END AS key,
           calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
           cost_usd, latency_s
    FROM ledger_days
    WHERE day >= :first_day
      AND (:workflow IS NULL OR workflow = :workflow)
      AND (:queue IS NULL OR queue = :queue)
    UNION ALL
    SELECT CASE :by WHEN 'model' THEN model WHEN 'workflow' THEN workflow
                    WHEN 'day' THEN date(created_at, 'unixepoch') END,
           1, input_tokens, output_tokens, coalesce(cache_read_tokens, 0),
           coalesce(cache_write_tokens, 0), cost_usd, latency_s
    FROM ledger
    WHERE created_at >= :since AND created_at < :first_day_at
      AND (:workflow IS NULL OR workflow = :workflow)
      AND (:queue IS NULL OR queue = :queue)
)
GROUP BY 1
HAVING sum(calls) > 0
ORDER BY cost_usd DESC, key;

-- name: cost_of_run
-- One run's ledger rows added up (its primary key prefix), grouped by :by.
SELECT CASE :by WHEN 'model' THEN model WHEN 'workflow' THEN workflow
                WHEN 'day' THEN date(created_at, 'unixepoch') END AS key,
       count(*) AS calls,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
       coalesce(sum(cost_usd), 0.0) AS cost_usd,
       coalesce(sum(latency_s), 0.0) AS latency_s
FROM ledger
WHERE run_id = :run_id
  AND (:workflow IS NULL OR workflow = :workflow)
  AND (:queue IS NULL OR queue = :queue)
  AND created_at >= :since
GROUP BY 1
HAVING count(*) > 0
ORDER BY cost_usd DESC, key;

-- name: set_budget
INSERT INTO budgets
    (scope, name, usd, tokens, alerts, downgrade_at, period_s, on_limit, updated_at)
VALUES (:scope, :name, :usd, :tokens, :alerts, :downgrade_at, :period_s, :on_limit, :now)
ON CONFLICT (scope, name) DO UPDATE SET
    usd = excluded.usd, tokens = excluded.tokens, alerts = excluded.alerts,
    downgrade_at = excluded.downgrade_at, period_s = excluded.period_s,
    on_limit = excluded.on_limit, updated_at = excluded.updated_at;

-- name: delete_budget
DELETE FROM budgets WHERE scope = :scope AND name = :name;

-- name: list_budgets
SELECT * FROM budgets ORDER BY scope, name;

-- name: budgets_for
-- The budgets a model call of this run counts against.
SELECT * FROM budgets
WHERE (scope = 'run' AND name = :run_id) OR (scope = 'workflow' AND name = :workflow)
   OR (scope = 'queue' AND name = :queue) OR (scope = 'key' AND name = :key);

-- name: spent_by_run
SELECT coalesce(sum(cost_usd), 0.0) AS usd,
       coalesce(sum(input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                    + coalesce(cache_write_tokens, 0)), 0) AS tokens
FROM ledger WHERE run_id = :name AND created_at >= :since;

-- name: spent_by_key
-- A concurrency key's calls (its budgets are rate limits: short periods, few rows).
SELECT coalesce(sum(cost_usd), 0.0) AS usd,
       coalesce(sum(input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                    + coalesce(cache_write_tokens, 0)), 0) AS tokens
FROM ledger WHERE concurrency_key = :name AND created_at >= :since;

-- name: spent_by_workflow
-- Whole days from ledger_days, the partial day before them from the ledger.
SELECT coalesce(sum(usd), 0.0) AS usd, coalesce(sum(tokens), 0) AS tokens
FROM (
    SELECT cost_usd AS usd,
           input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
    FROM ledger_days WHERE workflow = :name AND day >= :first_day
    UNION ALL
    SELECT cost_usd, input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                     + coalesce(cache_write_tokens, 0)
    FROM ledger WHERE workflow = :name AND created_at >= :since AND created_at < :first_day_at
);

-- name: spent_by_queue
-- Whole days from ledger_days, the partial day before them from the ledger.
SELECT coalesce(sum(usd), 0.0) AS usd, coalesce(sum(tokens), 0) AS tokens
FROM (
    SELECT cost_usd AS usd,
           input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
    FROM ledger_days WHERE queue = :name AND day >= :first_day
    UNION ALL
    SELECT cost_usd, input_tokens + output_tokens + coalesce(cache_read_tokens, 0)
                     + coalesce(cache_write_tokens, 0)
    FROM ledger WHERE queue = :name AND created_at >= :since AND created_at < :first_day_at
);

-- name: insert_schedule
INSERT INTO schedules (
    name, workflow, cron, timezone, input, overlap, catchup, jitter_s, queue, paused,
    next_fire_at, last_tick_at, last_run_id, buffered_at, created_at, updated_at
) VALUES (
    :name, :workflow, :cron, :timezone, :input, :overlap, :catchup, :jitter_s, :queue, :paused,
    :next_fire_at, :last_tick_at, :last_run_id, :buffered_at, :created_at, :updated_at
)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: redefine_schedule
UPDATE schedules SET
    workflow = :workflow, cron = :cron, timezone = :timezone, input = :input,
    overlap = :overlap, catchup = :catchup, jitter_s = :jitter_s, queue = :queue,
    next_fire_at = :next_fire_at, buffered_at = NULL, updated_at = :updated_at
WHERE name = :name
RETURNING *;

-- name: get_schedule
SELECT * FROM schedules WHERE name = :name;

-- name: list_schedules
SELECT * FROM schedules ORDER BY name;

-- name: set_schedule_paused
UPDATE schedules SET paused = :paused, next_fire_at = :next_fire_at, updated_at = :now
WHERE name = :name
RETURNING *;

-- name: delete_schedule
DELETE FROM schedules WHERE name = :name;

-- name: due_schedules
-- Schedules of these workflows with a tick due, or a tick held back by buffer_one.
SELECT * FROM schedules
WHERE paused = 0 AND (next_fire_at <= :now OR buffered_at IS NOT NULL)
  AND workflow IN (SELECT value FROM json_each(:workflows))
ORDER BY next_fire_at
LIMIT :limit;

-- name: next_schedule_due
-- When a schedule of these workflows is next due (now, while one holds back a tick).
SELECT MIN(CASE WHEN buffered_at IS NOT NULL THEN :now ELSE next_fire_at END) AS due
FROM schedules
WHERE paused = 0 AND workflow IN (SELECT value FROM json_each(:workflows));

-- name: advance_schedule
-- Only from the next fire time this firing read: a firing that lost a race changes nothing.
UPDATE schedules SET
    next_fire_at = :next_fire_at, last_tick_at = :last_tick_at, last_run_id = :last_run_id,
    buffered_at = :buffered_at, updated_at = :now
WHERE name = :name AND next_fire_at IS :expected;

-- name: create_tick_runs
-- The runs of many schedule ticks at once (:ticks, a JSON list of objects); the tick is the run's
-- id and dedup key, so a tick whose run exists is skipped. Returns the runs created.
INSERT INTO runs (
    run_id, workflow, version, state, input, queue, priority, wake_at, created_at, updated_at,
    dedup_key
)
SELECT t.value ->> 'run_id', t.value ->> 'workflow', t.value ->> 'version', 'pending',
       t.value ->> 'input', t.value ->> 'queue', t.value ->> 'priority', t.value ->> 'wake_at',
       :now, :now, t.value ->> 'run_id'
FROM json_each(:ticks) AS t
WHERE true
ON CONFLICT DO NOTHING
RETURNING run_id;

-- name: advance_schedules
-- advance_schedule for many schedules at once (:advances, a JSON list of objects).
UPDATE schedules SET
    next_fire_at = a.value ->> 'next_fire_at', last_tick_at = a.value ->> 'last_tick_at',
    last_run_id = a.value ->> 'last_run_id', updated_at = :now
FROM json_each(:advances) AS a
WHERE schedules.name = a.value ->> 'name'
  AND schedules.next_fire_at IS a.value ->> 'expected';

-- name: record_launch
-- A run started by `stepstone launch`: its outcomes go to the inbox. Written before the run.
INSERT INTO launches (run_id, skill, budget_usd, launched_at)
VALUES (:run_id, :skill, :budget_usd, :now)
ON CONFLICT DO NOTHING;

-- name: launch_child
-- A child of a launched run is marked with the launched run it comes from (see record_outcome).
INSERT INTO launches (run_id, skill, budget_usd, launched_at, via)
SELECT :child_id, skill, NULL, :now, COALESCE(via, run_id) FROM launches WHERE run_id = :run_id
ON CONFLICT DO NOTHING;

-- name: record_outcome
-- One inbox row for an outcome of a launched run (nothing for other runs), in the transaction
-- of the state change; a child of a launched run (`via`) only when it waits for a human or is
-- paused by a budget. The summary and level are the run's latest ctx.notify since its previous
-- row, else the outcome's own.
INSERT INTO inbox (run_id, skill, outcome, mark, level, summary, notify_event_id, created_at)
SELECT l.run_id, l.skill, :outcome, :mark,
       COALESCE(json_extract(n.data, '$.level'), :level),
       CASE WHEN l.via IS NULL THEN '' ELSE 'child run of ' || l.via || ': ' END
       || COALESCE(json_extract(n.data, '$.summary'), :summary),
       n.event_id, :now
FROM launches l
LEFT JOIN (
    SELECT event_id, data FROM events
    WHERE run_id = :run_id AND kind = :notify_kind AND source = 'user'
      AND event_id > COALESCE(
          (SELECT MAX(notify_event_id) FROM inbox WHERE run_id = :run_id), 0)
    ORDER BY event_id DESC LIMIT 1
) n ON 1
WHERE l.run_id = :run_id AND (l.via IS NULL OR :outcome IN ('waiting', 'paused'))
ON CONFLICT DO NOTHING;

-- name: list_inbox
-- Unread first (oldest first), then read ones, newest first.
SELECT * FROM (
    SELECT * FROM inbox WHERE read_at IS NULL ORDER BY item_id LIMIT :limit
)
UNION ALL
SELECT * FROM (
    SELECT * FROM inbox WHERE :all AND read_at IS NOT NULL ORDER BY item_id DESC LIMIT :limit
);

-- name: server_now
SELECT (julianday('now') - 2440587.5) * 86400.0 AS now;

-- name: count_unread
SELECT COUNT(*) AS n FROM inbox WHERE read_at IS NULL;

-- name: dismiss_inbox
UPDATE inbox SET read_at = :now
WHERE read_at IS NULL AND (:run_id IS NULL OR run_id = :run_id);

-- name: get_memory
-- One memory document (ctx.memory), with its version and the step that last wrote it.
SELECT scope, owner, key, value, version, run_id, seq, updated_at
FROM memory WHERE scope = :scope AND owner = :owner AND key = :key;

-- name: create_memory
-- The first write of a document read as absent (version 0): nothing if another write won.
INSERT INTO memory (scope, owner, key, value, version, run_id, seq, updated_at)
VALUES (:scope, :owner, :key, :value, 1, :run_id, :seq, :now)
ON CONFLICT DO NOTHING;

-- name: update_memory
-- Compare-and-set: the write lands only on the version the writer read.
UPDATE memory
SET value = :value, version = version + 1, run_id = :run_id, seq = :seq, updated_at = :now
WHERE scope = :scope AND owner = :owner AND key = :key AND version = :expected;

-- name: put_memory
-- A write that does not depend on a read (last writer wins); the new version.
INSERT INTO memory (scope, owner, key, value, version, run_id, seq, updated_at)
VALUES (:scope, :owner, :key, :value, 1, :run_id, :seq, :now)
ON CONFLICT (scope, owner, key) DO UPDATE
SET value = excluded.value, version = memory.version + 1, run_id = excluded.run_id,
    seq = excluded.seq, updated_at = excluded.updated_at
RETURNING version;

-- name: delete_memory
DELETE FROM memory WHERE scope = :scope AND owner = :owner AND key = :key;

-- name: list_memory
-- Documents by scope, then owner (either may be null: any), then key.
SELECT scope, owner, key, value, version, run_id, seq, updated_at
FROM memory
WHERE (:scope IS NULL OR scope = :scope) AND (:owner IS NULL OR owner = :owner)
ORDER BY scope, owner, key
LIMIT :limit;

-- name: import_memory
-- A copied document as it was (`db copy`); one already here is kept.
INSERT INTO memory (scope, owner, key, value, version, run_id, seq, updated_at)
VALUES (:scope, :owner, :key, :value, :version, :run_id, :seq, :now)
ON CONFLICT DO NOTHING;

-- name: export_launches
SELECT * FROM launches WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: export_inbox
SELECT * FROM inbox WHERE run_id IN (SELECT value FROM json_each(:run_ids)) ORDER BY item_id;

-- name: import_launch
INSERT INTO launches (run_id, skill, budget_usd, launched_at, via)
VALUES (:run_id, :skill, :budget_usd, :launched_at, :via)
ON CONFLICT DO NOTHING;

-- name: import_inbox
-- A copied item; one whose summary came from a ctx.notify points at the run's latest.
INSERT INTO inbox (run_id, skill, outcome, mark, level, summary, notify_event_id, created_at,
                   read_at)
VALUES (:run_id, :skill, :outcome, :mark, :level, :summary,
        CASE WHEN :notified THEN (SELECT MAX(event_id) FROM events
                                  WHERE run_id = :run_id AND kind = :notify_kind) END,
        :created_at, :read_at)
ON CONFLICT DO NOTHING;

-- name: queue_throughput
-- Runs finished per queue in each of :buckets equal slices of [since, since + buckets * width),
-- completed and failed apart (the dashboard's throughput over time).
SELECT queue, state, CAST((finished_at - :since) / :width AS INTEGER) AS bucket,
       COUNT(*) AS n
FROM runs
WHERE finished_at >= :since AND state IN ('completed', 'failed')
GROUP BY queue, state, bucket;

-- name: acquire_lease
-- One statement decides: the lease is inserted, or taken over when it expired, when this holder
-- has it already (a renewal: a retried acquire is one), or when its holder is the one the caller
-- found dead (`replacing`). A row comes back only when the caller holds the lease now.
INSERT INTO leases (name, holder, acquired_at, renewed_at, expires_at)
VALUES (:name, :holder, :now, :now, :expires_at)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    acquired_at = CASE WHEN leases.holder = excluded.holder
                       THEN leases.acquired_at ELSE excluded.acquired_at END,
    renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
WHERE leases.expires_at <= :now OR leases.holder = :holder OR leases.holder = :replacing
RETURNING name, holder, acquired_at, renewed_at, expires_at;

-- name: renew_lease
UPDATE leases SET renewed_at = :now, expires_at = :expires_at
WHERE name = :name AND holder = :holder;

-- name: release_lease
DELETE FROM leases WHERE name = :name AND holder = :holder;

-- name: get_lease
SELECT name, holder, acquired_at, renewed_at, expires_at FROM leases WHERE name = :name;
