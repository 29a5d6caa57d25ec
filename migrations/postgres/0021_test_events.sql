-- Saved test events: a function's named Test Function requests, as a developer saved them.
CREATE TABLE test_events (
    function_id BIGINT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    request TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (function_id, name)
);
