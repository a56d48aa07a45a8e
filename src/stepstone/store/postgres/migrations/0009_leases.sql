-- stepstone PostgreSQL schema 9: leases on names (a lock in the store).
--
-- One row per name: its holder keeps it by renewing it before `expires_at`. Taking it is one
-- statement (insert, or take over a lease that expired or whose holder is known dead), so of
-- any number of processes asking at once exactly one gets it. The skills daemon holds one per
-- host and skills path: ten racing launches start one daemon, and a SIGKILLed daemon's lease is
-- taken over by the next one.

CREATE TABLE stepstone.leases (
    name         text PRIMARY KEY,
    holder       text NOT NULL,
    acquired_at  timestamptz NOT NULL,
    renewed_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
