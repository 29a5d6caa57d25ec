-- A version's plain environment and the names of its secrets (JSON); the function's secrets,
-- sealed with the platform's key (never in a version, never in the clear).
ALTER TABLE function_versions ADD COLUMN env TEXT;
ALTER TABLE function_versions ADD COLUMN secret_names TEXT;
ALTER TABLE functions ADD COLUMN secrets TEXT;
