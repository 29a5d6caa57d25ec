-- The container runtime of a tenant's functions: 'runc' (the engine's default) or 'gvisor'
-- (runsc), chosen by the provider.
ALTER TABLE tenants ADD COLUMN sandbox TEXT NOT NULL DEFAULT 'runc';
