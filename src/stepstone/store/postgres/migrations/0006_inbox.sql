-- stepstone PostgreSQL schema 5: the desk's inbox. A run started by `stepstone launch` has a
-- row in `launches` (written before the run, so no launched run exists unmarked); each outcome
-- of such a run (done, failed, cancelled, waiting for a signal) is one `inbox` row, inserted by
-- the statement sequence that makes the state change, in its transaction. `mark` is the lease
-- token the change was made under, so (run_id, outcome, mark) is unique: a retried or
-- recovered transaction cannot add a second row for one change.

CREATE TABLE stepstone.launches (
    run_id       text PRIMARY KEY,
    skill        text NOT NULL,
    budget_usd   double precision,
    launched_at  timestamptz NOT NULL
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
