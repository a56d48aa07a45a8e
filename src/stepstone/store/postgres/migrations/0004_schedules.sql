-- stepstone PostgreSQL schema 4: schedules. A row is a cron definition and where its firing is:
-- `next_fire_at` is the next tick to start, moved in the transaction that creates the tick's run
-- (whose id is the tick) while the row is locked, so each tick starts one run whatever the
-- number of workers. `buffered_at`: a tick held back by overlap=buffer_one until `last_run_id`
-- finishes.

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
