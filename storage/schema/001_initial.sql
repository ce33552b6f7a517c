-- The foundation schema: accounts, rooms, events and their state, per-user data.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Booleans are BOOLEAN (SQLite stores 0/1).

-- Accounts -------------------------------------------------------------------------------------

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_guest BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts BIGINT NOT NULL
);

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    last_seen_user_agent TEXT,
    PRIMARY KEY (user_id, device_id)
);

-- Tokens are stored as SHA-256 hashes: a database dump does not hand out sessions.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    valid_until_ms BIGINT,
    refresh_token_hash TEXT,
    created_ts BIGINT NOT NULL
);
CREATE INDEX access_tokens_by_device ON access_tokens (user_id, device_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    expiry_ts BIGINT,
    -- The refresh token this one replaced. The old one stays usable (a client may not have
    -- received our answer) until this token or its access token is used.
    prev_token_hash TEXT,
    created_ts BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_prev ON refresh_tokens (prev_token_hash);
CREATE INDEX refresh_tokens_by_device ON refresh_tokens (user_id, device_id);

CREATE TABLE profiles (
    user_id TEXT PRIMARY KEY,
    displayname TEXT,
    avatar_url TEXT
);

-- User-interactive auth sessions survive a restart between the stages of a flow.
CREATE TABLE ui_auth_sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT,
    uri TEXT NOT NULL,
    method TEXT NOT NULL,
    completed_stages TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);

-- Rooms and events ---------------------------------------------------------------------------

CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT,
    is_public BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts BIGINT NOT NULL,
    -- The state group of the room's current state, kept by the event persister.
    current_state_group BIGINT
);

-- Each event once, as canonical JSON of its PDU (without `unsigned`), plus the columns we query.
-- stream_ordering is the position in the events stream (NULL for outliers); state_before and
-- state_after are the state groups of the room's state before and after the event.
CREATE TABLE events (
    event_id TEXT PRIMARY KEY,
    stream_ordering BIGINT UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    received_ts BIGINT NOT NULL,
    outlier BOOLEAN NOT NULL DEFAULT FALSE,
    rejected_reason TEXT,
    state_before BIGINT,
    state_after BIGINT,
    json TEXT NOT NULL
);
CREATE INDEX events_by_room_stream ON events (room_id, stream_ordering);

CREATE TABLE event_edges (
    event_id TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_by_prev ON event_edges (prev_event_id);

CREATE TABLE event_forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- A redaction that applies to its target (checked when it was persisted).
CREATE TABLE redactions (
    event_id TEXT PRIMARY KEY,
    redacts TEXT NOT NULL
);
CREATE INDEX redactions_by_target ON redactions (redacts);

-- State snapshots: a group holds its delta against prev_group (or everything, when prev_group is
-- NULL); a NULL event_id removes the key. delta_depth bounds how far a load walks.
CREATE TABLE state_groups (
    id BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL,
    prev_group BIGINT,
    delta_depth INTEGER NOT NULL
);

CREATE TABLE state_group_entries (
    state_group BIGINT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT,
    PRIMARY KEY (state_group, type, state_key)
);

-- The room's state now. membership is filled for m.room.member rows.
CREATE TABLE current_state (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_members ON current_state (state_key, type);

-- Every membership change, for "which rooms did this user leave since token T".
CREATE TABLE room_memberships (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    membership TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX room_memberships_by_user ON room_memberships (user_id, stream_ordering);

-- A client's (device, transaction ID) for an event it sent: resending returns the first event.
CREATE TABLE event_txn_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, scope, txn_id)
);
CREATE INDEX event_txn_ids_by_event ON event_txn_ids (event_id);

CREATE TABLE room_aliases (
    room_alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL
);
CREATE INDEX room_aliases_by_room ON room_aliases (room_id);

-- Per-user data ------------------------------------------------------------------------------

-- Global account data has room_id ''.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_by_stream ON account_data (user_id, stream_id);

CREATE TABLE user_filters (
    user_id TEXT NOT NULL,
    filter_id BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- Rooms a user has forgotten after leaving: they no longer appear in /sync's leave section.
CREATE TABLE forgotten_rooms (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
