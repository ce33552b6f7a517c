"""Reading one event of a room's current state, by key, through the caches."""

from __future__ import annotations

from typing import Any

from storage.store import Storage


async def current_state_content(
    storage: Storage, room_id: str, event_type: str, state_key: str = ""
) -> dict[str, Any]:
    """The content of the current state event at (event_type, state_key); {} if there is none."""
    snapshot = await storage.state.get_snapshot(room_id)
    event_id = snapshot.state.get((event_type, state_key)) if snapshot else None
    event = await storage.events.get_event(event_id) if event_id else None
    return event.content if event is not None else {}


async def member_display_name(storage: Storage, room_id: str, user_id: str) -> str | None:
    """The user's display name in the room (from their member event), if they set one."""
    name = (await current_state_content(storage, room_id, "m.room.member", user_id)).get(
        "displayname"
    )
    return name if isinstance(name, str) and name else None


async def room_name_and_alias(storage: Storage, room_id: str) -> tuple[str | None, str | None]:
    """The room's name (m.room.name) and canonical alias, each None when unset."""
    name = (await current_state_content(storage, room_id, "m.room.name")).get("name")
    alias = (await current_state_content(storage, room_id, "m.room.canonical_alias")).get("alias")
    return (
        name if isinstance(name, str) and name else None,
        alias if isinstance(alias, str) and alias else None,
    )
