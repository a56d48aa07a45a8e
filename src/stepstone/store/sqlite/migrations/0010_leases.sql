-- stepstone SQLite schema 10: leases on names (a lock in the store).
--
-- One row per name: its holder keeps it by renewing it before `expires_at`. Taking it is one
-- statement (insert, or take over a lease that expired or whose holder is known dead), so of
-- any number of processes asking at once exactly one gets it. The skills daemon holds one per
-- host and skills path: ten racing launches start one daemon, and a SIGKILLed daemon's lease is
-- taken over by the next one.

CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    acquired_at  REAL NOT NULL,
    renewed_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
) WITHOUT ROWID;
