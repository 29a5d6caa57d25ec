-- How a function's containers are kept: `warm` (reused, removed after an idle time) or
-- `per-call` (started for one call, then removed), and how many may run at once.
ALTER TABLE functions ADD COLUMN pool_mode TEXT NOT NULL DEFAULT 'warm';
ALTER TABLE functions ADD COLUMN max_instances BIGINT NOT NULL DEFAULT 4;
ALTER TABLE tenants ADD COLUMN max_instances BIGINT NOT NULL DEFAULT 10;
