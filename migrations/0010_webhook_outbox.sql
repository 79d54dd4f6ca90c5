-- Webhooks: a durable outbox of events for the operator's systems.
--
-- Triggers write each event in the same transaction as the change it reports,
-- whoever makes the change (the daemon, a `dialerd` command, or an operator's
-- own SQL), so an event exists if and only if its change was committed. The
-- delivery worker POSTs the rows and keeps their retry state in their columns.
--
-- The triggers write only the events listed in `webhook_subscriptions`, which
-- the daemon rewrites from `webhooks.url` / `webhooks.events` at start and on
-- reload, and empties when webhooks are off: the outbox never grows unattended.
--
-- A trigger that failed would fail the state change it reports, so every
-- value is taken defensively: a BLOB (which JSON cannot hold) becomes null,
-- JSON text is parsed only after json_valid says it parses, and nothing here
-- has a constraint that a value could break.

-- Who put a number on the do-not-call list, and the attempt whose callee asked.
ALTER TABLE dnc ADD COLUMN source TEXT NOT NULL DEFAULT 'operator'
    CHECK (source = 'operator' OR source = 'import' OR source = 'opt-out');
ALTER TABLE dnc ADD COLUMN attempt_id INTEGER;

-- The events the triggers write; empty when webhooks are off.
CREATE TABLE webhook_subscriptions (
    event TEXT PRIMARY KEY
) WITHOUT ROWID;

