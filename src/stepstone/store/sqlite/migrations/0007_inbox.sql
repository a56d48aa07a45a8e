-- stepstone SQLite schema 6: the desk's inbox. A run started by `stepstone launch` has a row in
-- `launches` (written before the run, so no launched run exists unmarked); each outcome of such
-- a run (done, failed, cancelled, waiting for a signal) is one `inbox` row, inserted by the
-- statement sequence that makes the state change, in its transaction. `mark` is the lease token
-- the change was made under, so (run_id, outcome, mark) is unique: a retried or recovered
-- transaction cannot add a second row for one change.

CREATE TABLE launches (
    run_id       TEXT PRIMARY KEY,
    skill        TEXT NOT NULL,
    budget_usd   REAL,
    launched_at  REAL NOT NULL
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
