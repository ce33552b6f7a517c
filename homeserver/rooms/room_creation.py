"""/createRoom: the first events of a new room, in the order the spec lays down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.identifiers import is_valid_user_id, server_of
from homeserver.rooms.event_creation import EventCreator, EventDraft
from storage.store import Storage

PRESETS = {
    "private_chat": {"join_rule": "invite", "history": "shared", "guest": "can_join"},
    "trusted_private_chat": {"join_rule": "invite", "history": "shared", "guest": "can_join"},
    "public_chat": {"join_rule": "public", "history": "shared", "guest": "forbidden"},
}


@dataclass
class RoomRequest:
    """A validated /createRoom body."""

    preset: str
    visibility: str
    room_version: RoomVersion
    name: str | None = None
    topic: str | None = None
    alias_localpart: str | None = None
    invite: list[str] = field(default_factory=list)
    is_direct: bool = False
    creation_content: dict[str, Any] = field(default_factory=dict)
    initial_state: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    power_level_override: dict[str, Any] | None = None


def parse_room_request(body: dict[str, Any], default_version: str) -> RoomRequest:
    visibility = body.get("visibility", "private")
    if visibility not in ("public", "private"):
        raise bad_json("visibility must be 'public' or 'private'")
    preset = body.get("preset") or ("public_chat" if visibility == "public" else "private_chat")
    if not isinstance(preset, str) or preset not in PRESETS:
        raise bad_json(f"Unknown preset {preset!r}"[:200])
    version_id = body.get("room_version", default_version)
    if not isinstance(version_id, str) or get_room_version(version_id) is None:
        raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION, "Unsupported room version")
    request = RoomRequest(
        preset=preset,
        visibility=visibility,
        room_version=get_room_version(version_id),  # type: ignore[arg-type]
    )
    request.name = _optional_str(body, "name")
    request.topic = _optional_str(body, "topic")
    request.alias_localpart = _optional_str(body, "room_alias_name")
    request.invite = _user_list(body.get("invite", []))
    is_direct = body.get("is_direct", False)
    if not isinstance(is_direct, bool):
        raise bad_json("is_direct must be a boolean")
    request.is_direct = is_direct
    invite_3pid = body.get("invite_3pid", [])
    if not isinstance(invite_3pid, list):
        raise bad_json("invite_3pid must be a list")
    if invite_3pid:
        raise MatrixError(400, Codes.UNRECOGNIZED, "Third-party invites need an identity server")
    request.creation_content = _optional_object(body, "creation_content") or {}
    request.power_level_override = _optional_object(body, "power_level_content_override")
    request.initial_state = _initial_state(body.get("initial_state", []))
    return request


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_json(f"{key} must be a string")
    return value


def _optional_object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise bad_json(f"{key} must be an object")
    return value


def _user_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise bad_json("invite must be a list of user IDs")
    for user_id in value:
        if not is_valid_user_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, f"{user_id!r} is not a valid user ID")
    return list(dict.fromkeys(value))


def _initial_state(value: Any) -> list[tuple[str, str, dict[str, Any]]]:
    if not isinstance(value, list):
        raise bad_json("initial_state must be a list")
    events = []
    for entry in value:
        if not isinstance(entry, dict):
            raise bad_json("initial_state entries must be objects")
        event_type, state_key = entry.get("type"), entry.get("state_key", "")
        content = entry.get("content")
        if not isinstance(event_type, str) or not isinstance(state_key, str):
            raise bad_json("initial_state entries need a string type and state_key")
        if not isinstance(content, dict):
            raise bad_json("initial_state entries need a content object")
        events.append((event_type, state_key, content))
    return events


def default_power_levels(request: RoomRequest, creator: str) -> dict[str, Any]:
    version = request.room_version
    tombstone_level = 150 if version.additional_creators else 100
    content: dict[str, Any] = {
        "users": {},
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": tombstone_level,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        # In private rooms anyone inside may invite; in public ones moderators do.
        "invite": 50 if request.preset == "public_chat" else 0,
        "notifications": {"room": 50},
    }
    if not version.additional_creators:
        # Before v12 the creator's power is an ordinary entry; from v12 creators are implicit.
        content["users"][creator] = 100
        if request.preset == "trusted_private_chat":
            for invitee in request.invite:
                content["users"][invitee] = 100
    if request.power_level_override:
        content.update(request.power_level_override)
    return content


def creation_content(request: RoomRequest, creator: str) -> dict[str, Any]:
    content = dict(request.creation_content)
    content.pop("creator", None)
    content["room_version"] = request.room_version.identifier
    if not request.room_version.implicit_room_creator:
        content["creator"] = creator
    if request.room_version.additional_creators and request.preset == "trusted_private_chat":
        extra = content.get("additional_creators", [])
        if not isinstance(extra, list):
            raise bad_json("additional_creators must be a list")
        content["additional_creators"] = list(dict.fromkeys([*extra, *request.invite]))
    return content


def initial_drafts(
    request: RoomRequest, creator: str, member_content: dict[str, Any], alias: str | None
) -> list[EventDraft]:
    """The events of a new room in the spec's order, before the invites."""
    drafts = [
        EventDraft("m.room.create", creator, creation_content(request, creator), ""),
        EventDraft("m.room.member", creator, member_content, creator),
        EventDraft("m.room.power_levels", creator, default_power_levels(request, creator), ""),
    ]
    if alias:
        drafts.append(EventDraft("m.room.canonical_alias", creator, {"alias": alias}, ""))
    overridden = {(t, sk) for t, sk, _ in request.initial_state}
    preset = PRESETS[request.preset]
    for event_type, content in (
        ("m.room.join_rules", {"join_rule": preset["join_rule"]}),
        ("m.room.history_visibility", {"history_visibility": preset["history"]}),
        ("m.room.guest_access", {"guest_access": preset["guest"]}),
    ):
        if (event_type, "") not in overridden:
            drafts.append(EventDraft(event_type, creator, content, ""))
    named = {
        ("m.room.name", "") if request.name is not None else None,
        ("m.room.topic", "") if request.topic is not None else None,
    }
    for event_type, state_key, content in request.initial_state:
        if (event_type, state_key) in named or event_type == "m.room.create":
            continue
        drafts.append(EventDraft(event_type, creator, content, state_key))
    if request.name is not None:
        drafts.append(EventDraft("m.room.name", creator, {"name": request.name}, ""))
    if request.topic is not None:
        topic = {
            "topic": request.topic,
            "m.topic": [{"body": request.topic, "mimetype": "text/plain"}],
        }
        drafts.append(EventDraft("m.room.topic", creator, topic, ""))
    return drafts


