-- Send instants to the millisecond, and what the reconciler learns from them.
--
-- `sent_at` is now when the first try's request was handed to the HTTP
-- client (it used to be the claim time); `claimed_at` keeps the claim time;
-- `last_try_at` is when the last try was handed over (grace counts from it);
-- `log_seen_at` is when the reconciler first saw the attempt's call log in a
-- listing (the delay from `sent_at` to it teaches how late logs appear).
-- Times are ISO-8601 UTC text with milliseconds: 2026-11-25T08:00:00.123Z.
ALTER TABLE attempts ADD COLUMN claimed_at TEXT;
ALTER TABLE attempts ADD COLUMN last_try_at TEXT;
ALTER TABLE attempts ADD COLUMN log_seen_at TEXT;

-- Rows from before: the claim time is all that was known.
UPDATE attempts SET claimed_at = sent_at;
-- One width in each column, so text order stays time order.
UPDATE attempts SET sent_at = COALESCE(strftime('%Y-%m-%dT%H:%M:%fZ', sent_at), sent_at);
UPDATE attempts SET uncertain_at = COALESCE(strftime('%Y-%m-%dT%H:%M:%fZ', uncertain_at), uncertain_at)
 WHERE uncertain_at IS NOT NULL;
UPDATE attempts SET claimed_at = COALESCE(strftime('%Y-%m-%dT%H:%M:%fZ', claimed_at), claimed_at);

-- The claim writes `sent_at` (a placeholder until the request goes out);
-- it is also the claim time.
CREATE TRIGGER attempts_claimed_at AFTER INSERT ON attempts
WHEN NEW.claimed_at IS NULL
BEGIN
    UPDATE attempts SET claimed_at = NEW.sent_at WHERE id = NEW.id;
END;

-- The appearance delays the reconciler learns from (recent accepted attempts
-- whose log was seen).
CREATE INDEX attempts_log_seen ON attempts(log_seen_at) WHERE log_seen_at IS NOT NULL;
