-- Third-party IDs (email addresses) of accounts, and the sessions that validate them.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- Addresses bound to accounts. An address belongs to one account at most; addresses are
-- stored canonicalised (lower case), so lookups compare them as they are.
CREATE TABLE user_threepids (
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    user_id TEXT NOT NULL,
    validated_at BIGINT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_by_user ON user_threepids (user_id);

-- One validation of an address (requestToken), for one purpose: 'registration',
-- 'add_threepid' or 'password_reset'. The client names it by (client_secret, address,
-- purpose) and is given session_id (the "sid"). token_hash is the SHA-256 of the token in the
-- newest mail, NULL once the link was used. Until validated_at is set, expires_at is when the
-- token stops working; after, it is when the validated session stops being usable.
CREATE TABLE threepid_validation_sessions (
    session_id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    last_send_attempt BIGINT NOT NULL,
    token_hash TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    validated_at BIGINT
);
CREATE UNIQUE INDEX threepid_validation_sessions_by_secret
    ON threepid_validation_sessions (client_secret, medium, address, purpose);
CREATE INDEX threepid_validation_sessions_by_expiry ON threepid_validation_sessions (expires_at);

-- What each completed stage of a user-interactive auth session established, as a JSON object
-- {stage: result} (the validated address of an m.login.email.identity stage), for the request
-- that completes the flow. NULL means no stage left a result.
ALTER TABLE ui_auth_sessions ADD COLUMN stage_results TEXT;
