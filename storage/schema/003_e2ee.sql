-- End-to-end encryption: the server stores and relays public keys, signatures, encrypted
-- backups and to-device messages; it never sees a private key. Portable SQL: runs unchanged on
-- SQLite and PostgreSQL.

-- Each device's identity keys, as the device uploaded and signed them (canonical JSON).
CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    uploaded_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- One-time keys not yet claimed. upload_order numbers the uploads of a device, so that keys
-- are handed out in the order they were uploaded (the spec's rule for /keys/claim).
CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    upload_order BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);

-- At most one fallback key per device and algorithm; `used` once /keys/claim handed it out.
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- The current cross-signing keys of each user: key_type is master, self_signing or
-- user_signing; public_key is the unpadded base64 ed25519 key (its key ID minus "ed25519:").
CREATE TABLE e2e_cross_signing_keys (
    user_id TEXT NOT NULL,
    key_type TEXT NOT NULL,
    public_key TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded through /keys/signatures/upload: signer_key_id ("ed25519:...") of
-- signer_user_id signed target_key_id (a device ID or a master public key) of target_user_id.
CREATE TABLE e2e_cross_signing_signatures (
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);

-- The device-list stream: "user_id's devices or keys changed" at stream_id. only_for is NULL
-- for news that everyone sharing a room with user_id gets; otherwise only that user sees it
-- (their own user-signing signatures, which nobody else may see).
CREATE TABLE device_lists_stream (
    stream_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    only_for TEXT
);
CREATE INDEX device_lists_stream_by_id ON device_lists_stream (stream_id);

-- To-device messages waiting for their device: deleted once a sync acknowledges them.
CREATE TABLE device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    message_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_id)
);

-- The (device, event type, transaction ID) of each /sendToDevice: a retry sends nothing again.
CREATE TABLE device_inbox_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, event_type, txn_id)
);
CREATE INDEX device_inbox_txns_by_ts ON device_inbox_txns (inserted_ts);

-- Server-side key backups. Deleted versions keep their row (deleted TRUE), so that a version
-- number is never reused and deleting twice succeeds. etag changes whenever the keys change.
CREATE TABLE e2e_room_keys_versions (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE e2e_room_keys (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified BOOLEAN NOT NULL,
    session_data TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
);
