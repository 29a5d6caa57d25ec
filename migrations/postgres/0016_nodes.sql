-- Worker nodes of a cluster (`vcd-faas node`), one row per node name, kept across its
-- restarts so a drained node stays drained. Each beats every second with what it holds; a
-- front places calls by these rows. A call's record names the node that ran it.
-- (Integers only: CPU in thousandths of a core; the database driver reads them alike on both.)
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    process TEXT NOT NULL,
    address TEXT NOT NULL,
    draining BIGINT NOT NULL DEFAULT 0,
    memory_mb BIGINT NOT NULL,
    millicpus BIGINT NOT NULL,
    used_memory_mb BIGINT NOT NULL DEFAULT 0,
    used_millicpus BIGINT NOT NULL DEFAULT 0,
    containers BIGINT NOT NULL DEFAULT 0,
    calls_in_flight BIGINT NOT NULL DEFAULT 0,
    calls_last_10s BIGINT NOT NULL DEFAULT 0,
    warm TEXT NOT NULL DEFAULT '[]',
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
ALTER TABLE invocations ADD COLUMN node TEXT;
