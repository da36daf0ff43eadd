-- Tandem schema v1 (PostgreSQL). Keep in step with migrations/sqlite/0001_init.sql.
-- Ids are UUID text made by the application, so ciphertexts can be bound to their row
-- before insert. Times are Unix milliseconds (UTC). Columns named *_enc or body/answers/
-- evidence/note/prompt/provenance hold XChaCha20-Poly1305 blobs under the patient's data key.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('patient', 'clinician', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE patient_keys (
    patient_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    wrapped_key   BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE care_team (
    clinician_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    patient_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    assigned_at  BIGINT NOT NULL,
    assigned_by  TEXT,
    PRIMARY KEY (clinician_id, patient_id)
);
CREATE INDEX care_team_by_patient ON care_team (patient_id);

CREATE TABLE consents (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    granted     BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT,
    -- The audit entry's sequence number: orders two decisions made in the same millisecond.
    audit_seq   BIGINT NOT NULL
);
CREATE INDEX consents_by_patient ON consents (patient_id, audit_seq);

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL
);
CREATE INDEX conversations_by_patient ON conversations (patient_id, started_at);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    patient_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('patient', 'assistant', 'system')),
    body            BYTEA NOT NULL,
    provenance      BYTEA,
    created_at      BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE INDEX messages_by_patient ON messages (patient_id, created_at);

CREATE TABLE summaries (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    patient_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    first_message_id TEXT NOT NULL,
    last_message_id  TEXT NOT NULL,
    body             BYTEA NOT NULL,
    provenance       BYTEA,
    created_at       BIGINT NOT NULL
);

CREATE TABLE risk_events (
    id              TEXT PRIMARY KEY,
    patient_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    conversation_id TEXT,
    message_id      TEXT,
    source          TEXT NOT NULL,
    level           TEXT NOT NULL CHECK (level IN ('none', 'low', 'moderate', 'high', 'imminent')),
    categories      TEXT NOT NULL,
    evidence        BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    escalated_at    BIGINT
);
CREATE INDEX risk_events_by_patient ON risk_events (patient_id, created_at);

CREATE TABLE risk_acknowledgements (
    risk_event_id   TEXT PRIMARY KEY REFERENCES risk_events(id) ON DELETE CASCADE,
    clinician_id    TEXT NOT NULL,
    acknowledged_at BIGINT NOT NULL,
    note            BYTEA
);

CREATE TABLE assessments (
    id           TEXT PRIMARY KEY,
    patient_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    instrument   TEXT NOT NULL,
    answers      BYTEA NOT NULL,
    total        BIGINT,
    band         TEXT,
    completed_at BIGINT NOT NULL
);
CREATE INDEX assessments_by_patient ON assessments (patient_id, instrument, completed_at);

CREATE TABLE measure_schedules (
    patient_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    instrument TEXT NOT NULL,
    every_days BIGINT NOT NULL CHECK (every_days > 0),
    grace_days BIGINT NOT NULL DEFAULT 3 CHECK (grace_days >= 0),
    start_at   BIGINT NOT NULL,
    set_by     TEXT,
    PRIMARY KEY (patient_id, instrument)
);

CREATE TABLE care_plan_items (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    body       BYTEA NOT NULL,
    status     TEXT NOT NULL DEFAULT 'active',
    due_at     BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX care_plan_items_by_patient ON care_plan_items (patient_id);

CREATE TABLE ai_preferences (
    patient_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    body       BYTEA NOT NULL,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);

-- Guided exercises (thought record, activation, grounding, breathing): the step machine's
-- state, sealed, so a patient can pause and resume and the clinician can see progress.
CREATE TABLE exercise_sessions (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    state      BYTEA NOT NULL,
    completed  BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX exercise_sessions_by_patient ON exercise_sessions (patient_id, updated_at);

-- Between-session check-ins. claimed_by/claimed_until let several server instances share
-- the job without sending one twice.
CREATE TABLE checkins (
    id            TEXT PRIMARY KEY,
    patient_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    clinician_id  TEXT,
    due_at        BIGINT NOT NULL,
    status        TEXT NOT NULL,
    prompt        BYTEA,
    created_at    BIGINT NOT NULL,
    claimed_by    TEXT,
    claimed_until BIGINT
);
CREATE INDEX checkins_due ON checkins (status, due_at);

-- Web sign-in. Only the SHA-256 of a session's opaque token is stored, so a copy of the
-- database cannot be used to sign in. Times are passed in by the server (testable expiry).
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    mfa_verified BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Failed sign-ins per login name (known or not, so lockout does not reveal which exist).
CREATE TABLE login_attempts (
    username        TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until    BIGINT
);

-- TOTP secrets, sealed with a per-user key that the master key wraps (like patient keys).
-- last_step is the last accepted time step: a code is never accepted twice.
CREATE TABLE totp_secrets (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    wrapped_key   BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    secret        BYTEA NOT NULL,
    confirmed     BIGINT NOT NULL DEFAULT 0,
    last_step     BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

-- "Talk to my clinician" requests, open until a clinician resolves them.
CREATE TABLE talk_requests (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    note        BYTEA,
    created_at  BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT
);
CREATE INDEX talk_requests_by_patient ON talk_requests (patient_id, created_at);

-- Mood check-ins: a 0-10 rating (sealed with the words, like any clinical value).
CREATE TABLE mood_checkins (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mood_checkins_by_patient ON mood_checkins (patient_id, created_at);

-- Append-only, hash-chained. No foreign keys: entries outlive the rows they describe.
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    actor      TEXT,
    actor_role TEXT NOT NULL,
    action     TEXT NOT NULL,
    patient    TEXT,
    reason     TEXT,
    detail     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_by_patient ON audit_log (patient, seq);

-- The chain head. Every write transaction updates this row first, which serialises
-- appends (and takes SQLite's write lock up front, so no transaction must upgrade a read).
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION tandem_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION tandem_audit_append_only();
