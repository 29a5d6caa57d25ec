-- Asynchronous calls retried after a 5xx wait before their next attempt: unix ms before which
-- a queued call is neither run nor published (0: at once).
ALTER TABLE invocations ADD COLUMN retry_at BIGINT NOT NULL DEFAULT 0;
