-- stepstone PostgreSQL schema 2: index predicates that fit the queries meant to use them, and
-- no index but the primary key that a lookup by run_id could scan whole.
--
-- The lease indexes said `WHERE state = 'running'`, which the step-write fence (run_id, token,
-- state = 'running') also implies: with generic plans the planner could scan every running run
-- on each step write instead of looking the run up by its key. Leases are set exactly while a
-- run is running, so the same rows are indexed by `lease_* IS NOT NULL`, which the fence does
-- not imply. The timer index covered the same rows as runs_due, so a claim could read the whole
-- backlog through it and sort; it now holds only sleeping and waiting runs (next_wake_at reads
-- delayed pending runs separately), leaving the claim one index that walks in claim order.

DROP INDEX stepstone.runs_leased;
CREATE INDEX runs_leased ON stepstone.runs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
DROP INDEX stepstone.runs_by_owner;
CREATE INDEX runs_by_owner ON stepstone.runs (lease_owner) WHERE lease_owner IS NOT NULL;
DROP INDEX stepstone.runs_timers;
CREATE INDEX runs_timers ON stepstone.runs (wake_at) WHERE state IN ('sleeping', 'waiting');

-- Sessions run with enable_seqscan=off: every statement has an index path, and a generic plan
-- built from statistics of a table that was small when last analyzed would otherwise scan the
-- whole table until the next ANALYZE. Then a lookup by run_id must not find any index to scan
-- whole but the primary key: the listing index is partial, on a predicate only list_runs states
-- (created_at is never null).
DROP INDEX stepstone.runs_by_created;
CREATE INDEX runs_by_created ON stepstone.runs (created_at, run_id) WHERE created_at IS NOT NULL;