class RoomCreator:
    def __init__(
        self, server_name: str, storage: Storage, creator: EventCreator, default_version: str
    ) -> None:
        self.server_name = server_name
        self.storage = storage
        self.events = creator
        self.default_version = default_version

    async def create_room(
        self, user_id: str, body: dict[str, Any], member_content: dict[str, Any]
    ) -> tuple[str, RoomRequest]:
        """Creates the room with everything but the invites; returns its ID and the request."""
        request = parse_room_request(body, self.default_version)
        alias = None
        if request.alias_localpart is not None:
            alias = f"#{request.alias_localpart}:{self.server_name}"
            if ":" in request.alias_localpart or not request.alias_localpart:
                raise MatrixError(400, Codes.INVALID_PARAM, "Invalid room_alias_name")
            if await self.storage.rooms.get_alias(alias):
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")
        for invitee in request.invite:
            if server_of(invitee) != self.server_name:
                # Invites to other servers travel over federation, which this build lacks.
                raise MatrixError(
                    400, Codes.UNKNOWN, f"Cannot invite {invitee}: federation is not enabled"
                )
        drafts = initial_drafts(request, user_id, member_content, alias)
        try:
            events = await self.events.create_room_events(request.room_version, drafts)
        except MatrixError as error:
            if error.errcode == Codes.FORBIDDEN:
                raise MatrixError(400, Codes.INVALID_ROOM_STATE, error.message) from error
            raise
        room_id = events[0].room_id
        if alias is not None and not await self.storage.rooms.create_alias(alias, room_id, user_id):
            raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")
        if request.visibility == "public":
            await self.storage.rooms.set_public(room_id, True)
        return room_id, request
