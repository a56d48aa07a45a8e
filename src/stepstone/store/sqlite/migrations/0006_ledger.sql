-- stepstone SQLite schema 6: the cost ledger and budgets. One row per ctx.llm step, written in the
-- same transaction as the step's record; no foreign key to runs, so a purged run keeps its cost. A
-- step run again after `retry` is a new call: the key holds the time it was recorded. Budgets (per
-- run, workflow or queue) are checked against the ledger before each model call.

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
    PRIMARY KEY (run_id, seq, created_at)
);
CREATE INDEX ledger_by_time ON ledger (created_at);
CREATE INDEX ledger_by_workflow ON ledger (workflow, created_at);
CREATE INDEX ledger_by_queue ON ledger (queue, created_at);

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
