-- The stepstone PostgreSQL schema as all migrations leave it (a snapshot, tested equal to them).

CREATE SCHEMA stepstone;

CREATE TABLE stepstone.migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL
);

CREATE TABLE stepstone.runs (
    run_id            text COLLATE "C" PRIMARY KEY,
    workflow          text NOT NULL,
    version           text NOT NULL,
    state             text NOT NULL,
    input             text NOT NULL,
    output            text,
    error             text,
    queue             text NOT NULL DEFAULT 'default',
    priority          integer NOT NULL DEFAULT 0,
    control           text,
    control_reason    text,
    waits             json,
    wake_at           timestamptz,
    lease_owner       text,
    lease_expires_at  timestamptz,
    lease_token       bigint NOT NULL DEFAULT 0,
    recoveries        integer NOT NULL DEFAULT 0,
    parent_run_id     text,
    parent_seq        integer,
    deadline_at       timestamptz,
    state_data        text,
    forked_from       text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    retry_of          text,
    dedup_key         text,
    concurrency_key   text,
    labels            jsonb,
    target_worker     text,
    pool              text,
    assigned_worker   text,
    trace_context     text,
    CONSTRAINT runs_state_known CHECK (state IN (
        'pending', 'running', 'sleeping', 'waiting', 'paused', 'blocked',
        'completed', 'failed', 'cancelled'
    )),
    CONSTRAINT runs_control_known CHECK (control IN ('cancel', 'pause'))
);

-- The claim path reads only the narrow partial indexes over claimable states: due runs in claim
-- order (priority, then how long they have been due), the same set by due time alone (the next
-- timer), and running runs by lease expiry and by holder (heartbeats). Each index is written on
-- every state change, so the others are few: recent runs, the runs that need an operator, and
-- children by parent.
CREATE INDEX runs_due ON stepstone.runs (priority DESC, wake_at)
    WHERE state IN ('pending', 'sleeping', 'waiting');
CREATE INDEX runs_timers ON stepstone.runs (wake_at) WHERE state IN ('sleeping', 'waiting');
-- leases are set exactly while a run is running; a predicate on them (not on the state) keeps
-- the step-write fence, which filters on state, on the primary key
CREATE INDEX runs_leased ON stepstone.runs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX runs_by_owner ON stepstone.runs (lease_owner) WHERE lease_owner IS NOT NULL;
-- partial on a predicate only list_runs states: no whole-table index but the primary key
CREATE INDEX runs_by_created ON stepstone.runs (created_at, run_id) WHERE created_at IS NOT NULL;
CREATE INDEX runs_attention ON stepstone.runs (created_at)
    WHERE state IN ('failed', 'blocked', 'paused');
CREATE INDEX runs_by_parent ON stepstone.runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
-- One unfinished run per dedup key; a finished run leaves the index and frees its key.
CREATE UNIQUE INDEX runs_dedup ON stepstone.runs (dedup_key)
    WHERE dedup_key IS NOT NULL AND state NOT IN ('completed', 'failed', 'cancelled');
-- Queue statistics (throughput) and purging read finished runs by finish time.
CREATE INDEX runs_finished ON stepstone.runs (finished_at) WHERE finished_at IS NOT NULL;
-- Runs waiting for one worker (target or pool assignment), to release them when it dies.
CREATE INDEX runs_by_worker ON stepstone.runs (assigned_worker) WHERE assigned_worker IS NOT NULL;
CREATE INDEX runs_by_target ON stepstone.runs (target_worker) WHERE target_worker IS NOT NULL;

