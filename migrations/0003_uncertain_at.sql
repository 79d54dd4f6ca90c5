-- When an attempt became uncertain: the reconciler declares it not placed
-- only after a scan of the call logs that began after this time.
ALTER TABLE attempts ADD COLUMN uncertain_at TEXT;
