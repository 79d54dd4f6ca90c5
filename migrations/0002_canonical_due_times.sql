-- Due times are compared as text, so they must all be in the one canonical
-- form ('2026-11-25T08:00:00Z'). Another program may write SQLite's own
-- '2026-11-25 08:00:00', an offset, or fractional seconds: rewrite any of
-- them to UTC in the canonical form, and refuse text that is not a time by
-- marking the contact invalid (never guessing "now" for it).
CREATE TRIGGER contacts_due_time_on_insert AFTER INSERT ON contacts
WHEN NEW.next_attempt_at IS NOT NULL
 AND NEW.next_attempt_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'
BEGIN
    UPDATE contacts
       SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%SZ', NEW.next_attempt_at),
           state = CASE WHEN strftime('%s', NEW.next_attempt_at) IS NULL THEN 'invalid' ELSE state END,
           invalid_reason = CASE WHEN strftime('%s', NEW.next_attempt_at) IS NULL
                                 THEN 'next_attempt_at ' || quote(NEW.next_attempt_at) || ' is not a time'
                                 ELSE invalid_reason END
     WHERE id = NEW.id;
END;

CREATE TRIGGER contacts_due_time_on_update AFTER UPDATE OF next_attempt_at ON contacts
WHEN NEW.next_attempt_at IS NOT NULL
 AND NEW.next_attempt_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'
BEGIN
    UPDATE contacts
       SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%SZ', NEW.next_attempt_at),
           state = CASE WHEN strftime('%s', NEW.next_attempt_at) IS NULL
                         AND state IN ('pending', 'retry_wait') THEN 'invalid' ELSE state END,
           invalid_reason = CASE WHEN strftime('%s', NEW.next_attempt_at) IS NULL
                                 THEN 'next_attempt_at ' || quote(NEW.next_attempt_at) || ' is not a time'
                                 ELSE invalid_reason END
     WHERE id = NEW.id;
END;

-- Rows written before this migration.
UPDATE contacts SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%SZ', next_attempt_at)
 WHERE next_attempt_at IS NOT NULL
   AND next_attempt_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'
   AND strftime('%s', next_attempt_at) IS NOT NULL;
