-- Asynchronous calls queued on RabbitMQ: 1 once the broker confirmed the call's message; calls
-- still queued and unpublished are published by a sweeper (the broker was away at accept).
ALTER TABLE invocations ADD COLUMN published BIGINT NOT NULL DEFAULT 0;
