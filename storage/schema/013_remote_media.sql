-- Media of other servers, fetched over federation and cached here. Portable SQL.
-- The bytes live in the content store like local media (named by sha256, so thumbnails of
-- remote media are shared with identical local content); these rows say which mxc:// URI of
-- another server is which content. `authenticated` as in local_media: set for media fetched
-- while the unauthenticated download endpoints were frozen, which those never serve.
CREATE TABLE remote_media_cache (
    media_origin TEXT NOT NULL,
    media_id TEXT NOT NULL,
    fetched_ts BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    upload_name TEXT,
    media_length BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    authenticated BOOLEAN NOT NULL,
    width INTEGER,
    height INTEGER,
    animated BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (media_origin, media_id)
);
CREATE INDEX remote_media_cache_by_sha256 ON remote_media_cache (sha256);
