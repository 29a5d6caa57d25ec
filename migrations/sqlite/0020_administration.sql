-- Tokens expire (NULL: made before tokens expired; such a token never does) and carry a
-- scope: 'read', 'invoke' or 'full'.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full';
-- A disabled user cannot sign in; its tokens and sessions stop working (unix ms when disabled).
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
-- Who changed what. The tenant is kept by name, not by reference: the entries of a deleted
-- tenant stay, with the entry that says who deleted it.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    org TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org, id);
