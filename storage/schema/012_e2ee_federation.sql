-- End-to-end encryption across servers: other servers' users' keys as their servers last told
-- us, and the sequence of m.device_list_update EDUs we send about our own users.

-- Another server's user's device keys and cross-signing keys (master, self-signing) as the
-- /user/keys/query answer of their server, kept while a local user shares a room with them
-- (then their server tells us of every change) and dropped when one is announced.
CREATE TABLE remote_e2e_keys_cache (
    user_id TEXT NOT NULL PRIMARY KEY,
    keys_json TEXT NOT NULL,
    cached_ts BIGINT NOT NULL
);

-- What we last told other servers about each local user's devices (kind 'device', item_id the
-- device ID) and cross-signing keys (kind 'signing', item_id master or self_signing), as a hash
-- of the JSON sent: a change is announced when the current hash differs.
CREATE TABLE device_lists_announced (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, item_id)
);

-- The stream_id of the last m.device_list_update sent for each local user: the next one's
-- prev_id, and the stream_id of /user/devices.
CREATE TABLE device_lists_announced_position (
    user_id TEXT NOT NULL PRIMARY KEY,
    stream_id BIGINT NOT NULL
);

-- "Did this user's device list change after position P?" (before caching a fetched answer).
CREATE INDEX device_lists_stream_by_user ON device_lists_stream (user_id, stream_id);
