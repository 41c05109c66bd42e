-- SQLite rewrites a whole record, overflow pages included, whenever any of
-- its columns changes: a 6 KB delivery body was written again by every
-- claim, completion and retry. Bodies move to a table of their own, written
-- once by the intake and read by claims; the deliveries row keeps the
-- body's length for lists. Deleting a delivery deletes its body.
CREATE TABLE delivery_bodies (
	seq  INTEGER PRIMARY KEY, -- deliveries.seq
	body BLOB    NOT NULL
);
INSERT INTO delivery_bodies (seq, body) SELECT seq, body FROM deliveries;
ALTER TABLE deliveries ADD COLUMN body_len INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET body_len = length(body);
ALTER TABLE deliveries DROP COLUMN body;
CREATE TRIGGER deliveries_body_deleted AFTER DELETE ON deliveries
BEGIN
	DELETE FROM delivery_bodies WHERE seq = old.seq;
END;
