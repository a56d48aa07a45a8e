-- stepstone SQLite schema 8: durable memory (ctx.memory), and the ledger added up per day.
--
-- memory: one JSON document per (scope, owner, key), shared across runs. `version` counts its
-- writes: a write is compare-and-set on the version read, in the transaction that records the
-- step that wrote it; `run_id`/`seq` name that step, so a write whose commit went unanswered is
-- recognised as its own.
--
-- launches.via: a child run of a launched run is marked too (via = the launched run), so that
-- its waits for a human and its budget pauses reach the inbox (not its other outcomes).

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

-- The ledger added up per UTC day, workflow, queue and model, in the transaction that inserts
-- each ledger row: roll-ups (`stepstone cost`) and budget checks read whole days from here and
-- only the rows of a partial first day from the ledger, so neither grows with its size.
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

INSERT INTO ledger_days
SELECT date(created_at, 'unixepoch'), workflow, queue, model, count(*), sum(input_tokens),
       sum(output_tokens), coalesce(sum(cache_read_tokens), 0),
       coalesce(sum(cache_write_tokens), 0), sum(cost_usd), sum(latency_s)
FROM ledger GROUP BY 1, 2, 3, 4;

ALTER TABLE launches ADD COLUMN via TEXT;
