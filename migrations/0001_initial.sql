-- dialerd schema, version 1. Tables, columns and views named here are a public
-- interface (operators and other programs read and insert while the daemon
-- runs): extend, never rename. Times are ISO-8601 UTC text
-- ('2026-11-25T08:00:00Z'); JSON is stored as JSON text.

CREATE TABLE campaigns (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    agent_id          INTEGER,
    from_number_id    INTEGER,
    status            TEXT    NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'paused', 'cancelled', 'completed')),
    status_reason     TEXT,
    schedule          TEXT    NOT NULL DEFAULT '0 */5 * * * *',
    timezone          TEXT    NOT NULL DEFAULT 'UTC',
    window_start      TEXT    NOT NULL DEFAULT '09:00',
    window_end        TEXT    NOT NULL DEFAULT '20:00',
    max_attempts      INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    retry_delay_secs  INTEGER NOT NULL DEFAULT 3600 CHECK (retry_delay_secs >= 0),
    -- Outcomes that lead to another attempt, comma separated.
    retry_outcomes    TEXT    NOT NULL DEFAULT 'no_answer,busy,failed,voicemail',
    -- Per-outcome delays overriding retry_delay_secs, a JSON object such as {"busy": 600}.
    retry_delays      TEXT    CHECK (retry_delays IS NULL OR json_valid(retry_delays)),
    -- Default region for national numbers inserted directly ('US', 'GB').
    region            TEXT,
    -- Cap on calls accepted and not yet final; NULL uses dispatch.max_live_calls_per_campaign.
    max_live_calls    INTEGER CHECK (max_live_calls IS NULL OR max_live_calls >= 0),
    last_sweep_at     TEXT,
    next_sweep_at     TEXT,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE imports (
    id             INTEGER PRIMARY KEY,
    campaign_id    INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    source         TEXT    NOT NULL,
    sha256         TEXT    NOT NULL,
    rows_total     INTEGER NOT NULL DEFAULT 0,
    rows_imported  INTEGER NOT NULL DEFAULT 0,
    rows_duplicate INTEGER NOT NULL DEFAULT 0,
    rows_rejected  INTEGER NOT NULL DEFAULT 0,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT
);
CREATE INDEX imports_by_campaign ON imports(campaign_id, sha256);

CREATE TABLE import_rejects (
    import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    line      INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    raw       TEXT
);
CREATE INDEX import_rejects_by_import ON import_rejects(import_id, line);

CREATE TABLE contacts (
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
                    CHECK (state IN ('pending', 'in_progress', 'retry_wait', 'done',
                                     'exhausted', 'suppressed', 'invalid', 'cancelled')),
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
    UNIQUE (campaign_id, phone_number)
);
-- The scheduler's "due contacts" query: campaign, state, then due time.
CREATE INDEX contacts_due ON contacts(campaign_id, state, next_attempt_at);
CREATE INDEX contacts_by_number ON contacts(phone_number);

CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    contact_id      INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    attempt_no      INTEGER NOT NULL CHECK (attempt_no >= 1),
    state           TEXT    NOT NULL DEFAULT 'sending'
                    CHECK (state IN ('sending', 'accepted', 'rejected', 'uncertain', 'not_placed')),
    agent_id        INTEGER NOT NULL,
    to_number       TEXT    NOT NULL,
    request_id      TEXT,
    call_log_id     INTEGER,
    provider_status TEXT,
    outcome         TEXT    CHECK (outcome IS NULL OR outcome IN ('completed', 'no_answer', 'busy',
                                   'failed', 'voicemail', 'cancelled', 'unknown')),
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
    UNIQUE (contact_id, attempt_no)
);
-- A call log links at most one attempt; a request id names at most one attempt.
CREATE UNIQUE INDEX attempts_by_call_log ON attempts(call_log_id) WHERE call_log_id IS NOT NULL;
CREATE UNIQUE INDEX attempts_by_request ON attempts(request_id) WHERE request_id IS NOT NULL;
-- The reconciler's "outstanding attempts" query.
CREATE INDEX attempts_outstanding ON attempts(agent_id, sent_at)
    WHERE outcome IS NULL AND state IN ('sending', 'accepted', 'uncertain');
CREATE INDEX attempts_by_contact ON attempts(contact_id, id);
CREATE INDEX attempts_by_campaign ON attempts(campaign_id, outcome);

CREATE TABLE dnc (
    phone_number TEXT PRIMARY KEY,
    reason       TEXT,
    added_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- An audit trail of what the daemon and operators did (pauses, key failures,
-- recoveries), newest last.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    campaign_id INTEGER,
    contact_id  INTEGER,
    attempt_id  INTEGER,
    detail      TEXT
);
CREATE INDEX events_by_at ON events(at);

-- One row: the running daemon's heartbeat and global dispatch state.
CREATE TABLE daemon (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    pid             INTEGER,
    host            TEXT,
    version         TEXT,
    started_at      TEXT,
    heartbeat_at    TEXT,
    stopped_at      TEXT,
    -- Set when dispatching is paused for everyone (a 401/403 from the API).
    dispatch_paused TEXT,
    status_line     TEXT
);
INSERT INTO daemon (id) VALUES (1);

