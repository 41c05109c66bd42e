-- Fenced claims: every claim gets a token; only its holder may renew or
-- settle the delivery.
ALTER TABLE deliveries ADD COLUMN claim_token text NOT NULL DEFAULT '';

-- Replicas heartbeat here; the claims of one whose heartbeat is stale are
-- taken over without waiting for their leases.
CREATE TABLE replicas (
	id           text        PRIMARY KEY,
	heartbeat_at timestamptz NOT NULL
);

-- Retention deletes ended deliveries by when they ended, in small batches.
CREATE INDEX deliveries_ended ON deliveries (state, done_at) WHERE state IN ('done', 'dead');
