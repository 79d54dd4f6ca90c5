-- `attempts_by_number` keys on the number alone.
--
-- Migration 6 keyed it on (to_number, sent_at). A result rewrites
-- `sent_at` (from the claim's time to the first try's instant), so every
-- result moved the attempt's entry in this index: a delete and an insert
-- in the b-tree, for every call placed. The readers (the claim's and the
-- dial-time check's facts on a number, `explain`, the reconciler's match by
-- number) walk one number's attempts, a handful of rows, and test
-- `sent_at` on the row as cheaply as in the index.
DROP INDEX attempts_by_number;
CREATE INDEX attempts_by_number ON attempts(to_number);
