-- Content reports and OpenID tokens. Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- What users reported to the server's admins (report_content module): an event (room_id and
-- event_id set), a whole room (room_id only) or a user (target_user_id only).
CREATE TABLE content_reports (
    report_id TEXT PRIMARY KEY,
    received_ts BIGINT NOT NULL,
    reporter TEXT NOT NULL,
    room_id TEXT,
    event_id TEXT,
    target_user_id TEXT,
    reason TEXT,
    score INTEGER
);
CREATE INDEX content_reports_by_ts ON content_reports (received_ts);

-- OpenID tokens a user handed to a third party, which exchanges them for the user ID through
-- the federation API. Stored as SHA-256 hashes, like access tokens.
CREATE TABLE openid_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    valid_until_ms BIGINT NOT NULL
);
CREATE INDEX openid_tokens_by_expiry ON openid_tokens (valid_until_ms);
