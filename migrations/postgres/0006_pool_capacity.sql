-- Capacity of a function's pool: containers kept running while idle (`min_instances`, 0 scales
-- to zero) and calls one container serves at once (`concurrency`). Defaults keep the behaviour
-- of functions made before.
ALTER TABLE functions ADD COLUMN min_instances BIGINT NOT NULL DEFAULT 0;
ALTER TABLE functions ADD COLUMN concurrency BIGINT NOT NULL DEFAULT 1;