-- One row per event. AUTOINCREMENT: an id (the receiver's idempotency key,
-- sent as X-Dialerd-Delivery) is never reused, even after rows are deleted.
CREATE TABLE webhook_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event           TEXT    NOT NULL,
    -- Delivery is in order per contact; NULL for campaign events.
    contact_id      INTEGER,
    campaign_id     INTEGER,
    -- The event's data as JSON text (the `data` member of the body sent).
    payload         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    -- Tries so far, when the next may be made (NULL: at once), and how the last went.
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    delivered_at    TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    -- Set by `dialerd webhooks retry`: the retry period counts from here.
    requeued_at     TEXT,
    -- Set when the event was not delivered within webhooks.max_age_secs.
    gave_up_at      TEXT
);
-- The worker's queue: undelivered rows still being tried, by contact and age.
CREATE INDEX webhook_outbox_queue ON webhook_outbox(contact_id, id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
-- The same rows oldest first, so the worker's read skips the delivered ones.
CREATE INDEX webhook_outbox_waiting ON webhook_outbox(id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- Events not delivered (yet, or at all), oldest first.
CREATE VIEW webhook_backlog AS
SELECT
    o.id,
    o.event,
    o.contact_id,
    o.campaign_id,
    o.created_at,
    o.attempts,
    o.next_attempt_at,
    o.last_status,
    o.last_error,
    o.requeued_at,
    o.gave_up_at,
    CASE WHEN o.gave_up_at IS NOT NULL THEN 'gave_up'
         WHEN o.attempts > 0 THEN 'retrying'
         ELSE 'pending' END AS state
FROM webhook_outbox o
WHERE o.delivered_at IS NULL
ORDER BY o.id;

-- The JSON documents the payloads are made of, one per campaign, contact and
-- attempt. A BLOB anywhere becomes null; stored times are passed as stored.
CREATE VIEW webhook_campaign_doc AS
SELECT cp.id AS campaign_id, json_object(
    'id', cp.id,
    'name', CASE typeof(cp.name) WHEN 'blob' THEN NULL ELSE cp.name END,
    'status', CASE typeof(cp.status) WHEN 'blob' THEN NULL ELSE cp.status END,
    'status_reason', CASE typeof(cp.status_reason) WHEN 'blob' THEN NULL ELSE cp.status_reason END,
    'agent_id', CASE typeof(cp.agent_id) WHEN 'blob' THEN NULL ELSE cp.agent_id END
) AS doc
FROM campaigns cp;

CREATE VIEW webhook_contact_doc AS
SELECT c.id AS contact_id, json_object(
    'id', c.id,
    'external_id', CASE typeof(c.external_id) WHEN 'blob' THEN NULL ELSE c.external_id END,
    'phone_number', CASE typeof(c.phone_number) WHEN 'blob' THEN NULL ELSE c.phone_number END,
    'call_context', CASE typeof(c.call_context)
        WHEN 'text' THEN CASE WHEN json_valid(c.call_context) THEN json(c.call_context)
                              ELSE c.call_context END
        WHEN 'blob' THEN NULL
        ELSE c.call_context END,
    'timezone', CASE typeof(c.timezone) WHEN 'blob' THEN NULL ELSE c.timezone END,
    'state', CASE typeof(c.state) WHEN 'blob' THEN NULL ELSE c.state END,
    'attempts', CASE typeof(c.attempts) WHEN 'blob' THEN NULL ELSE c.attempts END,
    'invalid_reason', CASE typeof(c.invalid_reason) WHEN 'blob' THEN NULL ELSE c.invalid_reason END,
    'updated_at', CASE typeof(c.updated_at) WHEN 'blob' THEN NULL ELSE c.updated_at END
) AS doc
FROM contacts c;

CREATE VIEW webhook_attempt_doc AS
SELECT a.id AS attempt_id, json_object(
    'id', a.id,
    'attempt_no', CASE typeof(a.attempt_no) WHEN 'blob' THEN NULL ELSE a.attempt_no END,
    'state', CASE typeof(a.state) WHEN 'blob' THEN NULL ELSE a.state END,
    'outcome', CASE typeof(a.outcome) WHEN 'blob' THEN NULL ELSE a.outcome END,
    'provider_status', CASE typeof(a.provider_status) WHEN 'blob' THEN NULL ELSE a.provider_status END,
    'to_number', CASE typeof(a.to_number) WHEN 'blob' THEN NULL ELSE a.to_number END,
    'agent_id', CASE typeof(a.agent_id) WHEN 'blob' THEN NULL ELSE a.agent_id END,
    'request_id', CASE typeof(a.request_id) WHEN 'blob' THEN NULL ELSE a.request_id END,
    'call_log_id', CASE typeof(a.call_log_id) WHEN 'blob' THEN NULL ELSE a.call_log_id END,
    'duration_secs', CASE typeof(a.duration_secs) WHEN 'blob' THEN NULL ELSE a.duration_secs END,
    'cost', CASE typeof(a.cost) WHEN 'blob' THEN NULL ELSE a.cost END,
    'transcript', CASE typeof(a.transcript) WHEN 'blob' THEN NULL ELSE a.transcript END,
    'recording_url', CASE typeof(a.recording_url) WHEN 'blob' THEN NULL ELSE a.recording_url END,
    -- Nested CASEs, not AND: each test runs only when the one before held.
    'extracted_variables', CASE typeof(a.raw_log) WHEN 'text' THEN
        CASE WHEN json_valid(a.raw_log) THEN
            CASE WHEN json_type(a.raw_log, '$.extracted_variables') = 'object'
                 THEN json_extract(a.raw_log, '$.extracted_variables') END
        END
    END,
    'error', CASE typeof(a.error) WHEN 'blob' THEN NULL ELSE a.error END,
    'sent_at', CASE typeof(a.sent_at) WHEN 'blob' THEN NULL ELSE a.sent_at END,
    'accepted_at', CASE typeof(a.accepted_at) WHEN 'blob' THEN NULL ELSE a.accepted_at END,
    'finished_at', CASE typeof(a.finished_at) WHEN 'blob' THEN NULL ELSE a.finished_at END
) AS doc
FROM attempts a;

-- An attempt got its final outcome (or a corrected one).
CREATE TRIGGER webhook_attempt_outcome AFTER UPDATE OF outcome ON attempts
WHEN NEW.outcome IS NOT NULL AND OLD.outcome IS NOT NEW.outcome
 AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE event = 'attempt.outcome')
BEGIN
    INSERT INTO webhook_outbox (event, contact_id, campaign_id, payload, created_at)
    VALUES ('attempt.outcome', NEW.contact_id, NEW.campaign_id, json_object(
        'campaign', json((SELECT doc FROM webhook_campaign_doc WHERE campaign_id = NEW.campaign_id)),
        'contact', json((SELECT doc FROM webhook_contact_doc WHERE contact_id = NEW.contact_id)),
        'attempt', json((SELECT doc FROM webhook_attempt_doc WHERE attempt_id = NEW.id))
    ), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;

-- A contact became final: done, exhausted, suppressed, invalid or cancelled.
-- (An OR chain, not IN: SQLite builds an IN list again for every row.)
CREATE TRIGGER webhook_contact_final AFTER UPDATE OF state ON contacts
WHEN (NEW.state = 'done' OR NEW.state = 'exhausted' OR NEW.state = 'suppressed'
      OR NEW.state = 'invalid' OR NEW.state = 'cancelled')
 AND OLD.state IS NOT NEW.state
 AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE event = 'contact.final')
BEGIN
    INSERT INTO webhook_outbox (event, contact_id, campaign_id, payload, created_at)
    VALUES ('contact.final', NEW.id, NEW.campaign_id, json_object(
        'campaign', json((SELECT doc FROM webhook_campaign_doc WHERE campaign_id = NEW.campaign_id)),
        'contact', json((SELECT doc FROM webhook_contact_doc WHERE contact_id = NEW.id)),
        'previous_state', CASE typeof(OLD.state) WHEN 'blob' THEN NULL ELSE OLD.state END,
        'last_attempt', json((SELECT doc FROM webhook_attempt_doc WHERE attempt_id =
            (SELECT MAX(b.id) FROM attempts b WHERE b.contact_id = NEW.id)))
    ), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;

-- A campaign completed or was paused (status_reason says by whom and why).
CREATE TRIGGER webhook_campaign_status AFTER UPDATE OF status ON campaigns
WHEN (NEW.status = 'completed' OR NEW.status = 'paused')
 AND OLD.status IS NOT NEW.status
 AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE event = 'campaign.' || NEW.status)
BEGIN
    INSERT INTO webhook_outbox (event, contact_id, campaign_id, payload, created_at)
    VALUES ('campaign.' || NEW.status, NULL, NEW.id, json_object(
        'campaign', json((SELECT doc FROM webhook_campaign_doc WHERE campaign_id = NEW.id)),
        'previous_status', CASE typeof(OLD.status) WHEN 'blob' THEN NULL ELSE OLD.status END,
        'progress', json_object(
            'contacts', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id),
            'pending', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'pending'),
            'in_progress', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'in_progress'),
            'retry_wait', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'retry_wait'),
            'done', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'done'),
            'exhausted', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'exhausted'),
            'suppressed', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'suppressed'),
            'invalid', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'invalid'),
            'cancelled', (SELECT COUNT(*) FROM contacts WHERE campaign_id = NEW.id AND state = 'cancelled')
        )
    ), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;

