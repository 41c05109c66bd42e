-- Decision pages are public (/decisions/{id}), so they are named by a
-- random id instead of the sequential one: 128 bits in 32 lower-case hex
-- characters, as store.NewPublicID makes them. Decisions stored before get
-- one here: the first 128 bits of a SHA-256 over two gen_random_uuid()
-- (244 bits from the server's strong random source), one draw per row.
ALTER TABLE decisions ADD COLUMN public_id TEXT;
UPDATE decisions
   SET public_id = substr(encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'), 1, 32)
 WHERE public_id IS NULL;
ALTER TABLE decisions ALTER COLUMN public_id SET NOT NULL;
CREATE UNIQUE INDEX decisions_public_id ON decisions (public_id);
