-- The tamper-evident log (internal/evidence). content is the canonical JSON
-- byte for byte (TEXT, never re-encoded); at is the canonical time string
-- the hash covers, at_ns the same instant for range queries.
CREATE TABLE evidence (
    seq     INTEGER PRIMARY KEY,
    kind    TEXT    NOT NULL,
    at      TEXT    NOT NULL,
    at_ns   INTEGER NOT NULL,
    content TEXT    NOT NULL,
    prev    TEXT    NOT NULL,
    hash    TEXT    NOT NULL
);
CREATE INDEX evidence_at ON evidence (at_ns, seq);

-- The head: one row, moved in the transaction of every append.
CREATE TABLE evidence_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL,
    kind TEXT    NOT NULL DEFAULT ''
);
INSERT INTO evidence_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE evidence_checkpoints (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    seq        INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    kind       TEXT    NOT NULL DEFAULT '',
    at         TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    note       TEXT    NOT NULL DEFAULT '',
    public_key TEXT    NOT NULL DEFAULT '',
    signature  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX evidence_checkpoints_seq ON evidence_checkpoints (seq);
