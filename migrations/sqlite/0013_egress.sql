-- Outbound network: the tenant's allowlist (JSON array of destinations, empty: none), a
-- version's own narrowing of it (NULL: the tenant's list as it is), and the connections each
-- call made (JSON array).
ALTER TABLE tenants ADD COLUMN egress TEXT NOT NULL DEFAULT '[]';
ALTER TABLE function_versions ADD COLUMN egress TEXT;
ALTER TABLE invocations ADD COLUMN connections TEXT;
