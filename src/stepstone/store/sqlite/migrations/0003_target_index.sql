-- stepstone SQLite schema 3: runs pinned to a worker are found by an index when it dies.
-- Releasing a dead worker's runs looked them up by assigned or target worker; with no index
-- on target_worker SQLite scanned every run ever stored.

CREATE INDEX runs_by_target ON runs (target_worker) WHERE target_worker IS NOT NULL;
