-- Decision pages are public (/decisions/{id}), so they are named by a
-- random id instead of the sequential one: 128 bits (16 random bytes in
-- lower-case hex, as store.NewPublicID makes them). Decisions stored
-- before get one here; randomblob draws from SQLite's PRNG, seeded from
-- the operating system's randomness.
ALTER TABLE decisions ADD COLUMN public_id TEXT;
UPDATE decisions SET public_id = lower(hex(randomblob(16))) WHERE public_id IS NULL;
CREATE UNIQUE INDEX decisions_public_id ON decisions (public_id);
