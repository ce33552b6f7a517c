-- The outbound federation queue: what we still owe each other server. Portable SQL.

-- One counter for every queue position (PDUs and EDUs alike), in a single row. Taking positions
-- updates the row, so concurrent writers (PostgreSQL) are serialised on it and commit in
-- position order; positions are never reused, even after the rows that held them are gone.
CREATE TABLE federation_queue_position (
    id INTEGER PRIMARY KEY,
    last_position BIGINT NOT NULL
);
INSERT INTO federation_queue_position (id, last_position) VALUES (1, 0);

-- Each queued PDU's JSON, once however many servers it goes to; removed with its last queue row.
CREATE TABLE federation_outbox_pdu_json (
    event_id TEXT PRIMARY KEY,
    pdu_json TEXT NOT NULL
);

-- PDUs waiting for a destination, oldest (lowest position) first. txn_id is set once the PDU is
-- part of a transaction that was attempted and not yet acknowledged: a retry resends exactly
-- those rows under the same transaction ID, so the receiver can deduplicate it.
CREATE TABLE federation_outbox_pdus (
    destination TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    txn_id TEXT,
    PRIMARY KEY (destination, position)
);
CREATE UNIQUE INDEX federation_outbox_pdus_event ON federation_outbox_pdus (destination, event_id);
CREATE INDEX federation_outbox_pdus_by_event ON federation_outbox_pdus (event_id);

-- EDUs waiting for a destination; txn_id as for PDUs.
CREATE TABLE federation_outbox_edus (
    destination TEXT NOT NULL,
    position BIGINT NOT NULL,
    edu_type TEXT NOT NULL,
    content_json TEXT NOT NULL,
    txn_id TEXT,
    PRIMARY KEY (destination, position)
);

-- Per destination: how often sending has failed in a row and when to try again (0: now), and
-- the transaction in flight (its ID and the origin_server_ts it was first sent with).
CREATE TABLE federation_destinations (
    destination TEXT PRIMARY KEY,
    failure_count INTEGER NOT NULL DEFAULT 0,
    retry_after_ts BIGINT NOT NULL DEFAULT 0,
    txn_id TEXT,
    txn_ts BIGINT
);