-- One row per campaign: contacts per state, calls per outcome, cost.
CREATE VIEW campaign_progress AS
SELECT
    cp.id                                  AS campaign_id,
    cp.name                                AS campaign,
    cp.status                              AS status,
    cp.status_reason                       AS status_reason,
    COALESCE(s.contacts, 0)                AS contacts,
    COALESCE(s.pending, 0)                 AS pending,
    COALESCE(s.in_progress, 0)             AS in_progress,
    COALESCE(s.retry_wait, 0)              AS retry_wait,
    COALESCE(s.done, 0)                    AS done,
    COALESCE(s.exhausted, 0)               AS exhausted,
    COALESCE(s.suppressed, 0)              AS suppressed,
    COALESCE(s.invalid, 0)                 AS invalid,
    COALESCE(s.cancelled, 0)               AS cancelled,
    COALESCE(a.attempts, 0)                AS attempts,
    COALESCE(a.placed, 0)                  AS calls_placed,
    COALESCE(a.completed, 0)               AS outcome_completed,
    COALESCE(a.no_answer, 0)               AS outcome_no_answer,
    COALESCE(a.busy, 0)                    AS outcome_busy,
    COALESCE(a.failed, 0)                  AS outcome_failed,
    COALESCE(a.voicemail, 0)               AS outcome_voicemail,
    COALESCE(a.outcome_cancelled, 0)       AS outcome_cancelled,
    COALESCE(a.unknown, 0)                 AS outcome_unknown,
    COALESCE(a.awaiting, 0)                AS awaiting_outcome,
    COALESCE(a.uncertain, 0)               AS uncertain,
    COALESCE(a.cost, 0)                    AS total_cost,
    cp.last_sweep_at                       AS last_sweep_at,
    cp.next_sweep_at                       AS next_sweep_at
FROM campaigns cp
LEFT JOIN (
    SELECT campaign_id,
           COUNT(*)                     AS contacts,
           SUM(state = 'pending')       AS pending,
           SUM(state = 'in_progress')   AS in_progress,
           SUM(state = 'retry_wait')    AS retry_wait,
           SUM(state = 'done')          AS done,
           SUM(state = 'exhausted')     AS exhausted,
           SUM(state = 'suppressed')    AS suppressed,
           SUM(state = 'invalid')       AS invalid,
           SUM(state = 'cancelled')     AS cancelled
    FROM contacts GROUP BY campaign_id
) s ON s.campaign_id = cp.id
LEFT JOIN (
    SELECT campaign_id,
           COUNT(*)                                         AS attempts,
           SUM(state = 'accepted')                          AS placed,
           SUM(outcome = 'completed')                       AS completed,
           SUM(outcome = 'no_answer')                       AS no_answer,
           SUM(outcome = 'busy')                            AS busy,
           SUM(outcome = 'failed')                          AS failed,
           SUM(outcome = 'voicemail')                       AS voicemail,
           SUM(outcome = 'cancelled')                       AS outcome_cancelled,
           SUM(outcome = 'unknown')                         AS unknown,
           SUM(state = 'accepted' AND outcome IS NULL)      AS awaiting,
           SUM(state IN ('uncertain', 'sending'))           AS uncertain,
           SUM(cost)                                        AS cost
    FROM attempts GROUP BY campaign_id
) a ON a.campaign_id = cp.id;

-- The latest attempt of every contact (NULL columns when it has none).
CREATE VIEW latest_attempts AS
SELECT a.*
FROM attempts a
WHERE a.id = (SELECT MAX(b.id) FROM attempts b WHERE b.contact_id = a.contact_id);

-- One row per contact with its latest attempt.
CREATE VIEW contact_outcomes AS
SELECT
    c.id              AS contact_id,
    c.campaign_id     AS campaign_id,
    cp.name           AS campaign,
    c.phone_number    AS phone_number,
    c.external_id     AS external_id,
    c.call_context    AS call_context,
    c.state           AS state,
    c.attempts        AS attempts,
    c.next_attempt_at AS next_attempt_at,
    c.invalid_reason  AS invalid_reason,
    a.id              AS attempt_id,
    a.attempt_no      AS attempt_no,
    a.state           AS attempt_state,
    a.outcome         AS outcome,
    a.provider_status AS provider_status,
    a.duration_secs   AS duration_secs,
    a.transcript      AS transcript,
    a.recording_url   AS recording_url,
    a.cost            AS cost,
    a.error           AS error,
    a.sent_at         AS sent_at,
    a.finished_at     AS finished_at,
    (SELECT SUM(t.cost) FROM attempts t WHERE t.contact_id = c.id) AS total_cost
FROM contacts c
JOIN campaigns cp ON cp.id = c.campaign_id
LEFT JOIN attempts a
       ON a.id = (SELECT MAX(b.id) FROM attempts b WHERE b.contact_id = c.id);
