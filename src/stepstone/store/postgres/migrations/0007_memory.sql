-- stepstone PostgreSQL schema 7: durable memory (ctx.memory). One JSON document per (scope,
-- owner, key), shared across runs. `version` counts its writes: a write is compare-and-set on
-- the version read, in the transaction that records the step that wrote it; `run_id`/`seq` name
-- that step, so a write whose commit went unanswered is recognised as its own.

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
