"""Spaces: walking a space's m.space.child tree (GET /hierarchy), and the joins that space
membership allows (restricted join rules).

The walk is depth-first in the spec's child order: a room's children are visited, in order,
before its next sibling. Each room is listed once, which also breaks loops. A page stops after
`limit` rooms; the rest of the walk (the stack of rooms still to visit and the rooms already
seen) is stored under the `next_batch` token, so the next page continues exactly where this one
stopped, whatever changes in the space meanwhile.

Rooms this server is not in are asked of the servers their m.space.child event names (`via`),
through GET /_matrix/federation/v1/hierarchy when federation plugs in a `RemoteSpaces`. Answers
are cached for a few minutes, as the spec suggests, together with the summaries of the asked
space's children that come with them, so the walk does not ask again for those.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from homeserver.clock import Clock
from homeserver.directory.summaries import (
    RoomSummary,
    allowed_room_ids,
    is_room_id_shaped,
    load_summary,
)
from homeserver.errors import Codes, MatrixError, forbidden, not_found
from homeserver.events.event import Event
from homeserver.events.room_versions import get_room_version
from homeserver.identifiers import server_of
from homeserver.rooms.auth_rules import AUTHORISING_USER
from homeserver.rooms.power_levels import get_named_level, get_user_power_level
from storage.directory import HierarchySession
from storage.lru import LruCache
from storage.state import RoomSnapshot
from storage.store import Storage

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_DEPTH = 50
SESSION_TTL_MS = 30 * 60 * 1000
# Remote answers: kept this long, failures (nothing learnt) for less.
REMOTE_TTL_MS = 5 * 60 * 1000
REMOTE_FAILURE_TTL_MS = 60 * 1000
# How many of a child's `via` servers are asked before giving up on it.
MAX_VIA_SERVERS = 3

# The RoomSummary fields of a remote room's entry we pass on to clients, with their types.
_REMOTE_SUMMARY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "room_id": str,
    "num_joined_members": int,
    "world_readable": bool,
    "guest_can_join": bool,
    "name": str,
    "topic": str,
    "canonical_alias": str,
    "avatar_url": str,
    "join_rule": str,
    "room_type": str,
    "room_version": str,
    "encryption": str,
    "allowed_room_ids": list,
}

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


class RemoteSpaceError(Exception):
    """A server could not tell us about a room (unreachable, refused, or a bad answer)."""


class RemoteSpaces(Protocol):
    """Other servers' /hierarchy (federation provides this)."""

    async def get_hierarchy(
        self, server_name: str, room_id: str, suggested_only: bool
    ) -> dict[str, Any]:
        """The server's answer: {room, children, inaccessible_children}; RemoteSpaceError."""
        ...


@dataclass(frozen=True)
class _RemoteRoom:
    """A room known from another server's answer: its entry and the children to walk."""

    chunk: dict[str, Any]
    children: list[tuple[str, list[str]]]  # (room ID, via servers), in the spec's order


# A stack entry of the walk: the room, its depth, and the servers that may know it.
_Step = tuple[str, int, list[str]]


