-- stepstone SQLite schema 5: schedules. A row is a cron definition and where its firing is:
-- `next_fire_at` is the next tick to start, moved in the transaction that creates the tick's run
-- (whose id is the tick), so each tick starts one run whatever the number of workers.
-- `buffered_at`: a tick held back by overlap=buffer_one until `last_run_id` finishes.

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
