"""Applying a room's server ACL to what another server asks of us or sends us."""

from __future__ import annotations

from homeserver.errors import forbidden
from homeserver.rooms.server_acl import ACL_EVENT_TYPE, server_allowed
from storage.store import Storage


async def origin_allowed(storage: Storage, origin: str, room_id: str) -> bool:
    """Whether the current ACL of `room_id` lets `origin` take part; rooms we do not know of
    have no ACL here."""
    snapshot = await storage.state.get_snapshot(room_id)
    acl_id = snapshot.state.get((ACL_EVENT_TYPE, "")) if snapshot else None
    if acl_id is None:
        return True
    acl = await storage.events.get_event(acl_id)
    return acl is None or server_allowed(origin, acl.content)


async def require_origin_allowed(storage: Storage, origin: str, room_id: str) -> None:
    """403 M_FORBIDDEN, as the spec asks, when the room's ACL denies `origin`."""
    if not await origin_allowed(storage, origin, room_id):
        raise forbidden(f"Server {origin} is denied by the server ACL of this room")