class SpaceHierarchy:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock
        self.remote: RemoteSpaces | None = None
        # (room_id, suggested_only) -> (expires at, the room or None when nobody could say)
        self._remote_rooms: LruCache[tuple[str, bool], tuple[int, _RemoteRoom | None]] = (
            LruCache(1000)
        )

    async def get_hierarchy(self, request: HierarchyRequest) -> dict[str, Any]:
        root = await load_summary(self.storage, request.room_id)
        if root is None or not await self.may_see(request.user_id, root):
            raise forbidden("You are not allowed to view this room")
        if request.from_token is not None:
            stack, seen = await self._resume(request)
        else:
            stack, seen = [(request.room_id, 0, [])], set()
        max_depth = min(MAX_DEPTH if request.max_depth is None else request.max_depth, MAX_DEPTH)
        limit = min(request.limit, MAX_LIMIT)
        rooms: list[dict[str, Any]] = []
        while stack and len(rooms) < limit:
            room_id, depth, via = stack.pop()
            if room_id in seen:
                continue
            seen.add(room_id)
            listed = await self._visit(request, room_id, via)
            if listed is None:
                continue
            chunk, children = listed
            rooms.append(chunk)
            if depth < max_depth:
                stack.extend((c, depth + 1, v) for c, v in reversed(children) if c not in seen)
        body: dict[str, Any] = {"rooms": rooms}
        if stack:
            body["next_batch"] = await self._save(request, stack, seen)
        return body

    async def get_federation_hierarchy(
        self, origin: str, room_id: str, suggested_only: bool, local_server: str
    ) -> dict[str, Any]:
        """GET /_matrix/federation/v1/hierarchy: the room and its children (not theirs), as
        far as the asking server could peek or join them. No pagination: the asking server
        filters for its user.

        Children this server is not in are left out; those it is in but `origin` could not
        join are listed in inaccessible_children, so the asking server need not try."""
        root = await self._resident_summary(room_id, local_server)
        if root is None or not await self.server_may_see(origin, root):
            raise not_found("Room not found")
        room = await self._federation_chunk(root, suggested_only)
        children: list[dict[str, Any]] = []
        inaccessible: list[str] = []
        for event in room["children_state"]:
            child_id = event["state_key"]
            summary = await self._resident_summary(child_id, local_server)
            if summary is None:
                continue
            if await self.server_may_see(origin, summary):
                children.append(await self._federation_chunk(summary, suggested_only))
            else:
                inaccessible.append(child_id)
        return {"room": room, "children": children, "inaccessible_children": inaccessible}

    async def _resident_summary(self, room_id: str, local_server: str) -> RoomSummary | None:
        """The room's summary, if one of our users is still joined to it (otherwise what we
        know of it may be stale)."""
        snapshot = (
            await self.storage.state.get_snapshot(room_id) if is_room_id_shaped(room_id) else None
        )
        if snapshot is None or not any(
            server_of(user) == local_server for user in snapshot.joined_users()
        ):
            return None
        return await load_summary(self.storage, room_id)

    async def _federation_chunk(self, summary: RoomSummary, suggested_only: bool) -> dict[str, Any]:
        children: list[Event] = []
        if summary.room_type == "m.space":
            children = await self._children(summary.room_id, suggested_only)
        chunk = summary.to_json(extended=True)
        chunk["children_state"] = [_stripped_child(e) for e in children]
        return chunk

    async def server_may_see(self, server_name: str, summary: RoomSummary) -> bool:
        """Whether a server could peek or join the room for some user of its: the room is
        world-readable, public or knockable, one of its users is joined or invited, or the room
        is restricted to rooms one of its users is joined to."""
        if _open_to_anyone(summary):
            return True
        version = get_room_version(summary.room_version)
        if version is None:
            return False
        rule = summary.join_rule
        snapshot = await self.storage.state.get_snapshot(summary.room_id)
        if snapshot is not None and any(
            server_of(user) == server_name and membership in ("join", "invite")
            for user, membership in snapshot.memberships.items()
        ):
            return True
        if rule in ("restricted", "knock_restricted") and version.restricted_join_rule:
            for allowed in summary.allowed_room_ids:
                other = await self.storage.state.get_snapshot(allowed)
                if other is not None and any(
                    server_of(user) == server_name for user in other.joined_users()
                ):
                    return True
        return False

    async def _visit(
        self, request: HierarchyRequest, room_id: str, via: list[str]
    ) -> tuple[dict[str, Any], list[tuple[str, list[str]]]] | None:
        """The room's entry and the children to walk (with their via servers), or None when
        the user may not see it, or neither we nor its via servers know it."""
        summary = await load_summary(self.storage, room_id)
        if summary is None:
            return await self._visit_remote(request, room_id, via)
        if not await self.may_see(request.user_id, summary):
            return None
        children: list[Event] = []
        if summary.room_type == "m.space":
            children = await self._children(room_id, request.suggested_only)
        chunk = summary.to_json(extended=True)
        chunk["children_state"] = [_stripped_child(e) for e in children]
        return chunk, [(e.state_key or "", _via(e.content)) for e in children]

    async def _visit_remote(
        self, request: HierarchyRequest, room_id: str, via: list[str]
    ) -> tuple[dict[str, Any], list[tuple[str, list[str]]]] | None:
        if self.remote is None or not via:
            return None
        room = await self._remote_room(room_id, via, request.suggested_only)
        if room is None or not await self._may_see_remote(request.user_id, room.chunk):
            return None
        return dict(room.chunk), list(room.children)

    async def _may_see_remote(self, user_id: str, chunk: dict[str, Any]) -> bool:
        """As Synapse judges a room it is not in: public, knockable or world-readable, or
        restricted to a room the user is joined to here."""
        rule = chunk.get("join_rule")
        if rule in ("public", "knock", "knock_restricted") or chunk.get("world_readable") is True:
            return True
        allowed = [r for r in chunk.get("allowed_room_ids", []) if isinstance(r, str)]
        return rule == "restricted" and await _is_joined_to_any(self.storage, user_id, allowed)

    async def _remote_room(
        self, room_id: str, via: list[str], suggested_only: bool
    ) -> _RemoteRoom | None:
        now = self.clock.time_msec()
        cached = self._remote_rooms.get((room_id, suggested_only))
        if cached is not None and cached[0] > now:
            return cached[1]
        assert self.remote is not None
        found = None
        for server in via[:MAX_VIA_SERVERS]:
            try:
                answer = await self.remote.get_hierarchy(server, room_id, suggested_only)
            except RemoteSpaceError as e:
                logger.info("No hierarchy of %s from %s: %s", room_id, server, e)
                continue
            room = answer.get("room") if isinstance(answer, dict) else None
            if not isinstance(room, dict) or room.get("room_id") != room_id:
                logger.info("%s answered /hierarchy/%s about another room", server, room_id)
                continue
            found = _remote_entry(room, suggested_only)
            self._remember_children(answer, found, suggested_only, now)
            break
        ttl = REMOTE_TTL_MS if found is not None else REMOTE_FAILURE_TTL_MS
        self._remote_rooms.set((room_id, suggested_only), (now + ttl, found))
        return found

    def _remember_children(
        self, answer: dict[str, Any], parent: _RemoteRoom, suggested_only: bool, now: int
    ) -> None:
        """Keeps what the answer says of the parent's children (and only of those), so that
        the walk need not ask again when it reaches them."""
        expected = {child for child, _ in parent.children}
        expires = now + REMOTE_TTL_MS
        children = answer.get("children")
        for child in children if isinstance(children, list) else []:
            if not isinstance(child, dict) or child.get("room_id") not in expected:
                continue
            if child.get("room_type") == "m.space" and not isinstance(
                child.get("children_state"), list
            ):
                continue  # a space whose children we were not told: ask when we get there
            key = (child["room_id"], suggested_only)
            self._remote_rooms.set(key, (expires, _remote_entry(child, suggested_only)))
        inaccessible = answer.get("inaccessible_children")
        for room_id in inaccessible if isinstance(inaccessible, list) else []:
            if room_id in expected:
                self._remote_rooms.set((room_id, suggested_only), (expires, None))

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
        if _open_to_anyone(summary):
            return True
        version = get_room_version(summary.room_version)
        if version is None:
            return False
        rule = summary.join_rule
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
        # Steps saved before via servers were kept have none.
        stack = [(step[0], step[1], step[2] if len(step) > 2 else []) for step in walk["stack"]]
        return stack, set(walk["seen"])

    async def _save(
        self, request: HierarchyRequest, stack: list[_Step], seen: set[str]
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
    return _order_key(event.content, event.origin_server_ts, event.state_key or "")


def _order_key(content: dict[str, Any], ts: int, state_key: str) -> tuple[int, str, int, str]:
    order = content.get("order")
    valid = (
        isinstance(order, str) and 0 < len(order) <= 50 and all(c in _ORDER_CHARS for c in order)
    )
    if valid:
        return 0, order, ts, state_key
    return 1, "", ts, state_key


def _via(content: dict[str, Any]) -> list[str]:
    via = content.get("via")
    return [s for s in via if isinstance(s, str)] if isinstance(via, list) else []


def _remote_entry(room: dict[str, Any], suggested_only: bool) -> _RemoteRoom:
    """Another server's entry for a room, keeping the spec's fields of the right types, and
    its valid m.space.child events in the spec's order."""
    chunk: dict[str, Any] = {
        key: room[key]
        for key, kind in _REMOTE_SUMMARY_FIELDS.items()
        if isinstance(room.get(key), kind) and not (kind is int and isinstance(room[key], bool))
    }
    if "allowed_room_ids" in chunk:
        chunk["allowed_room_ids"] = [r for r in chunk["allowed_room_ids"] if isinstance(r, str)]
    chunk.setdefault("num_joined_members", 0)
    chunk.setdefault("world_readable", False)
    chunk.setdefault("guest_can_join", False)
    events = []
    state = room.get("children_state")
    if room.get("room_type") == "m.space" and isinstance(state, list):
        for event in state:
            if not isinstance(event, dict) or event.get("type") != "m.space.child":
                continue
            state_key, content = event.get("state_key"), event.get("content")
            if not isinstance(state_key, str) or not state_key.startswith("!"):
                continue
            if not isinstance(content, dict) or not _has_via(content):
                continue
            if suggested_only and content.get("suggested") is not True:
                continue
            ts = event.get("origin_server_ts")
            events.append(
                {
                    "type": "m.space.child",
                    "state_key": state_key,
                    "content": content,
                    "sender": event.get("sender") if isinstance(event.get("sender"), str) else "",
                    "origin_server_ts": ts if type(ts) is int else 0,
                }
            )
    events.sort(key=lambda e: _order_key(e["content"], e["origin_server_ts"], e["state_key"]))
    chunk["children_state"] = events
    return _RemoteRoom(chunk, [(e["state_key"], _via(e["content"])) for e in events])


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


def _open_to_anyone(summary: RoomSummary) -> bool:
    """World-readable, public, or knockable (in a room version that has knocking)."""
    if summary.world_readable or summary.join_rule == "public":
        return True
    version = get_room_version(summary.room_version)
    rule = summary.join_rule
    return version is not None and (
        (rule == "knock" and version.knock_join_rule)
        or (rule == "knock_restricted" and version.knock_restricted_join_rule)
    )
