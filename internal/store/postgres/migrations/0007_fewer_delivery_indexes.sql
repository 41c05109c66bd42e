-- Every delivery is inserted by the intake and changes state two or three
-- times in the inbox, and each index on deliveries is written each time.
-- Nothing reads deliveries_lease: claims walk deliveries_open (0002), and
-- the queries by state (InboxStats, ListDeliveries) use deliveries_due.
DROP INDEX deliveries_lease;

-- Bodies are JSON of a few KiB, compressed when stored: lz4 took the
-- server about a third less time than the default pglz to insert 32 such
-- bodies in one statement (docs/benchmarks.md). A server built without
-- lz4 keeps pglz; only new rows are affected.
DO $$
BEGIN
	EXECUTE 'ALTER TABLE deliveries ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'deliveries.body keeps the default compression: %', SQLERRM;
END
$$;
