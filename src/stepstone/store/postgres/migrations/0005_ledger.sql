-- stepstone PostgreSQL schema 5: the cost ledger and budgets. One row per ctx.llm step, written in
-- the same transaction as the step's record; no foreign key to runs, so a purged run keeps its
-- cost. A step run again after `retry` is a new call: the key holds the time it was recorded.
-- Budgets (per run, workflow or queue) are checked against the ledger before each model call.

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
    PRIMARY KEY (run_id, seq, created_at)
);
CREATE INDEX ledger_by_time ON stepstone.ledger (created_at);
CREATE INDEX ledger_by_workflow ON stepstone.ledger (workflow, created_at);
CREATE INDEX ledger_by_queue ON stepstone.ledger (queue, created_at);

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
