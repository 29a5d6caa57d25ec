-- Which process builds a version: a front with a local worker or a node, whichever claimed
-- it first. A build whose owner is gone (killed, its host lost) is claimed again by another.
ALTER TABLE function_versions ADD COLUMN build_owner TEXT;
-- The builders look for unfinished builds every second; only those rows are indexed.
CREATE INDEX function_versions_unfinished ON function_versions (id) WHERE build_status IN ('queued', 'building');
