"""Reading a room's state, members and single events, as far as the reader may see."""

from __future__ import annotations

from typing import Any

from homeserver.clock import Clock
from homeserver.errors import forbidden, not_found
from homeserver.events.event import Event
from homeserver.rooms.access import check_room_access
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.sync.render import EventRenderer
from storage.state import StateMap
from storage.store import Storage


class RoomReader:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.renderer = EventRenderer(storage, clock)

    async def _visible_state(self, user_id: str, room_id: str) -> StateMap:
        """Current state for members; the state when they left for those who left."""
        access = await check_room_access(self.storage, user_id, room_id)
        if access.membership == "join" or access.membership not in ("leave", "ban"):
            snapshot = await self.storage.state.get_snapshot(room_id)
            assert snapshot is not None
            return dict(snapshot.state)
        return await self.storage.state.get_state_at_position(room_id, access.upto) or {}

    async def get_state(self, user_id: str, room_id: str) -> list[dict[str, Any]]:
        state = await self._visible_state(user_id, room_id)
        events = await self.storage.events.get_events(state.values())
        return await self.renderer.render(list(events.values()))

    async def get_state_event(
        self, user_id: str, room_id: str, event_type: str, state_key: str
    ) -> Event:
        state = await self._visible_state(user_id, room_id)
        event_id = state.get((event_type, state_key))
        event = await self.storage.events.get_event(event_id) if event_id else None
        if event is None:
            raise not_found("Event not found")
        return event

    async def get_members(
        self,
        user_id: str,
        room_id: str,
        membership: str | None = None,
        not_membership: str | None = None,
    ) -> list[dict[str, Any]]:
        state = await self._visible_state(user_id, room_id)
        ids = [eid for (t, _), eid in state.items() if t == "m.room.member"]
        events = await self.storage.events.get_events(ids)
        chosen = [
            e
            for e in events.values()
            if (membership is None or e.membership == membership)
            and (not_membership is None or e.membership != not_membership)
        ]
        return await self.renderer.render(chosen)

    async def get_joined_members(self, user_id: str, room_id: str) -> dict[str, dict[str, Any]]:
        access = await check_room_access(self.storage, user_id, room_id)
        if access.membership != "join":
            raise forbidden("You are not joined to this room")
        snapshot = await self.storage.state.get_snapshot(room_id)
        assert snapshot is not None
        ids = [snapshot.state[("m.room.member", u)] for u in snapshot.joined_users()]
        events = await self.storage.events.get_events(ids)
        return {
            e.state_key or "": {
                "display_name": e.content.get("displayname"),
                "avatar_url": e.content.get("avatar_url"),
            }
            for e in events.values()
        }

    async def get_event(self, user_id: str, room_id: str, event_id: str) -> dict[str, Any]:
        await check_room_access(self.storage, user_id, room_id)
        event = await self.storage.events.get_event(event_id)
        if event is None or event.room_id != room_id or event.outlier:
            raise not_found("Event not found")
        visible = await VisibilityFilter(self.storage, user_id).filter([event])
        if not visible:
            raise not_found("Event not found")
        return (await self.renderer.render(visible, user_id=user_id))[0]
