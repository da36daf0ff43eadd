-- On-call rota and escalation of unacknowledged crisis alerts (issue 6).
-- A crisis alert nobody on the patient's care team acknowledges within the configured time
-- is escalated to every clinician on call; the escalation gives that clinician access to
-- the patient's record (each read audited with the reason) so they can act on it.

CREATE TABLE on_call (
    clinician_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    since        BIGINT NOT NULL,
    set_by       TEXT
);

CREATE TABLE risk_escalations (
    risk_event_id TEXT NOT NULL REFERENCES risk_events(id) ON DELETE CASCADE,
    clinician_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    patient_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    escalated_at  BIGINT NOT NULL,
    PRIMARY KEY (risk_event_id, clinician_id)
);
CREATE INDEX risk_escalations_by_clinician ON risk_escalations (clinician_id, patient_id);
CREATE INDEX risk_events_unescalated ON risk_events (escalated_at, created_at);
