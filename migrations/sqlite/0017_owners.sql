-- Which process builds a version: a front with a local worker or a node, whichever claimed
-- it first. A build whose owner is gone (killed, its host lost) is claimed again by another.
ALTER TABLE function_versions ADD COLUMN build_owner TEXT;
-- The builders look for unfinished builds every second; only those rows are indexed.
CREATE INDEX function_versions_unfinished ON function_versions (id) WHERE build_status IN ('queued', 'building');
-- Which process runs an asynchronous call it claimed. A call left running by a process that
-- is gone goes back to the queue, for another front to run.
ALTER TABLE invocations ADD COLUMN owner TEXT;
CREATE INDEX invocations_running ON invocations (id) WHERE state = 'running';
