-- Queued asynchronous calls are found without reading every call record, and old records are
-- pruned per function by age (both use these instead of scanning the table).
CREATE INDEX invocations_queued ON invocations (started_at) WHERE state = 'queued';
