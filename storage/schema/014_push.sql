-- Push rules, notifications and pushers (client-server "Push Notifications"). Portable SQL.

-- Rules a user added. `position` orders a user's rules of one kind: lower is more important.
CREATE TABLE push_rules (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    conditions TEXT NOT NULL,
    actions TEXT NOT NULL,
    pattern TEXT,
    enabled SMALLINT NOT NULL,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- A user's changes to a server-default rule: NULL leaves that part as the default has it.
CREATE TABLE push_rule_default_changes (
    user_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    enabled SMALLINT,
    actions TEXT,
    PRIMARY KEY (user_id, rule_id)
);

-- What the push rules decided for each local user and event that notifies them, written with
-- the event. Unread counts are the rows after the user's read receipts; GET /notifications
-- lists them. thread_id is "main" for the main timeline, else the thread root's event ID.
-- One index only (every read is by user and position): each event writes a row per member.
CREATE TABLE event_push_actions (
    user_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    highlight SMALLINT NOT NULL,
    actions TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, stream_ordering)
);

-- Pushers: where a user's notifications go. (app_id, pushkey) is unique per user; a pusher
-- remembers how far it has pushed, so it resumes after a restart without pushing twice.
-- Web Push pushers stay dormant (activated = 0) until the client acknowledges ack_token.
CREATE TABLE pushers (
    id BIGINT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT,
    kind TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag TEXT,
    lang TEXT NOT NULL,
    data TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    last_stream_ordering BIGINT NOT NULL,
    activated SMALLINT NOT NULL,
    ack_token TEXT,
    ack_token_expires_ts BIGINT
);
CREATE UNIQUE INDEX pushers_by_key ON pushers (user_id, app_id, pushkey);
CREATE INDEX pushers_by_pushkey ON pushers (app_id, pushkey);
