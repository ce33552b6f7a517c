-- Event relationships (m.relates_to), threads, and finding events by time.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

-- One row per timeline event whose content has a well-formed m.relates_to with a rel_type.
-- The child's room, sender, type and position are copied here (they never change), so the
-- relations API and the bundled aggregations read this table alone. A redaction deletes the
-- row: a redacted child no longer relates to anything.
CREATE TABLE event_relations (
    event_id TEXT PRIMARY KEY,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    -- The annotation key (m.annotation), NULL for other relations.
    aggregation_key TEXT,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_relations_by_parent ON event_relations (relates_to_id, rel_type, stream_ordering);

-- Each thread root with the position of its newest reply: the threads list is ordered by it.
CREATE TABLE threads (
    room_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    latest_event_id TEXT NOT NULL,
    latest_stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (room_id, thread_id)
);
CREATE INDEX threads_by_activity ON threads (room_id, latest_stream_ordering);

-- /timestamp_to_event looks events up by their origin_server_ts.
CREATE INDEX events_by_room_ts ON events (room_id, origin_server_ts);
