"""Spaces: walking a space's m.space.child tree (GET /hierarchy), and the joins that space
membership allows (restricted join rules).

The walk is depth-first in the spec's child order: a room's children are visited, in order,
before its next sibling. Each room is listed once, which also breaks loops. A page stops after
`limit` rooms; the rest of the walk (the stack of rooms still to visit and the rooms already
seen) is stored under the `next_batch` token, so the next page continues exactly where this one
stopped, whatever changes in the space meanwhile.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from homeserver.clock import Clock
from homeserver.directory.summaries import RoomSummary, allowed_room_ids, load_summary
from homeserver.errors import Codes, MatrixError, forbidden
from homeserver.events.event import Event
from homeserver.events.room_versions import get_room_version
from homeserver.identifiers import server_of
from homeserver.rooms.auth_rules import AUTHORISING_USER
from homeserver.rooms.power_levels import get_named_level, get_user_power_level
from storage.directory import HierarchySession
from storage.state import RoomSnapshot
from storage.store import Storage

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_DEPTH = 50
SESSION_TTL_MS = 30 * 60 * 1000

# The spec's valid `order`: 1 to 50 characters from \x20 to \x7E.
_ORDER_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))


@dataclass
class HierarchyRequest:
    user_id: str
    room_id: str
    suggested_only: bool = False
    # As the client sent it (None when absent): a later page must send the same.
    max_depth: int | None = None
    limit: int = DEFAULT_LIMIT
    from_token: str | None = None


class SpaceHierarchy:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock

    async def get_hierarchy(self, request: HierarchyRequest) -> dict[str, Any]:
        root = await load_summary(self.storage, request.room_id)
        if root is None or not await self.may_see(request.user_id, root):
            raise forbidden("You are not allowed to view this room")
        if request.from_token is not None:
            stack, seen = await self._resume(request)
        else:
            stack, seen = [(request.room_id, 0)], set()
        max_depth = min(MAX_DEPTH if request.max_depth is None else request.max_depth, MAX_DEPTH)
        limit = min(request.limit, MAX_LIMIT)
        rooms: list[dict[str, Any]] = []
        while stack and len(rooms) < limit:
            room_id, depth = stack.pop()
            if room_id in seen:
                continue
            seen.add(room_id)
            listed = await self._visit(request, room_id)
            if listed is None:
                continue
            chunk, children = listed
            rooms.append(chunk)
            if depth < max_depth:
                stack.extend((c, depth + 1) for c in reversed(children) if c not in seen)
        body: dict[str, Any] = {"rooms": rooms}
        if stack:
            body["next_batch"] = await self._save(request, stack, seen)
        return body

    async def _visit(
        self, request: HierarchyRequest, room_id: str
    ) -> tuple[dict[str, Any], list[str]] | None:
        """The room's entry and the children to walk, or None when the user may not see it (or
        the room is unknown here: other servers' rooms need federation)."""
        summary = await load_summary(self.storage, room_id)
        if summary is None or not await self.may_see(request.user_id, summary):
            return None
        children: list[Event] = []
        if summary.room_type == "m.space":
            children = await self._children(room_id, request.suggested_only)
        chunk = summary.to_json(extended=True)
        chunk["children_state"] = [_stripped_child(e) for e in children]
        return chunk, [e.state_key or "" for e in children]

    async def _children(self, room_id: str, suggested_only: bool) -> list[Event]:
        """The space's valid m.space.child events in the spec's order."""
        snapshot = await self.storage.state.get_snapshot(room_id)
        assert snapshot is not None
        ids = [eid for (t, _), eid in snapshot.state.items() if t == "m.space.child"]
        events = await self.storage.events.get_events(ids)
        children = [
            e
            for e in events.values()
            if e.redacted_by is None
            and _has_via(e.content)
            and (e.state_key or "").startswith("!")
            and (not suggested_only or e.content.get("suggested") is True)
        ]
        return sorted(children, key=child_order_key)

    async def may_see(self, user_id: str, summary: RoomSummary) -> bool:
        """The spec's rooms a hierarchy lists: joined or invited, world-readable, public,
        knockable, or restricted with an allow condition the user meets."""
        snapshot = await self.storage.state.get_snapshot(summary.room_id)
        membership = snapshot.membership_of(user_id) if snapshot else None
        if membership in ("join", "invite"):
            return True
        if membership == "ban":
            return False
        if summary.world_readable or summary.join_rule == "public":
            return True
        version = get_room_version(summary.room_version)
        if version is None:
            return False
        rule = summary.join_rule
        if (rule == "knock" and version.knock_join_rule) or (
            rule == "knock_restricted" and version.knock_restricted_join_rule
        ):
            return True
        if rule == "restricted" and version.restricted_join_rule:
            return await _is_joined_to_any(self.storage, user_id, summary.allowed_room_ids)
        return False

    async def _resume(self, request: HierarchyRequest) -> tuple[list[tuple[str, int]], set[str]]:
        assert request.from_token is not None
        token = request.from_token
        # Our tokens are URL-safe base64; anything else (NUL included) is not worth a query.
        exists = token.isascii() and token.replace("-", "").replace("_", "").isalnum()
        session = await self.storage.directory.get_hierarchy_session(token) if exists else None
        now = self.clock.time_msec()
        if (
            session is None
            or session.created_ts < now - SESSION_TTL_MS
            or session.user_id != request.user_id
            or session.room_id != request.room_id
        ):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown pagination token")
        if (session.suggested_only, session.max_depth) != (
            request.suggested_only,
            request.max_depth,
        ):
            raise MatrixError(
                400,
                Codes.INVALID_PARAM,
                "suggested_only and max_depth cannot change on paginated requests",
            )
        walk = json.loads(session.walk)
        return [(r, d) for r, d in walk["stack"]], set(walk["seen"])

    async def _save(
        self, request: HierarchyRequest, stack: list[tuple[str, int]], seen: set[str]
    ) -> str:
        token = secrets.token_urlsafe(18)
        now = self.clock.time_msec()
        walk = json.dumps({"stack": stack, "seen": sorted(seen)})
        session = HierarchySession(
            request.user_id, request.room_id, request.suggested_only, request.max_depth, walk, now
        )
        await self.storage.directory.create_hierarchy_session(token, session, now - SESSION_TTL_MS)
        return token


