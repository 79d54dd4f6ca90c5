-- The dial-time rule, one live attempt per number and the per-number cap.
--
-- * `contacts.hold_reason`: why a contact is held back, set whenever one is
--   put off or suppressed, cleared when it is dialed. Values: `dnc`, `window`
--   (outside its campaign's calling window in some candidate zone),
--   `quiet_hours` (outside compliance.quiet_hours), `region` (outside its
--   state's or province's window), `cap` (the number
--   reached dispatch.max_calls_per_number_per_day), `live_attempt` (another
--   campaign's attempt to the number is still live), `paused` (campaign or
--   dispatching paused at the instant of dialing), `server_wait` (the API
--   asked to wait, or the claim waited longer than
--   dispatch.max_claim_wait_secs). No CHECK: new reasons come with new rules,
--   and a CHECK costs every contact write.
-- * `attempts_by_number`: a number's attempts across campaigns, for the cap
--   (calls in the last 24 h) and the live-attempt rule, read by every claim
--   and every dial-time check.
-- * `campaign_progress` gains held_dnc, held_window, held_cap,
--   held_live_attempt, held_quiet_hours, held_region and held (any reason); `contact_outcomes` gains
--   hold_reason. Both keep every earlier column, in the same order.
ALTER TABLE contacts ADD COLUMN hold_reason TEXT;

CREATE INDEX attempts_by_number ON attempts(to_number, sent_at);

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
    COALESCE(s.held, 0)                    AS held
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
           SUM(state = 'suppressed' OR (hold_reason IS NOT NULL AND (state = 'pending' OR state = 'retry_wait'))) AS held
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
    c.hold_reason     AS hold_reason
FROM contacts c
JOIN campaigns cp ON cp.id = c.campaign_id
LEFT JOIN attempts a
       ON a.id = (SELECT MAX(b.id) FROM attempts b WHERE b.contact_id = c.id);
