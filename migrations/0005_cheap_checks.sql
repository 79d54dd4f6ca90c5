-- no-transaction
-- Rebuilds `contacts` and `attempts` with the same columns, in the same order,
-- and the same rules, written so that SQLite checks them cheaply:
--
-- * A CHECK (or a partial index's WHERE) of the form `x IN ('a', 'b', 'c',
--   ...)` builds a temporary table of its list again for every row written
--   (SQLite reuses it only in a query), about 0.8 µs a row; the same rule
--   written as `x = 'a' OR x = 'b' OR ...` costs one comparison for the
--   common first value. Importing a million contacts spent a third of its
--   time in this one check.
-- * `UNIQUE (campaign_id, phone_number)` becomes `UNIQUE (phone_number,
--   campaign_id)`, the same rule, whose index also serves lookups of a number
--   across campaigns, so `contacts_by_number` is no longer kept: one B-tree
--   fewer to update for every contact written.
-- * The insert trigger of migration 2 is not recreated. Its mere presence
--   made SQLite stage every multi-row INSERT in a temporary table first (a
--   tenth of an import's time), though it only ever acted on rows other
--   programs insert. Those rows are validated by the daemon before their
--   first dial (`validated = 0`), and that validation now writes
--   `next_attempt_at` through the update trigger, which makes it canonical
--   or the contact invalid exactly as the insert trigger did; the due query
--   refuses a non-canonical time on any other row.
--
-- SQLite cannot change a table's constraints in place, so each table is
-- copied into a new one (SQLite's documented twelve-step procedure): foreign
-- keys are off while the tables are swapped, so that dropping the old
-- `contacts` does not cascade to the attempts, and `legacy_alter_table`
-- keeps the views, which name the tables, from being checked half-way. All
-- of it is one transaction: a failure leaves the database as it was. On a
-- large database this copies every contact and attempt once, at the first
-- start of this version.
PRAGMA foreign_keys = OFF;
PRAGMA legacy_alter_table = ON;
BEGIN IMMEDIATE;

CREATE TABLE contacts_rebuilt (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    -- E.164 once validated; another program may insert a raw number, which the
    -- daemon normalises (or marks invalid) before the first dial.
    phone_number    TEXT    NOT NULL,
    call_context    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(call_context)),
    timezone        TEXT,
    agent_id        INTEGER,
    external_id     TEXT,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state = 'pending' OR state = 'in_progress' OR state = 'retry_wait'
                           OR state = 'done' OR state = 'exhausted' OR state = 'suppressed'
                           OR state = 'invalid' OR state = 'cancelled'),
    -- Attempts that placed, or may have placed, a call.
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT,
    -- 1 once phone_number is known to be E.164 (imports write 1; direct inserts leave 0).
    validated       INTEGER NOT NULL DEFAULT 0 CHECK (validated IN (0, 1)),
    invalid_reason  TEXT,
    import_id       INTEGER REFERENCES imports(id) ON DELETE SET NULL,
    source_line     INTEGER,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    -- One contact per number and campaign; also the index for a number's
    -- contacts across campaigns.
    UNIQUE (phone_number, campaign_id)
);
INSERT INTO contacts_rebuilt SELECT * FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_rebuilt RENAME TO contacts;

-- The scheduler's "due contacts" query: campaign, state, then due time.
CREATE INDEX contacts_due ON contacts(campaign_id, state, next_attempt_at);
-- Contacts another program inserted and the daemon has not validated yet.
CREATE INDEX contacts_unvalidated ON contacts(campaign_id, id) WHERE validated = 0;

-- The update trigger of migration 2, unchanged (it went with the old table).
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

CREATE TABLE attempts_rebuilt (
    id              INTEGER PRIMARY KEY,
    contact_id      INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    attempt_no      INTEGER NOT NULL CHECK (attempt_no >= 1),
    state           TEXT    NOT NULL DEFAULT 'sending'
                    CHECK (state = 'sending' OR state = 'accepted' OR state = 'rejected'
                           OR state = 'uncertain' OR state = 'not_placed'),
    agent_id        INTEGER NOT NULL,
    to_number       TEXT    NOT NULL,
    request_id      TEXT,
    call_log_id     INTEGER,
    provider_status TEXT,
    outcome         TEXT    CHECK (outcome IS NULL OR outcome = 'completed' OR outcome = 'no_answer'
                                   OR outcome = 'busy' OR outcome = 'failed' OR outcome = 'voicemail'
                                   OR outcome = 'cancelled' OR outcome = 'unknown'),
    duration_secs   REAL,
    transcript      TEXT,
    recording_url   TEXT,
    cost            REAL,
    raw_log         TEXT    CHECK (raw_log IS NULL OR json_valid(raw_log)),
    raw_response    TEXT,
    error           TEXT,
    -- HTTP tries made inside this attempt (safe retries only).
    tries           INTEGER NOT NULL DEFAULT 0,
    sent_at         TEXT    NOT NULL,
    accepted_at     TEXT,
    finished_at     TEXT,
    -- When an attempt became uncertain (migration 3).
    uncertain_at    TEXT,
    UNIQUE (contact_id, attempt_no)
);
INSERT INTO attempts_rebuilt SELECT * FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_rebuilt RENAME TO attempts;

-- A call log links at most one attempt; a request id names at most one attempt.
CREATE UNIQUE INDEX attempts_by_call_log ON attempts(call_log_id) WHERE call_log_id IS NOT NULL;
CREATE UNIQUE INDEX attempts_by_request ON attempts(request_id) WHERE request_id IS NOT NULL;
-- The reconciler's "outstanding attempts" query. Its condition is evaluated
-- for every attempt written, so it too is an OR chain; a query uses the index
-- only when it repeats the condition exactly (`live_attempt!` in the store).
CREATE INDEX attempts_outstanding ON attempts(agent_id, sent_at)
    WHERE outcome IS NULL AND (state = 'sending' OR state = 'accepted' OR state = 'uncertain');
CREATE INDEX attempts_by_contact ON attempts(contact_id, id);
CREATE INDEX attempts_by_campaign ON attempts(campaign_id, outcome);

COMMIT;
PRAGMA legacy_alter_table = OFF;
PRAGMA foreign_keys = ON;