CREATE TABLE stepstone.steps (
    run_id       text NOT NULL,
    seq          integer NOT NULL,
    name         text NOT NULL,
    kind         text NOT NULL,
    status       text NOT NULL,
    output       text,
    error        text,
    attempts     integer NOT NULL DEFAULT 1,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE stepstone.signals (
    signal_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        text NOT NULL,
    name          text NOT NULL,
    payload       text NOT NULL,
    created_at    timestamptz NOT NULL,
    consumed_seq  integer,
    consumed_at   timestamptz,
    problem       text
);
CREATE INDEX signals_by_run ON stepstone.signals (run_id, name, signal_id);

CREATE TABLE stepstone.events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL,
    idx         integer,
    kind        text NOT NULL,
    data        text,
    source      text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX events_by_run ON stepstone.events (run_id, event_id);
CREATE UNIQUE INDEX events_user_idx ON stepstone.events (run_id, idx) WHERE idx IS NOT NULL;

CREATE TABLE stepstone.workers (
    worker_id      text PRIMARY KEY,
    host           text NOT NULL,
    pid            integer NOT NULL,
    process_start  text,
    queues         text[] NOT NULL,
    concurrency    integer NOT NULL,
    version        text,
    started_at     timestamptz NOT NULL,
    heartbeat_at   timestamptz NOT NULL,
    labels         jsonb,
    pool           text,
    load           integer NOT NULL DEFAULT 0,
    lease_s        double precision NOT NULL DEFAULT 30
);
CREATE INDEX workers_by_host ON stepstone.workers (host);
CREATE INDEX workers_by_pool ON stepstone.workers (pool) WHERE pool IS NOT NULL;

-- Queue limits, read (and locked, so concurrent claims count one after the other) at claim time.
CREATE TABLE stepstone.queues (
    name                 text PRIMARY KEY,
    concurrency          integer,
    per_key_concurrency  integer,
    rate_limit           integer,
    rate_period_s        double precision,
    rate_limit_per_key   boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL
);

-- First starts of runs of rate-limited queues, pruned past the longest period.
CREATE TABLE stepstone.queue_starts (
    queue       text NOT NULL,
    key         text,
    started_at  timestamptz NOT NULL
);
CREATE INDEX queue_starts_by_queue ON stepstone.queue_starts (queue, started_at);

CREATE TABLE stepstone.pools (
    name         text PRIMARY KEY,
    strategy     text NOT NULL,
    threshold    double precision NOT NULL,
    last_worker  text,
    updated_at   timestamptz NOT NULL
);

-- Schedules: a cron definition and where its firing is (next tick, run held back by
-- overlap=buffer_one).
CREATE TABLE stepstone.schedules (
    name          text PRIMARY KEY,
    workflow      text NOT NULL,
    cron          text NOT NULL,
    timezone      text NOT NULL,
    input         text NOT NULL,
    overlap       text NOT NULL,
    catchup       text NOT NULL,
    jitter_s      double precision NOT NULL DEFAULT 0,
    queue         text,
    paused        boolean NOT NULL DEFAULT false,
    next_fire_at  timestamptz,
    last_tick_at  timestamptz,
    last_run_id   text,
    buffered_at   timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX schedules_due ON stepstone.schedules (next_fire_at) WHERE NOT paused;

CREATE TABLE stepstone.ledger (
    run_id              text NOT NULL,
    seq                 integer NOT NULL,
    step                text NOT NULL,
    workflow            text NOT NULL,
    queue               text NOT NULL,
    model               text NOT NULL,
    input_tokens        bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cache_read_tokens   bigint,
    cache_write_tokens  bigint,
    cost_usd            double precision NOT NULL,
    latency_s           double precision NOT NULL,
    created_at          timestamptz NOT NULL,
    concurrency_key     text,
    PRIMARY KEY (run_id, seq, created_at)
);
CREATE INDEX ledger_by_time ON stepstone.ledger (created_at);
CREATE INDEX ledger_by_workflow ON stepstone.ledger (workflow, created_at);
CREATE INDEX ledger_by_queue ON stepstone.ledger (queue, created_at);
CREATE INDEX ledger_by_key ON stepstone.ledger (concurrency_key, created_at)
    WHERE concurrency_key IS NOT NULL;

CREATE TABLE stepstone.budgets (
    scope         text NOT NULL,
    name          text NOT NULL,
    usd           double precision,
    tokens        bigint,
    alerts        text NOT NULL,
    downgrade_at  double precision,
    period_s      double precision,
    on_limit      text NOT NULL DEFAULT 'pause',
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (scope, name)
);

-- The desk's inbox: launched runs, and one row per outcome of each (see migration inbox).
CREATE TABLE stepstone.launches (
    run_id       text PRIMARY KEY,
    skill        text NOT NULL,
    budget_usd   double precision,
    launched_at  timestamptz NOT NULL,
    via          text
);

CREATE TABLE stepstone.inbox (
    item_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           text NOT NULL,
    skill            text NOT NULL,
    outcome          text NOT NULL,
    mark             bigint NOT NULL,
    level            text NOT NULL,
    summary          text NOT NULL,
    notify_event_id  bigint,
    created_at       timestamptz NOT NULL,
    read_at          timestamptz
);
CREATE UNIQUE INDEX inbox_once ON stepstone.inbox (run_id, outcome, mark);
CREATE INDEX inbox_unread ON stepstone.inbox (item_id) WHERE read_at IS NULL;

-- Durable memory (ctx.memory): see migration memory.
CREATE TABLE stepstone.memory (
    scope       text NOT NULL,
    owner       text NOT NULL,
    key         text NOT NULL,
    value       text NOT NULL,
    version     bigint NOT NULL,
    run_id      text,
    seq         integer,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, owner, key)
);

-- The ledger added up per UTC day, workflow, queue and model (see migration memory_ledger_days).
CREATE TABLE stepstone.ledger_days (
    day                 date NOT NULL,
    workflow            text NOT NULL,
    queue               text NOT NULL,
    model               text NOT NULL,
    calls               bigint NOT NULL,
    input_tokens        bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cache_read_tokens   bigint NOT NULL,
    cache_write_tokens  bigint NOT NULL,
    cost_usd            double precision NOT NULL,
    latency_s           double precision NOT NULL,
    PRIMARY KEY (day, workflow, queue, model)
);
CREATE INDEX ledger_days_by_workflow ON stepstone.ledger_days (workflow, day);
CREATE INDEX ledger_days_by_queue ON stepstone.ledger_days (queue, day);

-- Leases on names, a lock in the store (the skills daemon's): see migration leases.
CREATE TABLE stepstone.leases (
    name         text PRIMARY KEY,
    holder       text NOT NULL,
    acquired_at  timestamptz NOT NULL,
    renewed_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
