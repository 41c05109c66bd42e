-- Every delivery is inserted by the intake and changes state two or three
-- times in the inbox, and each index on deliveries is written each time.
-- Nothing reads deliveries_lease: claims walk deliveries_open (0002), and
-- the queries by state (InboxStats, ListDeliveries) use deliveries_due.
DROP INDEX deliveries_lease;
