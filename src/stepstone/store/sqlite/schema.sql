-- The stepstone SQLite schema as all migrations leave it (a snapshot, tested equal to them).

CREATE TABLE stepstone_schema (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
);


CREATE TABLE runs (
    run_id            TEXT PRIMARY KEY,
    workflow          TEXT NOT NULL,
    version           TEXT NOT NULL,
    state             TEXT NOT NULL,
    input             TEXT NOT NULL,
    output            TEXT,
    error             TEXT,
    queue             TEXT NOT NULL DEFAULT 'default',
    priority          INTEGER NOT NULL DEFAULT 0,
    control           TEXT,
    control_reason    TEXT,
    waits             TEXT,
    wake_at           REAL,
    lease_owner       TEXT,
    lease_expires_at  REAL,
    lease_token       INTEGER NOT NULL DEFAULT 0,
    recoveries        INTEGER NOT NULL DEFAULT 0,
    parent_run_id     TEXT,
    parent_seq        INTEGER,
    deadline_at       REAL,
    state_data        TEXT,
    forked_from       TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    dedup_key         TEXT,
    concurrency_key   TEXT,
    labels            TEXT,
    target_worker     TEXT,
    pool              TEXT,
    assigned_worker   TEXT,
    retry_of          TEXT,
    trace_context     TEXT
);

-- The claim path reads only these two narrow partial indexes. Every index is written on each
-- run's creation and state changes, so the others are few: recent runs, the runs that need an
-- operator (failed, blocked, paused), and children by parent.
CREATE INDEX runs_due ON runs (wake_at) WHERE state IN ('pending', 'sleeping', 'waiting');
CREATE INDEX runs_leased ON runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_attention ON runs (created_at) WHERE state IN ('failed', 'blocked', 'paused');
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE UNIQUE INDEX runs_dedup ON runs (dedup_key)
    WHERE dedup_key IS NOT NULL AND state NOT IN ('completed', 'failed', 'cancelled');
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_by_worker ON runs (assigned_worker) WHERE assigned_worker IS NOT NULL;
CREATE INDEX runs_by_target ON runs (target_worker) WHERE target_worker IS NOT NULL;

CREATE TABLE steps (
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    output       TEXT,
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 1,
    started_at   REAL,
    finished_at  REAL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE signals (
    signal_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT NOT NULL,
    name          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    REAL NOT NULL,
    consumed_seq  INTEGER,
    consumed_at   REAL,
    problem       TEXT
);
CREATE INDEX signals_by_run ON signals (run_id, name, signal_id);

CREATE TABLE events (
    event_id    INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    idx         INTEGER,
    kind        TEXT NOT NULL,
    data        TEXT,
    source      TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, event_id);
CREATE UNIQUE INDEX events_user_idx ON events (run_id, idx) WHERE idx IS NOT NULL;

CREATE TABLE workers (
    worker_id      TEXT PRIMARY KEY,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    process_start  TEXT,
    queues         TEXT NOT NULL,
    concurrency    INTEGER NOT NULL,
    version        TEXT,
    started_at     REAL NOT NULL,
    heartbeat_at   REAL NOT NULL,
    labels         TEXT,
    pool           TEXT,
    load           INTEGER NOT NULL DEFAULT 0,
    lease_s        REAL NOT NULL DEFAULT 30
);
CREATE INDEX workers_by_host ON workers (host);

CREATE TABLE queues (
    name                 TEXT PRIMARY KEY,
    concurrency          INTEGER,
    per_key_concurrency  INTEGER,
    rate_limit           INTEGER,
    rate_period_s        REAL,
    rate_limit_per_key   INTEGER NOT NULL DEFAULT 0,
    updated_at           REAL NOT NULL
);

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

-- Schedules: a cron definition and where its firing is (next tick, run held back by
-- overlap=buffer_one).
CREATE TABLE schedules (
    name          TEXT PRIMARY KEY,
    workflow      TEXT NOT NULL,
    cron          TEXT NOT NULL,
    timezone      TEXT NOT NULL,
    input         TEXT NOT NULL,
    overlap       TEXT NOT NULL,
    catchup       TEXT NOT NULL,
    jitter_s      REAL NOT NULL DEFAULT 0,
    queue         TEXT,
    paused        INTEGER NOT NULL DEFAULT 0,
    next_fire_at  REAL,
    last_tick_at  REAL,
    last_run_id   TEXT,
    buffered_at   REAL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0;

CREATE TABLE ledger (
    run_id              TEXT NOT NULL,
    seq                 INTEGER NOT NULL,
    step                TEXT NOT NULL,
    workflow            TEXT NOT NULL,
    queue               TEXT NOT NULL,
    model               TEXT NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER,
    cache_write_tokens  INTEGER,
    cost_usd            REAL NOT NULL,
    latency_s           REAL NOT NULL,
    created_at          REAL NOT NULL,
    concurrency_key     TEXT,
    PRIMARY KEY (run_id, seq, created_at)
);
CREATE INDEX ledger_by_time ON ledger (created_at);
CREATE INDEX ledger_by_workflow ON ledger (workflow, created_at);
CREATE INDEX ledger_by_queue ON ledger (queue, created_at);
CREATE INDEX ledger_by_key ON ledger (concurrency_key, created_at)
    WHERE concurrency_key IS NOT NULL;

CREATE TABLE budgets (
    scope         TEXT NOT NULL,
    name          TEXT NOT NULL,
    usd           REAL,
    tokens        INTEGER,
    alerts        TEXT NOT NULL,
    downgrade_at  REAL,
    period_s      REAL,
    on_limit      TEXT NOT NULL DEFAULT 'pause',
    updated_at    REAL NOT NULL,
    PRIMARY KEY (scope, name)
);

-- The desk's inbox: launched runs, and one row per outcome of each (see migration inbox).
CREATE TABLE launches (
    run_id       TEXT PRIMARY KEY,
    skill        TEXT NOT NULL,
    budget_usd   REAL,
    launched_at  REAL NOT NULL,
    via          TEXT
) WITHOUT ROWID;

CREATE TABLE inbox (
    item_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL,
    skill            TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    mark             INTEGER NOT NULL,
    level            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    notify_event_id  INTEGER,
    created_at       REAL NOT NULL,
    read_at          REAL
);
CREATE UNIQUE INDEX inbox_once ON inbox (run_id, outcome, mark);
CREATE INDEX inbox_unread ON inbox (item_id) WHERE read_at IS NULL;

-- Durable memory (ctx.memory): see migration memory.
CREATE TABLE memory (
    scope       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    run_id      TEXT,
    seq         INTEGER,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (scope, owner, key)
) WITHOUT ROWID;

-- The ledger added up per UTC day, workflow, queue and model (see migration memory_ledger_days).
CREATE TABLE ledger_days (
    day                 TEXT NOT NULL,
    workflow            TEXT NOT NULL,
    queue               TEXT NOT NULL,
    model               TEXT NOT NULL,
    calls               INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    cost_usd            REAL NOT NULL,
    latency_s           REAL NOT NULL,
    PRIMARY KEY (day, workflow, queue, model)
) WITHOUT ROWID;
CREATE INDEX ledger_days_by_workflow ON ledger_days (workflow, day);
CREATE INDEX ledger_days_by_queue ON ledger_days (queue, day);

-- Leases on names, a lock in the store (the skills daemon's): see migration leases.
CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    acquired_at  REAL NOT NULL,
    renewed_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
) WITHOUT ROWID;
