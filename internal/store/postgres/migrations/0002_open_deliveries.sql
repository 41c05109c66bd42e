-- Claims look only at open deliveries in arrival order. A partial index on
-- seq lets the claim walk them in order and stop at its limit, instead of
-- sorting every due row (or scanning done ones) on each claim.
CREATE INDEX deliveries_open ON deliveries (seq) WHERE state IN ('pending', 'processing');
