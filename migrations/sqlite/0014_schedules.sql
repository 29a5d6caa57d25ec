-- Schedule triggers: a function's 5-field cron pattern and the IANA time zone it is read in.
ALTER TABLE functions ADD COLUMN trigger_cron TEXT;
ALTER TABLE functions ADD COLUMN trigger_timezone TEXT;

-- The lease on a scheduled function's ticks, one row per function with a schedule.
-- `last_due` is the latest tick claimed (at first, the instant the schedule was set, so ticks
-- from before are never run). A process runs a tick only after moving `last_due` forward to
-- it with `UPDATE … WHERE last_due < tick`: one process wins each tick, the claim is written
-- before the call starts, and a restart never runs a claimed tick again. `schedule` is the
-- pattern and zone the lease counts for: a changed schedule starts counting anew.
CREATE TABLE function_schedules (
    function_id BIGINT PRIMARY KEY REFERENCES functions(id) ON DELETE CASCADE,
    schedule TEXT NOT NULL,
    last_due BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_at BIGINT
);
