"""The published room directory: listing it, and publishing rooms to it.

Rooms are listed largest first (joined members, then room ID), read from `room_stats`. Page
tokens are keyset positions, "n_<members>_<room_id>" for the page after a room and
"p_<members>_<room_id>" for the page before it, so a room joining or leaving the list between
two requests shifts nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from homeserver.directory.publication import PublicationPolicy
from homeserver.directory.room_stats import RoomStatsUpdater
from homeserver.directory.summaries import is_room_id_shaped, load_summary
from homeserver.errors import Codes, MatrixError, bad_json, forbidden, not_found
from homeserver.rooms.power_levels import (
    get_creators,
    get_event_send_level,
    get_user_power_level,
)
from storage.database import Row
from storage.directory import PublicRoomsQuery
from storage.store import Storage

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


@dataclass
class PublicRoomsRequest:
    limit: int | None = None
    since: str | None = None
    search: str | None = None
    room_types: Sequence[str | None] | None = None
    # A third-party network: none are bridged here, so nothing is published in one.
    third_party_instance_id: str | None = None
    # Every network: here, only our own rooms (kept to pass on to another server's directory).
    include_all_networks: bool = False


class RemoteRoomDirectory(Protocol):
    """Another server's published room directory (federation provides this)."""

    async def public_rooms(self, server_name: str, request: PublicRoomsRequest) -> dict[str, Any]:
        """Its answer as the client-server API's PublicRoomsResponse; raises MatrixError."""
        ...


@dataclass(frozen=True)
class Publisher:
    """Who asks to change a room's visibility."""

    user_id: str
    is_admin: bool


class PublicRoomList:
    def __init__(
        self, storage: Storage, room_stats: RoomStatsUpdater, policy: PublicationPolicy
    ) -> None:
        self.storage = storage
        self.room_stats = room_stats
        self.policy = policy
        self.remote: RemoteRoomDirectory | None = None

    # Listing -------------------------------------------------------------------------------

    async def list_remote_rooms(
        self, server_name: str, request: PublicRoomsRequest
    ) -> dict[str, Any]:
        """Another server's directory, asked of that server."""
        if self.remote is None:
            raise not_found(f"The room directory of {server_name} is not available")
        return await self.remote.public_rooms(server_name, request)

    async def list_rooms(self, request: PublicRoomsRequest) -> dict[str, Any]:
        limit = min(request.limit if request.limit is not None else DEFAULT_LIMIT, MAX_LIMIT)
        if request.third_party_instance_id is not None:
            return {"chunk": [], "total_room_count_estimate": 0}
        query = PublicRoomsQuery(
            limit=limit + 1,
            # NUL cannot be in any stored name (nor in a PostgreSQL query parameter).
            search=request.search.replace("\x00", "").casefold() if request.search else None,
            room_types=request.room_types,
        )
        direction, position = _parse_token(request.since)
        if direction == "n":
            query.after = position
        elif direction == "p":
            query.before = position
        await self.room_stats.flush()
        rows, total = await self.storage.directory.list_public_rooms(query)
        more = len(rows) > limit
        rows = rows[:limit]
        if direction == "p":
            rows.reverse()
        body: dict[str, Any] = {
            "chunk": [_chunk(row) for row in rows],
            "total_room_count_estimate": total,
        }
        if rows:
            body.update(_page_tokens(rows, direction, more))
        return body

    # Visibility ----------------------------------------------------------------------------

    async def get_visibility(self, room_id: str) -> str:
        if not is_room_id_shaped(room_id) or await self.storage.state.get_snapshot(room_id) is None:
            raise not_found("Room not found")
        return "public" if await self.storage.rooms.is_public(room_id) else "private"

    async def set_visibility(self, publisher: Publisher, room_id: str, visibility: str) -> None:
        summary = await load_summary(self.storage, room_id)
        if summary is None:
            raise not_found("Room not found")
        if not publisher.is_admin:
            await self._check_room_moderator(publisher.user_id, room_id)
        if visibility == "public":
            aliases = await self.storage.rooms.get_aliases_for_room(room_id)
            if summary.canonical_alias:
                aliases.append(summary.canonical_alias)
            aliases.extend(summary.alt_aliases)
            if not await self._may_publish(publisher, room_id, aliases):
                raise forbidden("You are not allowed to publish this room to the room directory")
        await self.storage.rooms.set_public(room_id, visibility == "public")

    async def check_may_publish_new_room(self, publisher: Publisher, alias: str | None) -> None:
        """For /createRoom with visibility public, before the room exists: its creator is the
        requester, so only configured rules can refuse."""
        if self.policy.uses_rules and not self.policy.rules_allow(
            publisher.user_id, None, [alias] if alias else []
        ):
            raise forbidden("You are not allowed to publish rooms to the room directory")

    async def _may_publish(self, publisher: Publisher, room_id: str, aliases: list[str]) -> bool:
        if self.policy.uses_rules:
            return self.policy.rules_allow(publisher.user_id, room_id, aliases)
        if publisher.is_admin:
            return True
        level, content, create = await _power_in_room(self.storage, room_id, publisher.user_id)
        if create is not None and publisher.user_id in get_creators(create):
            return True
        return level >= get_event_send_level("m.room.power_levels", True, content)

    async def _check_room_moderator(self, user_id: str, room_id: str) -> None:
        """Changing the listing at all needs what changing the room's aliases needs."""
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None or snapshot.membership_of(user_id) != "join":
            raise forbidden("You are not in this room")
        level, content, _ = await _power_in_room(self.storage, room_id, user_id)
        if level < get_event_send_level("m.room.canonical_alias", True, content):
            raise forbidden("You need the power to set the room's aliases to list it")


