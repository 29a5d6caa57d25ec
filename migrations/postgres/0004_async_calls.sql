-- Asynchronous calls: the request is kept until the call has run (a restart loses none), the
-- answer until it is read; failed attempts are counted for the dead-letter rule.
ALTER TABLE invocations ADD COLUMN request TEXT;
ALTER TABLE invocations ADD COLUMN response TEXT;
ALTER TABLE invocations ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
