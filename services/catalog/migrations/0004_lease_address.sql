-- Where a table's lease holder takes reports, so other commit replicas forward to it.
ALTER TABLE commit_leases ADD COLUMN address text NOT NULL DEFAULT '';