async def _power_in_room(
    storage: Storage, room_id: str, user_id: str
) -> tuple[float, dict[str, Any] | None, Any]:
    """(the user's power level, the power levels content, the create event)."""
    snapshot = await storage.state.get_snapshot(room_id)
    if snapshot is None:
        return 0, None, None
    power_id = snapshot.state.get(("m.room.power_levels", ""))
    create_id = snapshot.state.get(("m.room.create", ""))
    events = await storage.events.get_events([i for i in (power_id, create_id) if i])
    power = events.get(power_id) if power_id else None
    create = events.get(create_id) if create_id else None
    if create is None:
        return 0, None, None
    content = power.content if power is not None else None
    return get_user_power_level(user_id, content, create), content, create


def _page_tokens(rows: list[Row], direction: str | None, more: bool) -> dict[str, str]:
    """next_batch and prev_batch around a non-empty page, where they lead somewhere.

    Reading forwards, `more` means rooms after the page and a `since` token means rooms before
    it; reading backwards (a "p" token) it is the other way round."""
    has_next = True if direction == "p" else more
    has_prev = more if direction == "p" else direction == "n"
    tokens = {}
    if has_next:
        tokens["next_batch"] = f"n_{rows[-1][1]}_{rows[-1][0]}"
    if has_prev:
        tokens["prev_batch"] = f"p_{rows[0][1]}_{rows[0][0]}"
    return tokens


def _parse_token(token: str | None) -> tuple[str | None, tuple[int, str] | None]:
    if not token:
        return None, None
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in ("n", "p") or not parts[1].isdigit():
        raise MatrixError(400, Codes.INVALID_PARAM, "Unknown pagination token")
    if not is_room_id_shaped(parts[2]):
        raise MatrixError(400, Codes.INVALID_PARAM, "Unknown pagination token")
    return parts[0], (int(parts[1]), parts[2])


def _chunk(row: Row) -> dict[str, Any]:
    room_id, members, name, topic, alias, avatar, join_rule, visibility, guest, room_type = row
    body: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": members,
        "world_readable": visibility == "world_readable",
        "guest_can_join": guest == "can_join",
    }
    optional = {
        "name": name,
        "topic": topic,
        "canonical_alias": alias,
        "avatar_url": avatar,
        "join_rule": join_rule,
        "room_type": room_type,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


# Request bodies ----------------------------------------------------------------------------


def parse_public_rooms_body(body: dict[str, Any]) -> PublicRoomsRequest:
    """The body of POST /publicRooms (client-server and federation): 400 M_BAD_JSON when a
    key has the wrong type."""
    query = PublicRoomsRequest(limit=optional_int(body, "limit"))
    since = body.get("since")
    if since is not None and not isinstance(since, str):
        raise bad_json("since must be a string")
    query.since = since
    room_filter = body.get("filter")
    if room_filter is not None:
        if not isinstance(room_filter, dict):
            raise bad_json("filter must be an object")
        term = room_filter.get("generic_search_term")
        if term is not None and not isinstance(term, str):
            raise bad_json("filter.generic_search_term must be a string")
        query.search = term.strip() if term else None
        query.room_types = _room_types(room_filter.get("room_types"))
    include_all = body.get("include_all_networks", False)
    if not isinstance(include_all, bool):
        raise bad_json("include_all_networks must be a boolean")
    query.include_all_networks = include_all
    instance = body.get("third_party_instance_id")
    if instance is not None and not isinstance(instance, str):
        raise bad_json("third_party_instance_id must be a string")
    if not include_all:
        query.third_party_instance_id = instance
    return query


def _room_types(value: Any) -> list[str | None] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(v is None or isinstance(v, str) for v in value):
        raise bad_json("filter.room_types must be a list of strings and nulls")
    # An empty list is read as no filter: every room type.
    return list(value) or None


def optional_int(body: dict[str, Any], key: str) -> int | None:
    """A non-negative integer field of a request body, or None when absent."""
    value = body.get(key)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise bad_json(f"{key} must be a non-negative integer")
    return value
