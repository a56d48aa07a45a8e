-- stepstone PostgreSQL schema 3: a signal whose payload fails its wait's schema is rejected,
-- not delivered. `problem` says why (NULL: pending or taken); `consumed_seq` then names the
-- wait that rejected it (NULL when the sender was refused before any wait saw it).

ALTER TABLE stepstone.signals ADD COLUMN problem text;
