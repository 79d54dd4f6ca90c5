-- Caller-number pools and the spend cap.
--
-- * `caller_numbers`: the caller ids an operator imported on the provider's
--   side, by the API's `from_number_id` (`id`), grouped in named pools.
--   `max_calls_per_day`: placed calls from the number in any rolling 24 h
--   (NULL or 0: no cap of its own). `active = 0` takes it out of rotation
--   without forgetting its history.
-- * `campaigns.caller_pool`: the pool whose numbers the campaign's calls go
--   out from (NULL: `from_number_id`, or none, as before).
-- * `campaigns.max_cost`: the spend cap, in the provider's currency (NULL: no
--   cap). `campaigns.cost_estimate`: the cost assumed for a call awaiting
--   its outcome while the campaign has no reconciled cost to average (set
--   from `campaign_defaults.cost_estimate` at import; NULL: none).
-- * `campaign_spend(campaign_id, spent, costed)`: each campaign's reconciled
--   cost and the number of attempts that have one, kept by triggers on
--   `attempts` (read by the spend cap; the view sums the attempts itself).
-- * `attempts.from_number_id`: the pool number picked for the attempt at
--   the instant of dialing (NULL for a campaign without a pool, whose
--   requests carry its fixed `from_number_id`); a pool number's daily cap
--   counts these, so a number that is both in a pool and another
--   campaign's fixed `from_number_id` has only its pool calls counted.
-- * `campaign_progress` gains caller_pool, max_cost, spent, cost_committed,
--   held_pool and held_spend_cap; `contact_outcomes` gains from_number_id.
--   Both keep every earlier column, in the same order.
CREATE TABLE caller_numbers (
    id                INTEGER PRIMARY KEY CHECK (id > 0),
    phone_number      TEXT    NOT NULL,
    pool              TEXT    NOT NULL CHECK (length(trim(pool)) > 0),
    active            INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    max_calls_per_day INTEGER CHECK (max_calls_per_day IS NULL
                                     OR (typeof(max_calls_per_day) = 'integer' AND max_calls_per_day >= 0)),
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX caller_numbers_by_pool ON caller_numbers(pool, active);

ALTER TABLE campaigns ADD COLUMN caller_pool TEXT;
-- A number, or nothing: text ('$10', '12,50') would make every read of the
-- campaigns table fail, and with it every sweep.
ALTER TABLE campaigns ADD COLUMN max_cost REAL
    CHECK (max_cost IS NULL OR (typeof(max_cost) IN ('integer', 'real') AND max_cost >= 0));
ALTER TABLE campaigns ADD COLUMN cost_estimate REAL
    CHECK (cost_estimate IS NULL OR (typeof(cost_estimate) IN ('integer', 'real') AND cost_estimate >= 0));
ALTER TABLE attempts ADD COLUMN from_number_id INTEGER;

-- Each campaign's reconciled cost, kept by triggers, so the spend cap is
-- read in one row at every claim and every try rather than summed over a
-- campaign's attempts (a second at a million attempts).
CREATE TABLE campaign_spend (
    campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id) ON DELETE CASCADE,
    spent       REAL    NOT NULL DEFAULT 0,
    costed      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO campaign_spend (campaign_id, spent, costed)
    SELECT campaign_id, COALESCE(SUM(cost), 0), COUNT(cost) FROM attempts GROUP BY campaign_id;

CREATE TRIGGER campaign_spend_on_cost AFTER UPDATE OF cost ON attempts
WHEN NEW.cost IS NOT OLD.cost
BEGIN
    INSERT OR IGNORE INTO campaign_spend (campaign_id) VALUES (NEW.campaign_id);
    UPDATE campaign_spend
       SET spent = spent + COALESCE(NEW.cost, 0) - COALESCE(OLD.cost, 0),
           costed = costed + (NEW.cost IS NOT NULL) - (OLD.cost IS NOT NULL)
     WHERE campaign_id = NEW.campaign_id;
END;

CREATE TRIGGER campaign_spend_on_insert AFTER INSERT ON attempts
WHEN NEW.cost IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO campaign_spend (campaign_id) VALUES (NEW.campaign_id);
    UPDATE campaign_spend SET spent = spent + NEW.cost, costed = costed + 1
     WHERE campaign_id = NEW.campaign_id;
END;

CREATE TRIGGER campaign_spend_on_delete AFTER DELETE ON attempts
WHEN OLD.cost IS NOT NULL
BEGIN
    UPDATE campaign_spend SET spent = spent - OLD.cost, costed = costed - 1
     WHERE campaign_id = OLD.campaign_id;
END;

-- A number's placed calls in the last 24 h, read by every pick.
CREATE INDEX attempts_by_from_number ON attempts(from_number_id, sent_at)
    WHERE from_number_id IS NOT NULL;

DROP VIEW campaign_progress;
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
    cp.next_sweep_at                       AS next_sweep_at,
    COALESCE(s.held_dnc, 0)                AS held_dnc,
    COALESCE(s.held_window, 0)             AS held_window,
    COALESCE(s.held_cap, 0)                AS held_cap,
    COALESCE(s.held_live_attempt, 0)       AS held_live_attempt,
    COALESCE(s.held_quiet_hours, 0)        AS held_quiet_hours,
    COALESCE(s.held_region, 0)             AS held_region,
    COALESCE(s.held, 0)                    AS held,
    cp.caller_pool                         AS caller_pool,
    cp.max_cost                            AS max_cost,
    COALESCE(a.cost, 0)                    AS spent,
    -- Reconciled cost plus, for each call that may still cost (accepted
    -- without an outcome, uncertain, or sending), the campaign's mean cost
    -- so far, else its cost_estimate, else nothing.
    COALESCE(a.cost, 0) + COALESCE(a.open_calls, 0) *
        COALESCE(a.cost / NULLIF(a.costed, 0), cp.cost_estimate, 0)
                                           AS cost_committed,
    COALESCE(s.held_pool, 0)               AS held_pool,
    COALESCE(s.held_spend_cap, 0)          AS held_spend_cap
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
           SUM(state = 'cancelled')     AS cancelled,
           SUM(state = 'suppressed')    AS held_dnc,
           SUM(hold_reason = 'window' AND (state = 'pending' OR state = 'retry_wait'))       AS held_window,
           SUM(hold_reason = 'cap' AND (state = 'pending' OR state = 'retry_wait'))          AS held_cap,
           SUM(hold_reason = 'live_attempt' AND (state = 'pending' OR state = 'retry_wait')) AS held_live_attempt,
           SUM(hold_reason = 'quiet_hours' AND (state = 'pending' OR state = 'retry_wait'))  AS held_quiet_hours,
           SUM(hold_reason = 'region' AND (state = 'pending' OR state = 'retry_wait'))       AS held_region,
           SUM(state = 'suppressed' OR (hold_reason IS NOT NULL AND (state = 'pending' OR state = 'retry_wait'))) AS held,
           SUM(hold_reason = 'pool' AND (state = 'pending' OR state = 'retry_wait'))         AS held_pool,
           SUM(hold_reason = 'spend_cap' AND (state = 'pending' OR state = 'retry_wait'))    AS held_spend_cap
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
           SUM(cost)                                        AS cost,
           COUNT(cost)                                      AS costed,
           SUM(outcome IS NULL AND state IN ('sending', 'accepted', 'uncertain')) AS open_calls
    FROM attempts GROUP BY campaign_id
) a ON a.campaign_id = cp.id;

DROP VIEW contact_outcomes;
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
    (SELECT SUM(t.cost) FROM attempts t WHERE t.contact_id = c.id) AS total_cost,
    c.hold_reason     AS hold_reason,
    a.from_number_id  AS from_number_id
FROM contacts c
JOIN campaigns cp ON cp.id = c.campaign_id
LEFT JOIN attempts a
       ON a.id = (SELECT MAX(b.id) FROM attempts b WHERE b.contact_id = c.id);
