-- The tamper-evident log (internal/evidence). content is the canonical JSON
-- byte for byte (text, never jsonb: jsonb would reorder it); at is the
-- canonical time string the hash covers, at_ns the same instant for range
-- queries.
CREATE TABLE evidence (
    seq     bigint PRIMARY KEY,
    kind    text   NOT NULL,
    at      text   NOT NULL,
    at_ns   bigint NOT NULL,
    content text   NOT NULL,
    prev    text   NOT NULL,
    hash    text   NOT NULL
);
CREATE INDEX evidence_at ON evidence (at_ns, seq);

-- The head: one row, moved in the transaction of every append (under a
-- transaction advisory lock, so replicas append one at a time).
CREATE TABLE evidence_head (
    id   integer PRIMARY KEY CHECK (id = 1),
    seq  bigint  NOT NULL,
    hash text    NOT NULL,
    kind text    NOT NULL DEFAULT ''
);
INSERT INTO evidence_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE evidence_checkpoints (
    id         bigserial PRIMARY KEY,
    seq        bigint NOT NULL,
    hash       text   NOT NULL,
    kind       text   NOT NULL DEFAULT '',
    at         text   NOT NULL,
    reason     text   NOT NULL,
    note       text   NOT NULL DEFAULT '',
    public_key text   NOT NULL DEFAULT '',
    signature  text   NOT NULL DEFAULT ''
);
CREATE INDEX evidence_checkpoints_seq ON evidence_checkpoints (seq);