-- A callee asked not to be called again.
CREATE TRIGGER webhook_dnc_opt_out AFTER INSERT ON dnc
WHEN NEW.source = 'opt-out'
 AND EXISTS (SELECT 1 FROM webhook_subscriptions WHERE event = 'dnc.opt_out')
BEGIN
    INSERT INTO webhook_outbox (event, contact_id, campaign_id, payload, created_at)
    VALUES ('dnc.opt_out',
        (SELECT a.contact_id FROM attempts a WHERE a.id = NEW.attempt_id),
        (SELECT a.campaign_id FROM attempts a WHERE a.id = NEW.attempt_id),
        json_object(
            'phone_number', CASE typeof(NEW.phone_number) WHEN 'blob' THEN NULL ELSE NEW.phone_number END,
            'reason', CASE typeof(NEW.reason) WHEN 'blob' THEN NULL ELSE NEW.reason END,
            'added_at', CASE typeof(NEW.added_at) WHEN 'blob' THEN NULL ELSE NEW.added_at END,
            'campaign', json((SELECT d.doc FROM attempts a JOIN webhook_campaign_doc d
                              ON d.campaign_id = a.campaign_id WHERE a.id = NEW.attempt_id)),
            'contact', json((SELECT d.doc FROM attempts a JOIN webhook_contact_doc d
                             ON d.contact_id = a.contact_id WHERE a.id = NEW.attempt_id)),
            'attempt', json((SELECT doc FROM webhook_attempt_doc WHERE attempt_id = NEW.attempt_id))
        ), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
