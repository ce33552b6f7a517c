"""Whether a user may read a room, and up to which point of its history.

A member reads everything up to now; a user who left or was banned reads up to that moment;
anyone may read a world-readable room. Everyone else gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.errors import forbidden
from storage.store import Storage


@dataclass(frozen=True)
class RoomAccess:
    membership: str | None
    # The highest events-stream position the user may read.
    upto: int


async def check_room_access(storage: Storage, user_id: str, room_id: str) -> RoomAccess:
    snapshot = await storage.state.get_snapshot(room_id)
    if snapshot is None:
        raise forbidden("You are not in this room")
    now = storage.persister.max_stream_ordering
    membership = snapshot.membership_of(user_id)
    if membership == "join":
        return RoomAccess(membership, now)
    if membership in ("leave", "ban"):
        member_event_id = snapshot.state[("m.room.member", user_id)]
        event = await storage.events.get_event(member_event_id)
        if event is not None and event.stream_ordering is not None:
            return RoomAccess(membership, event.stream_ordering)
    visibility_id = snapshot.state.get(("m.room.history_visibility", ""))
    if visibility_id is not None:
        event = await storage.events.get_event(visibility_id)
        if event is not None and event.content.get("history_visibility") == "world_readable":
            return RoomAccess(membership, now)
    raise forbidden("You are not in this room")
