-- Event triggers run for successful operations only unless the function asks for all of them.
ALTER TABLE functions ADD COLUMN trigger_successful_only BIGINT NOT NULL DEFAULT 1;
