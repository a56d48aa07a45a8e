-- stepstone schema 2: routing (dedup keys, concurrency keys, labels, target workers, pools),
-- stored queue limits and pool strategies, dead-letter housekeeping, the worker registry.

ALTER TABLE runs ADD COLUMN dedup_key TEXT;
ALTER TABLE runs ADD COLUMN concurrency_key TEXT;
ALTER TABLE runs ADD COLUMN labels TEXT;
ALTER TABLE runs ADD COLUMN target_worker TEXT;
ALTER TABLE runs ADD COLUMN pool TEXT;
ALTER TABLE runs ADD COLUMN assigned_worker TEXT;
ALTER TABLE runs ADD COLUMN retry_of TEXT;

-- One unfinished run per dedup key; a finished run leaves the index and frees its key.
CREATE UNIQUE INDEX runs_dedup ON runs (dedup_key)
    WHERE dedup_key IS NOT NULL AND state NOT IN ('completed', 'failed', 'cancelled');
-- Queue statistics (throughput) and purging read finished runs by finish time.
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
-- Runs waiting for one worker (target or pool assignment), to release them when it dies.
CREATE INDEX runs_by_worker ON runs (assigned_worker) WHERE assigned_worker IS NOT NULL;

ALTER TABLE workers ADD COLUMN labels TEXT;
ALTER TABLE workers ADD COLUMN pool TEXT;
ALTER TABLE workers ADD COLUMN load INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN lease_s REAL NOT NULL DEFAULT 30;

CREATE TABLE queues (
    name                 TEXT PRIMARY KEY,
    concurrency          INTEGER,
    per_key_concurrency  INTEGER,
    rate_limit           INTEGER,
    rate_period_s        REAL,
    rate_limit_per_key   INTEGER NOT NULL DEFAULT 0,
    updated_at           REAL NOT NULL
);

-- First starts of runs of rate-limited queues, pruned past the longest period.
CREATE TABLE queue_starts (
    queue       TEXT NOT NULL,
    key         TEXT,
    started_at  REAL NOT NULL
);
CREATE INDEX queue_starts_by_queue ON queue_starts (queue, started_at);

CREATE TABLE pools (
    name         TEXT PRIMARY KEY,
    strategy     TEXT NOT NULL,
    threshold    REAL NOT NULL,
    last_worker  TEXT,
    updated_at   REAL NOT NULL
);
