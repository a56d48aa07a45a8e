-- stepstone SQLite schema 8: durable memory (ctx.memory). One JSON document per (scope, owner,
-- key), shared across runs. `version` counts its writes: a write is compare-and-set on the
-- version read, in the transaction that records the step that wrote it; `run_id`/`seq` name
-- that step, so a write whose commit went unanswered is recognised as its own.

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
