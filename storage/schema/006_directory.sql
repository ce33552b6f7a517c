-- Room directory, user directory and space hierarchy pagination.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL. The search-term indexes need
-- engine-specific operator classes or collations: they are in 006_directory_search.<engine>.sql,
-- named so that they sort (and run) after this file.

-- One row per room: what the public room list and the user directory read, derived from the
-- room's current state by homeserver/directory/room_stats.py after each relevant event.
-- state_group is the room's current_state_group the row was computed from: a row behind
-- rooms.current_state_group is recomputed at start-up, and an older computation never
-- overwrites a newer one.
CREATE TABLE room_stats (
    room_id TEXT PRIMARY KEY,
    state_group BIGINT NOT NULL,
    room_version TEXT NOT NULL,
    room_type TEXT,
    name TEXT,
    topic TEXT,
    canonical_alias TEXT,
    avatar_url TEXT,
    join_rule TEXT,
    history_visibility TEXT,
    guest_access TEXT,
    encryption TEXT,
    joined_members INTEGER NOT NULL,
    -- Name, topic and aliases casefolded, for the public room list's generic_search_term.
    search_text TEXT NOT NULL,
    -- Whether the room's members are visible in the user directory to everyone: a public join
    -- rule or world_readable history.
    members_public BOOLEAN NOT NULL
);
CREATE INDEX room_stats_by_members ON room_stats (joined_members, room_id);

-- The user directory: a user's searchable name and avatar (their own profile for local users;
-- their latest member event for remote ones).
CREATE TABLE user_directory (
    user_id TEXT PRIMARY KEY,
    display_name TEXT,
    avatar_url TEXT
);

-- Casefolded words of each user's ID and display name. A search matches word prefixes, so it
-- is an index range scan (see the engine-specific indexes), not a scan of every user.
CREATE TABLE user_directory_terms (
    user_id TEXT NOT NULL,
    term TEXT NOT NULL,
    PRIMARY KEY (user_id, term)
);

-- Paginating GET /hierarchy: the walk's remaining queue is kept here, so the next page continues
-- exactly where the previous one stopped, whatever changed in the space meanwhile.
CREATE TABLE hierarchy_sessions (
    token TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    suggested_only BOOLEAN NOT NULL,
    max_depth INTEGER,
    walk TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX hierarchy_sessions_by_ts ON hierarchy_sessions (created_ts);
