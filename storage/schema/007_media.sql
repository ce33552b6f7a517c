-- The media repository. Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- File contents live under media_store_path, named by their SHA-256: these tables say which
-- media ID (or thumbnail) is which content.

-- Media uploaded to this server. A row made by POST /create has no content yet (sha256 NULL)
-- and expires at unused_expires_at unless the upload comes first; an uploaded row has
-- unused_expires_at NULL. `authenticated` is set for media uploaded while the unauthenticated
-- download endpoints were frozen (enable_authenticated_media): those never serve it.
-- width/height/animated describe images we can thumbnail (NULL/FALSE otherwise), with width and
-- height as displayed (after the EXIF orientation).
CREATE TABLE local_media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    unused_expires_at BIGINT,
    upload_ts BIGINT,
    media_type TEXT,
    upload_name TEXT,
    media_length BIGINT,
    sha256 TEXT,
    authenticated BOOLEAN NOT NULL,
    width INTEGER,
    height INTEGER,
    animated BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX local_media_by_user ON local_media (user_id, unused_expires_at);
CREATE INDEX local_media_by_sha256 ON local_media (sha256);

-- Thumbnails, keyed by the content they were made from, so identical uploads share them too.
-- (width, height, method) is one of the configured thumbnail sizes.
CREATE TABLE media_thumbnails (
    source_sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    method TEXT NOT NULL,
    media_type TEXT NOT NULL,
    thumbnail_sha256 TEXT NOT NULL,
    thumbnail_length BIGINT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (source_sha256, width, height, method, media_type)
);

-- URL previews: the OpenGraph JSON we answered with, reused until expires_ts.
CREATE TABLE url_previews (
    url TEXT PRIMARY KEY,
    fetched_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    og_json TEXT NOT NULL
);