def child_order_key(event: Event) -> tuple[int, str, int, str]:
    """Children with a valid `order` first, by it; then by origin_server_ts; then room ID."""
    order = event.content.get("order")
    valid = (
        isinstance(order, str) and 0 < len(order) <= 50 and all(c in _ORDER_CHARS for c in order)
    )
    if valid:
        return 0, order, event.origin_server_ts, event.state_key or ""
    return 1, "", event.origin_server_ts, event.state_key or ""


def _has_via(content: dict[str, Any]) -> bool:
    via = content.get("via")
    return isinstance(via, list) and bool(via) and all(isinstance(s, str) for s in via)


def _stripped_child(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "state_key": event.state_key,
        "content": event.content,
        "sender": event.sender,
        "origin_server_ts": event.origin_server_ts,
    }


async def _is_joined_to_any(storage: Storage, user_id: str, room_ids: list[str]) -> bool:
    rooms = await storage.state.get_rooms_for_user(user_id)
    return any(rooms.get(room_id) == "join" for room_id in room_ids)


# Restricted joins ---------------------------------------------------------------------------


async def restricted_join_content(
    storage: Storage, server_name: str, snapshot: RoomSnapshot, user_id: str
) -> dict[str, str]:
    """For a join without an invite: {join_authorised_via_users_server: a local member who may
    invite} when the room is restricted (or knock_restricted) and the user is joined to one of
    the allowed rooms; {} when the room is not restricted. 403 when the user meets no allow
    condition, or no local member could vouch for the join."""
    version = get_room_version(snapshot.room_version)
    join_rules = await _state_event(storage, snapshot, "m.room.join_rules")
    rule = join_rules.content.get("join_rule") if join_rules else None
    if version is None or not (
        (rule == "restricted" and version.restricted_join_rule)
        or (rule == "knock_restricted" and version.knock_restricted_join_rule)
    ):
        return {}
    allowed = allowed_room_ids(join_rules.content if join_rules else None)
    if not await _is_joined_to_any(storage, user_id, allowed):
        raise forbidden("You need an invite, or to be joined to a room this room allows")
    authoriser = await _pick_authoriser(storage, server_name, snapshot)
    if authoriser is None:
        raise forbidden("No member of this room on this server may authorise your join")
    return {AUTHORISING_USER: authoriser}


async def _pick_authoriser(
    storage: Storage, server_name: str, snapshot: RoomSnapshot
) -> str | None:
    """The most powerful joined local member with the power to invite (ties by user ID)."""
    create = await _state_event(storage, snapshot, "m.room.create")
    power = await _state_event(storage, snapshot, "m.room.power_levels")
    if create is None:
        return None
    content = power.content if power is not None else None
    needed = get_named_level("invite", content)
    candidates = [
        (get_user_power_level(user, content, create), user)
        for user in snapshot.joined_users()
        if server_of(user) == server_name
    ]
    able = sorted((-level, user) for level, user in candidates if level >= needed)
    return able[0][1] if able else None


async def _state_event(storage: Storage, snapshot: RoomSnapshot, event_type: str) -> Event | None:
    event_id = snapshot.state.get((event_type, ""))
    return await storage.events.get_event(event_id) if event_id else None
