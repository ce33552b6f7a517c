-- What an invite to a room this server is not in says about the room (stripped state: name,
-- avatar, join rules, ...), shown with the invite in the invitee's /sync. Portable SQL.
CREATE TABLE invite_room_state (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    state_json TEXT NOT NULL
);
