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
