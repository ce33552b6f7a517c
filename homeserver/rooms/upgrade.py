"""POST /rooms/{roomId}/upgrade: replacing a room with a new one of another room version.

The spec's server behaviour, in its order: check the power to send m.room.tombstone; create the
replacement with `predecessor` (and the old `type`) in its create event; copy the transferable
state; move the local aliases (and the directory listing); tombstone the old room; raise its
power levels so it is no longer used.

What is copied: the spec's recommended list plus m.room.canonical_alias (the aliases move with
it) and the space's m.space.child events (a space that is upgraded keeps its children), and the
bans (a banned user must not walk into the replacement). m.space.parent is not copied: whether
it counts depends on who sent it, and the upgrader would become its sender.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from homeserver.directory.summaries import current_content, is_room_id_shaped
from homeserver.errors import Codes, MatrixError, bad_json, forbidden
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.identifiers import is_valid_user_id
from homeserver.rooms.event_creation import EventCreator, EventDraft, RoomLocks
from homeserver.rooms.membership import MembershipService
from homeserver.rooms.power_levels import (
    NAMED_LEVEL_DEFAULTS,
    creators_have_infinite_power,
    get_creators,
    get_event_send_level,
    get_named_level,
    get_user_power_level,
    parse_level,
)
from storage.state import RoomSnapshot
from storage.store import Storage

logger = logging.getLogger(__name__)

TRANSFERRED_TYPES = (
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.canonical_alias",
)
# Create event keys that carry over besides the version-specific ones.
_CREATE_KEYS_KEPT = ("type", "m.federate")


@dataclass
class OldRoom:
    room_id: str
    snapshot: RoomSnapshot
    create: Event
    power_levels: dict[str, Any] | None
    # (type, state_key) -> content, for everything that is copied.
    state: dict[tuple[str, str], dict[str, Any]]


class RoomUpgrader:
    def __init__(
        self, storage: Storage, creator: EventCreator, membership: MembershipService
    ) -> None:
        self.storage = storage
        self.events = creator
        self.membership = membership
        # One upgrade of a room at a time: a second waits, then upgrades the room again.
        self.locks = RoomLocks()

    async def upgrade(
        self, user_id: str, room_id: str, new_version: str, additional_creators: Any = None
    ) -> str:
        version = get_room_version(new_version)
        if version is None:
            raise MatrixError(
                400, Codes.UNSUPPORTED_ROOM_VERSION, "This server does not support that version"
            )
        extra = _additional_creators(additional_creators, user_id, version)
        async with self.locks.hold(room_id):
            old = await self._load_old_room(user_id, room_id)
            new_room_id = await self._create_replacement(user_id, old, version, extra)
            await self.storage.directory.move_aliases(room_id, new_room_id)
            if await self.storage.rooms.is_public(room_id):
                await self.storage.rooms.set_public(new_room_id, True)
                await self.storage.rooms.set_public(room_id, False)
            tombstone = {"body": "This room has been replaced", "replacement_room": new_room_id}
            await self.events.send(room_id, EventDraft("m.room.tombstone", user_id, tombstone, ""))
            await self._retire(user_id, old)
        return new_room_id

    async def _load_old_room(self, user_id: str, room_id: str) -> OldRoom:
        if not is_room_id_shaped(room_id):
            raise forbidden("You are not in this room")
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None or snapshot.membership_of(user_id) != "join":
            raise forbidden("You are not in this room")
        wanted = {k: v for k, v in snapshot.state.items() if _is_copied(k)}
        create_id = snapshot.state[("m.room.create", "")]
        power_id = snapshot.state.get(("m.room.power_levels", ""))
        ids = [*wanted.values(), create_id, *([power_id] if power_id else [])]
        events = await self.storage.events.get_events(ids)
        create = events[create_id]
        power = events.get(power_id) if power_id else None
        content = power.content if power is not None else None
        level = get_user_power_level(user_id, content, create)
        if level < get_event_send_level("m.room.tombstone", True, content):
            raise forbidden("You do not have the power to upgrade this room")
        state = {k: current_content(events[eid]) for k, eid in wanted.items() if eid in events}
        return OldRoom(room_id, snapshot, create, content, {k: c for k, c in state.items() if c})

    async def _create_replacement(
        self, user_id: str, old: OldRoom, version: RoomVersion, extra: list[str]
    ) -> str:
        create = _create_content(user_id, old, version, extra)
        # Only v12+ has creators apart from power levels.
        creators = {user_id, *extra} if version.additional_creators else set()
        initial, final = new_power_levels(old, user_id, version, creators)
        member = {"membership": "join", **await self.membership.profile_content(user_id)}
        drafts = [
            EventDraft("m.room.create", user_id, create, ""),
            EventDraft("m.room.member", user_id, member, user_id),
            EventDraft("m.room.power_levels", user_id, initial, ""),
        ]
        for (event_type, state_key), content in sorted(old.state.items(), key=_transfer_order):
            if event_type != "m.space.child" or _has_via(content):
                drafts.append(EventDraft(event_type, user_id, content, state_key))
        for banned in _bans_to_copy(old, initial, user_id, creators, version):
            drafts.append(EventDraft("m.room.member", user_id, {"membership": "ban"}, banned))
        if final is not None:
            drafts.append(EventDraft("m.room.power_levels", user_id, final, ""))
        events = await self.events.create_room_events(version, drafts)
        return events[0].room_id

    async def _retire(self, user_id: str, old: OldRoom) -> None:
        """Best effort: the upgrade has happened even if the old room refuses these."""
        if old.state.get(("m.room.canonical_alias", "")):
            await self._try_send(old.room_id, EventDraft("m.room.canonical_alias", user_id, {}, ""))
        content = dict(old.power_levels or {})
        needed = max(50, get_named_level("users_default", old.power_levels) + 1)
        changed = False
        for key in ("events_default", "invite"):
            if get_named_level(key, old.power_levels) < needed:
                content[key] = needed
                changed = True
        if changed:
            draft = EventDraft("m.room.power_levels", user_id, content, "")
            await self._try_send(old.room_id, draft)

    async def _try_send(self, room_id: str, draft: EventDraft) -> None:
        try:
            await self.events.send(room_id, draft)
        except MatrixError as error:
            logger.info("upgrade of %s: could not send %s: %s", room_id, draft.type, error)


def _is_copied(key: tuple[str, str]) -> bool:
    event_type, state_key = key
    return (event_type in TRANSFERRED_TYPES and state_key == "") or event_type == "m.space.child"


def _transfer_order(item: tuple[tuple[str, str], Any]) -> tuple[int, str]:
    (event_type, state_key), _ = item
    if event_type in TRANSFERRED_TYPES:
        return TRANSFERRED_TYPES.index(event_type), state_key
    return len(TRANSFERRED_TYPES), state_key


def _has_via(content: dict[str, Any]) -> bool:
    via = content.get("via")
    return isinstance(via, list) and bool(via)


def _additional_creators(value: Any, user_id: str, version: RoomVersion) -> list[str]:
    if value is None or not version.additional_creators:
        return []
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise bad_json("additional_creators must be a list of user IDs")
    for creator in value:
        if not is_valid_user_id(creator):
            raise MatrixError(400, Codes.INVALID_PARAM, f"{creator!r} is not a valid user ID")
    return [u for u in dict.fromkeys(value) if u != user_id]


def _create_content(
    user_id: str, old: OldRoom, version: RoomVersion, extra: list[str]
) -> dict[str, Any]:
    content: dict[str, Any] = {"room_version": version.identifier}
    for key in _CREATE_KEYS_KEPT:
        if key in old.create.content:
            content[key] = old.create.content[key]
    if not version.implicit_room_creator:
        content["creator"] = user_id
    predecessor = {"room_id": old.room_id}
    if not version.room_id_from_create_event:
        # From v12 the new room's ID is its create event's hash; the tombstone that would be
        # the natural "last event" names that ID, so the spec lets event_id go.
        predecessor["event_id"] = old.snapshot.forward_extremities[-1]
    content["predecessor"] = predecessor
    if extra:
        content["additional_creators"] = extra
    return content


def new_power_levels(
    old: OldRoom, user_id: str, version: RoomVersion, new_creators: set[str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the power levels the new room starts with, the ones it ends with if they differ).

    The content is copied with every level as an integer (a v10+ room refuses the strings older
    versions allowed). Creators of the new room may not be listed in v12+, where their power is
    implicit; creators of an old v12+ room keep the room's top level where they are not
    creators any more. Before v12 the upgrader is lifted to the top level while the state is
    copied, and set back after."""
    content = _normalised(old.power_levels or {})
    users: dict[str, int] = content.setdefault("users", {})
    top = max(100, _highest_level(content))
    if creators_have_infinite_power(old.create):
        for creator in get_creators(old.create) - new_creators:
            users[creator] = top
    elif old.power_levels is None and user_id not in users:
        users[user_id] = 100  # the default creator level of a room without power levels
    if version.additional_creators:
        for creator in new_creators:
            users.pop(creator, None)
        return content, None
    own = users.get(user_id, get_named_level("users_default", content))
    if own >= top:
        return content, None
    initial = {**content, "users": {**users, user_id: top}}
    return initial, content


