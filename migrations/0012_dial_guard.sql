-- The dial guard: one number that moves whenever something the dial-time
-- check reads could have changed for an attempt still `sending`.
--
-- Before every try of every request the dispatcher decides on the database
-- as it is at that instant: the campaign's status and rules, the global
-- pause, whether the contact still owns the attempt (and its timezone,
-- agent and attempt count), the DNC list, and the number's other attempts
-- (one live attempt per number, the per-number cap). A claim reads all of
-- it inside its write transaction and notes `stamp` there. A try reads
-- `stamp` (and its attempt's state) at its own instant: when the stamp is
-- the one its claim saw, none of that state has changed since the claim
-- read it, so the try judges only what time changes (the window, quiet
-- hours, the region's hours) on the claim's reading. When it has moved,
-- the try reads everything again. Either way the try refuses on the
-- database as it is when the request would leave.
--
-- The triggers fire for every writer: dialerd, `sqlite3`, another program.
-- A trigger that missed a change would let a try judge a stale reading, so
-- they err towards moving the stamp; dialerd's own writes on its normal
-- path (claims, results, outcomes of attempts no longer `sending`) do not
-- move it, or the check would read everything for every try.
CREATE TABLE dial_guard (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    stamp INTEGER NOT NULL
);
INSERT INTO dial_guard (id, stamp) VALUES (1, 0);

-- The DNC list: any change at all.
CREATE TRIGGER dial_guard_dnc_insert AFTER INSERT ON dnc
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;
CREATE TRIGGER dial_guard_dnc_update AFTER UPDATE ON dnc
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;
CREATE TRIGGER dial_guard_dnc_delete AFTER DELETE ON dnc
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;

-- The global pause (a refused key, `dialerd pause`), and the row itself.
CREATE TRIGGER dial_guard_pause AFTER UPDATE ON daemon
WHEN OLD.dispatch_paused IS NOT NEW.dispatch_paused OR OLD.id IS NOT NEW.id
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;
CREATE TRIGGER dial_guard_daemon_insert AFTER INSERT ON daemon
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;
CREATE TRIGGER dial_guard_daemon_delete AFTER DELETE ON daemon
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;

-- A campaign's status or any column its rules are read from (the columns
-- of `Campaign::rules` and the dial-time read's rules key), or the row.
CREATE TRIGGER dial_guard_campaign
AFTER UPDATE OF status, id, agent_id, schedule, timezone, window_start, window_end, max_attempts,
                retry_delay_secs, retry_outcomes, retry_delays, region ON campaigns
WHEN OLD.status IS NOT NEW.status OR OLD.id IS NOT NEW.id
  OR OLD.agent_id IS NOT NEW.agent_id OR OLD.schedule IS NOT NEW.schedule
  OR OLD.timezone IS NOT NEW.timezone OR OLD.window_start IS NOT NEW.window_start
  OR OLD.window_end IS NOT NEW.window_end OR OLD.max_attempts IS NOT NEW.max_attempts
  OR OLD.retry_delay_secs IS NOT NEW.retry_delay_secs OR OLD.retry_outcomes IS NOT NEW.retry_outcomes
  OR OLD.retry_delays IS NOT NEW.retry_delays OR OLD.region IS NOT NEW.region
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;
CREATE TRIGGER dial_guard_campaign_delete AFTER DELETE ON campaigns
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;
-- `INSERT OR REPLACE` deletes the old row without its delete triggers
-- (unless the writer turned recursive_triggers on) and inserts a new one:
-- a campaign replaced whole, paused or with other rules, is seen here.
-- New campaigns are rare; each moves the stamp.
CREATE TRIGGER dial_guard_campaign_insert AFTER INSERT ON campaigns
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;

-- The contact is not watched by a trigger: the try's own read compares
-- it with what the claim left (there, `in_progress`, the same timezone,
-- agent and attempt count), which also sees a contact deleted, renumbered
-- or replaced whole (`INSERT OR REPLACE` fires no delete trigger), and
-- costs neither the claim's update nor an import's insert anything.

-- A new attempt to a number, or of a contact, that has one `sending`: it
-- changes the number's facts or which attempt the contact owns. A claim
-- never writes one (a number with a live attempt is not claimed). An
-- attempt `sending` replaced whole is not seen here (it is the row itself);
-- the try reads its own attempt's state, contact and number.
CREATE TRIGGER dial_guard_attempt_insert AFTER INSERT ON attempts
WHEN EXISTS (SELECT 1 FROM attempts s WHERE s.to_number = NEW.to_number AND s.state = 'sending' AND s.id <> NEW.id)
  OR EXISTS (SELECT 1 FROM attempts s WHERE s.contact_id = NEW.contact_id AND s.state = 'sending' AND s.id <> NEW.id)
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;

-- An attempt's identity (never rewritten by dialerd), or whether it counts
-- as placed or live (state, outcome, send time) while another attempt to
-- its number is `sending` (the reconciler's late finding that a call
-- declared not placed was placed after all). An attempt that was itself
-- `sending` is skipped: two attempts to one number are never `sending` at
-- once (a second insert moves the stamp), and the try's own attempt
-- leaving `sending` is read by the try itself, with the stamp.
CREATE TRIGGER dial_guard_attempt_update
AFTER UPDATE OF id, to_number, contact_id, campaign_id, state, outcome, sent_at ON attempts
WHEN OLD.id IS NOT NEW.id OR OLD.to_number IS NOT NEW.to_number
  OR OLD.contact_id IS NOT NEW.contact_id OR OLD.campaign_id IS NOT NEW.campaign_id
  OR (OLD.state IS NOT 'sending' AND (OLD.state IS NOT NEW.state OR OLD.outcome IS NOT NEW.outcome OR OLD.sent_at IS NOT NEW.sent_at)
      AND EXISTS (SELECT 1 FROM attempts s WHERE s.to_number = NEW.to_number AND s.state = 'sending' AND s.id <> NEW.id))
BEGIN
    UPDATE dial_guard SET stamp = stamp + 1 WHERE id = 1;
END;
