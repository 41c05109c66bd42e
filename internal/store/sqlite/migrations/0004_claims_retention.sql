-- Fenced claims: every claim gets a token; only its holder may renew or
-- settle the delivery.
ALTER TABLE deliveries ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';

-- Replicas heartbeat here; the claims of one whose heartbeat is stale are
-- taken over without waiting for their leases.
CREATE TABLE replicas (
	id           TEXT    PRIMARY KEY,
	heartbeat_at INTEGER NOT NULL
);

-- Retention deletes ended deliveries by when they ended, in small batches.
-- One partial index per state, so that intake (pending rows) never pays for them.
CREATE INDEX deliveries_done_at ON deliveries (done_at) WHERE state = 'done';
CREATE INDEX deliveries_dead_at ON deliveries (done_at) WHERE state = 'dead';
-- Dead letters buried before this migration have no end time: their
-- arrival stands in for it.
UPDATE deliveries SET done_at = received_at WHERE state = 'dead' AND done_at IS NULL;