def _normalised(content: dict[str, Any]) -> dict[str, Any]:
    copied = dict(content)
    for key in NAMED_LEVEL_DEFAULTS:
        if key in copied:
            level = parse_level(copied[key])
            if level is None:
                del copied[key]
            else:
                copied[key] = level
    for key in ("events", "notifications", "users"):
        value = copied.get(key)
        if not isinstance(value, dict):
            copied.pop(key, None)
            continue
        levels = {k: parse_level(v) for k, v in value.items()}
        copied[key] = {k: v for k, v in levels.items() if v is not None}
    return copied


def _highest_level(content: dict[str, Any]) -> int:
    levels = [get_named_level(key, content) for key in NAMED_LEVEL_DEFAULTS]
    for key in ("events", "users", "notifications"):
        levels.extend(content.get(key, {}).values())
    return max(levels)


def _bans_to_copy(
    old: OldRoom,
    power_levels: dict[str, Any],
    user_id: str,
    new_creators: set[str],
    version: RoomVersion,
) -> list[str]:
    """Banned users of the old room whom the upgrader can ban in the new one."""
    banned = [u for u, m in old.snapshot.memberships.items() if m == "ban"]
    if version.additional_creators:
        return sorted(u for u in banned if u not in new_creators)
    users = power_levels.get("users", {})
    default = get_named_level("users_default", power_levels)
    own = users.get(user_id, default)
    return sorted(u for u in banned if users.get(u, default) < own and u != user_id)
