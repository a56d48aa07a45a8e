-- stepstone PostgreSQL schema 8: reserved. Another branch's migration 8 takes this number when
-- the branches merge (and this file goes); until then it changes nothing, so the versions stay
-- 1..N.
SELECT 1;
