-- Receipts and presence: the ephemeral streams that must survive a restart (typing does not).
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- The latest receipt of each (room, user, receipt type, thread). thread_id is '' for an
-- unthreaded receipt, 'main' or a thread root's event ID otherwise: a primary key column
-- cannot be NULL. event_stream_ordering is the receipted event's position, so that a receipt
-- for an older event can be refused without reading the events table.
CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_stream_ordering BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_by_stream ON receipts (stream_id);
CREATE INDEX receipts_by_room_stream ON receipts (room_id, stream_id);

-- The latest presence of each local user. stream_id is the presence stream position of the
-- last change that clients were told about.
CREATE TABLE presence (
    user_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL,
    stream_id BIGINT NOT NULL
);
CREATE INDEX presence_by_stream ON presence (stream_id);
