-- Dependence nudges (issue 4): when the companion suggested turning to the clinician and to
-- people the patient trusts, and why (reason codes only, no text), so it does not nag and
-- the clinician can see it.
CREATE TABLE companion_nudges (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reasons    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX companion_nudges_by_patient ON companion_nudges (patient_id, created_at);
