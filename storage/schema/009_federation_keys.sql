-- Other servers' signing keys, as fetched from them or from a notary. Portable SQL.

-- Each verify key we have seen, kept after it expires: old events stay verifiable.
-- valid_until_ts is the document's valid_until_ts (capped at 7 days) for a current key, or the
-- key's expired_ts for an old one.
CREATE TABLE server_signature_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    verify_key TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    fetched_ts BIGINT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);

-- The newest self-signed key document of each server, exactly as it signed it: what we serve
-- as a notary (/_matrix/key/v2/query), with our signature added on the way out.
CREATE TABLE server_key_documents (
    server_name TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    fetched_ts BIGINT NOT NULL
);
