-- stepstone PostgreSQL schema 7: durable memory (ctx.memory), and the ledger added up per day.
--
-- memory: one JSON document per (scope, owner, key), shared across runs. `version` counts its
-- writes: a write is compare-and-set on the version read, in the transaction that records the
-- step that wrote it; `run_id`/`seq` name that step, so a write whose commit went unanswered is
-- recognised as its own.
--
-- launches.via: a child run of a launched run is marked too (via = the launched run), so that
-- its waits for a human and its budget pauses reach the inbox (not its other outcomes).

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

-- The ledger added up per UTC day, workflow, queue and model, in the transaction that inserts
-- each ledger row: roll-ups (`stepstone cost`) and budget checks read whole days from here and
-- only the rows of a partial first day from the ledger, so neither grows with its size.
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

INSERT INTO stepstone.ledger_days
SELECT (created_at AT TIME ZONE 'UTC')::date, workflow, queue, model, count(*),
       sum(input_tokens), sum(output_tokens), coalesce(sum(cache_read_tokens), 0),
       coalesce(sum(cache_write_tokens), 0), sum(cost_usd), sum(latency_s)
FROM stepstone.ledger GROUP BY 1, 2, 3, 4;

ALTER TABLE stepstone.launches ADD COLUMN via text;
