"""Which events a user may see, by the room's history visibility at each event.

The rules (client-server spec, "Room History Visibility") read the state *before* each event:
its m.room.history_visibility and the user's membership then. The decision itself is a plain
function; `VisibilityFilter` only gathers the state it needs, once per state group.
"""

from __future__ import annotations

from collections.abc import Iterable

from homeserver.events.event import Event
from storage.store import Storage

VISIBILITIES = ("world_readable", "shared", "invited", "joined")


def may_see(
    visibility: str,
    membership_then: str | None,
    joined_after: bool,
) -> bool:
    """The spec's four rules for one event; unknown visibility values count as 'shared'."""
    if visibility not in VISIBILITIES:
        visibility = "shared"
    if visibility == "world_readable":
        return True
    if membership_then == "join":
        return True
    if visibility == "shared" and joined_after:
        return True
    return membership_then == "invite" and visibility == "invited"


class VisibilityFilter:
    """Filters events of one room for one user."""

    def __init__(self, storage: Storage, user_id: str) -> None:
        self.storage = storage
        self.user_id = user_id
        self._by_group: dict[int | None, tuple[str, str | None]] = {}
        self._join_positions: list[int] | None = None

    async def filter(self, events: Iterable[Event]) -> list[Event]:
        return [event for event in events if await self._allowed(event)]

    async def _allowed(self, event: Event) -> bool:
        visibility, membership = await self._state_then(event.state_group_before)
        if membership == "join" or visibility == "world_readable":
            return True
        # Only now is the user's join history needed: most events are seen as a member.
        if self._join_positions is None:
            self._join_positions = await self._load_join_positions(event.room_id)
        position = event.stream_ordering or 0
        joined_after = any(p > position for p in self._join_positions)
        if may_see(visibility, membership, joined_after):
            return True
        # A user's own membership event and a visibility change are judged by before *or* after.
        if event.type == "m.room.member" and event.state_key == self.user_id:
            return may_see(visibility, event.membership, joined_after)
        if event.type == "m.room.history_visibility" and event.state_key == "":
            return may_see(str(event.content.get("history_visibility")), membership, joined_after)
        return False

    async def _state_then(self, group: int | None) -> tuple[str, str | None]:
        cached = self._by_group.get(group)
        if cached is not None:
            return cached
        state = await self.storage.state.get_state_group(group) if group is not None else {}
        ids = [
            state[key]
            for key in (("m.room.history_visibility", ""), ("m.room.member", self.user_id))
            if key in state
        ]
        events = await self.storage.events.get_events(ids)
        visibility = "shared"
        membership = None
        for event in events.values():
            if event.type == "m.room.history_visibility":
                visibility = str(event.content.get("history_visibility", "shared"))
            else:
                membership = event.membership
        self._by_group[group] = (visibility, membership)
        return visibility, membership

    async def _load_join_positions(self, room_id: str) -> list[int]:
        rows = await self.storage.db.run(
            "user_joins_in_room",
            lambda txn: txn.query(
                "SELECT stream_ordering FROM room_memberships"
                " WHERE user_id = ? AND room_id = ? AND membership = 'join'",
                (self.user_id, room_id),
            ),
        )
        return [row[0] for row in rows]
