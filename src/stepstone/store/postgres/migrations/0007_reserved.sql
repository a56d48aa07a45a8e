-- A placeholder for the migration of this number on another branch (issue 12); dropped when
-- the branches are merged, so that this branch's migration keeps its given number.
SELECT 1;
