-- A node writes a row as it starts a container of a function, so that every other node counts
-- the container against the function's max_instances before its next heartbeat lists it
-- (see Store::admit_container). Rows a few seconds old are no longer counted and are deleted.
CREATE TABLE container_starts (
    node TEXT NOT NULL,
    function_id BIGINT NOT NULL,
    started_at BIGINT NOT NULL
);
CREATE INDEX container_starts_function ON container_starts (function_id, node, started_at);
