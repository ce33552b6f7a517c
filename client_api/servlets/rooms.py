"""Rooms: creation, membership, sending, state, members, history, aliases."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from client_api.servlets.directory import check_create_room_publication
from homeserver.errors import Codes, MatrixError, bad_json, forbidden, not_found
from homeserver.events.validation import validate_client_event_fields
from homeserver.identifiers import check_user_id, is_valid_room_alias, server_of
from homeserver.relations.relations import check_new_relation
from homeserver.rooms.event_creation import EventDraft
from homeserver.rooms.power_levels import get_event_send_level, get_user_power_level
from homeserver.rooms.room_reader import RoomReader
from homeserver.sync.filtering import EventFilter, parse_event_filter
from homeserver.sync.tokens import decode_pagination_token

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def _user(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


def _optional_reason(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise bad_json("reason must be a string")
    return reason


def _target_user(body: dict[str, Any]) -> str:
    if "user_id" not in body:
        raise bad_json("Missing user_id")
    return check_user_id(body["user_id"])


def _room_id(request: ApiRequest) -> str:
    room_id = request.path_params["roomId"]
    if not room_id.startswith("!"):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not a room ID")
    return room_id


def register_routes(router: Router, hs: HomeServer) -> None:
    reader = RoomReader(hs.storage, hs.clock)

    async def create_room(request: ApiRequest) -> tuple[int, Any]:
        user_id = _user(request)
        body = request.json()
        await check_create_room_publication(hs, request, body)
        member_content = {"membership": "join", **await hs.membership.profile_content(user_id)}
        room_id, room_request = await hs.room_creator.create_room(user_id, body, member_content)
        for invitee in room_request.invite:
            await hs.membership.invite(user_id, room_id, invitee, is_direct=room_request.is_direct)
        return 200, {"room_id": room_id}

    async def join_by_id_or_alias(request: ApiRequest) -> tuple[int, Any]:
        body = request.json() if request.body else {}
        room_id, servers = await hs.membership.resolve_room_and_servers(
            request.path_params["roomIdOrAlias"]
        )
        # `server_name` is the older spelling of `via`.
        via = [*request.query_list("via"), *request.query_list("server_name"), *servers]
        await hs.membership.join(_user(request), room_id, _optional_reason(body), via)
        return 200, {"room_id": room_id}

    async def join_by_id(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        body = request.json() if request.body else {}
        room_id = _room_id(request)
        if request.requester.is_guest:
            await hs.membership.check_guest_may_join(room_id)
        await hs.membership.join(_user(request), room_id, _optional_reason(body))
        return 200, {"room_id": room_id}

    async def leave(request: ApiRequest) -> tuple[int, Any]:
        body = request.json() if request.body else {}
        await hs.membership.leave(_user(request), _room_id(request), _optional_reason(body))
        return 200, {}

    async def forget(request: ApiRequest) -> tuple[int, Any]:
        await hs.membership.forget(_user(request), _room_id(request))
        return 200, {}

    async def invite(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        if "medium" in body or "address" in body:
            raise MatrixError(
                400, Codes.UNRECOGNIZED, "Third-party invites need an identity server"
            )
        await hs.membership.invite(
            _user(request), _room_id(request), _target_user(body), _optional_reason(body)
        )
        return 200, {}

    def moderation(action: str) -> Any:
        async def handler(request: ApiRequest) -> tuple[int, Any]:
            body = request.json()
            method = getattr(hs.membership, action)
            await method(
                _user(request), _room_id(request), _target_user(body), _optional_reason(body)
            )
            return 200, {}

        return handler

    async def send_event(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        room_id = _room_id(request)
        event_type = request.path_params["eventType"]
        validate_client_event_fields(event_type, None)
        content = request.json()
        txn_id = request.path_params["txnId"]
        draft = EventDraft(event_type, _user(request), content)
        if event_type == "m.room.redaction":
            # Redactions have their own endpoint; through /send they still need a target.
            draft.redacts = (
                content.get("redacts") if isinstance(content.get("redacts"), str) else None
            )
            if draft.redacts is None:
                raise bad_json("m.room.redaction needs a 'redacts' event ID")
        draft.txn_key = (
            request.requester.user_id,
            request.requester.device_id or "",
            f"send:{room_id}",
            txn_id,
        )
        if await hs.storage.events.get_event_for_txn(*draft.txn_key) is None:
            # Checked only for new sends: a retry must get its first answer back, even for an
            # annotation that would now count as a duplicate of itself.
            await check_new_relation(hs.storage, room_id, _user(request), event_type, content)
        event = await hs.event_creator.send(room_id, draft)
        return 200, {"event_id": event.event_id}

    async def redact(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        room_id = _room_id(request)
        body = request.json() if request.body else {}
        content: dict[str, Any] = {}
        reason = _optional_reason(body)
        if reason is not None:
            content["reason"] = reason
        target = request.path_params["eventId"]
        draft = EventDraft("m.room.redaction", _user(request), content, redacts=target)
        version = await hs.storage.events.get_room_version(room_id)
        if version is not None and version.updated_redaction_rules:
            draft.content = {**content, "redacts": target}
        draft.txn_key = (
            request.requester.user_id,
            request.requester.device_id or "",
            f"redact:{room_id}",
            request.path_params["txnId"],
        )
        event = await hs.event_creator.send(room_id, draft)
        return 200, {"event_id": event.event_id}

    async def put_state(request: ApiRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        event_type = request.path_params["eventType"]
        state_key = request.path_params.get("stateKey", "")
        validate_client_event_fields(event_type, state_key)
        content = request.json()
        if event_type == "m.room.member" and not isinstance(content.get("membership"), str):
            # The auth rules judge the change; a member event without a membership is malformed.
            raise bad_json("membership must be a string")
        if event_type == "m.room.canonical_alias":
            await _check_canonical_aliases(hs, room_id, content)
        event = await hs.event_creator.send(
            room_id, EventDraft(event_type, _user(request), content, state_key)
        )
        return 200, {"event_id": event.event_id}

    async def get_state_event(request: ApiRequest) -> tuple[int, Any]:
        event = await reader.get_state_event(
            _user(request),
            _room_id(request),
            request.path_params["eventType"],
            request.path_params.get("stateKey", ""),
        )
        if request.query_str("format") == "event":
            return 200, (await reader.renderer.render([event]))[0]
        return 200, event.content

    async def get_state(request: ApiRequest) -> tuple[int, Any]:
        return 200, await reader.get_state(_user(request), _room_id(request))

    async def get_members(request: ApiRequest) -> tuple[int, Any]:
        members = await reader.get_members(
            _user(request),
            _room_id(request),
            membership=request.query_str("membership"),
            not_membership=request.query_str("not_membership"),
        )
        return 200, {"chunk": members}

    async def get_joined_members(request: ApiRequest) -> tuple[int, Any]:
        return 200, {"joined": await reader.get_joined_members(_user(request), _room_id(request))}

    async def joined_rooms(request: ApiRequest) -> tuple[int, Any]:
        rooms = await hs.storage.state.get_rooms_for_user(_user(request))
        return 200, {"joined_rooms": sorted(r for r, m in rooms.items() if m == "join")}

    async def get_event(request: ApiRequest) -> tuple[int, Any]:
        return 200, await reader.get_event(
            _user(request), _room_id(request), request.path_params["eventId"]
        )

    async def messages(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        direction = request.query_str("dir", required=True)
        if direction not in ("b", "f"):
            raise MatrixError(400, Codes.INVALID_PARAM, "dir must be 'b' or 'f'")
        from_token = request.query_str("from")
        to_token = request.query_str("to")
        event_filter = _room_event_filter(request.query_str("filter"))
        default_limit = event_filter.limit if event_filter.limit is not None else 10
        limit = request.query_int("limit", default_limit, minimum=0)
        response = await hs.pagination.messages(
            request.requester.user_id,
            request.requester.device_id,
            _room_id(request),
            from_position=decode_pagination_token(from_token) if from_token else None,
            to_position=decode_pagination_token(to_token) if to_token else None,
            backwards=direction == "b",
            limit=limit or 0,
            event_filter=event_filter,
        )
        return 200, response

    async def get_alias(request: ApiRequest) -> tuple[int, Any]:
        alias = _alias(request)
        found = await hs.storage.rooms.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        return 200, {"room_id": found[0], "servers": [hs.server_name]}

    async def put_alias(request: ApiRequest) -> tuple[int, Any]:
        alias = _alias(request)
        if server_of(alias) != hs.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Room alias must be on this server")
        body = request.json()
        room_id = body.get("room_id")
        if not isinstance(room_id, str):
            raise bad_json("room_id must be a string")
        if await hs.storage.state.get_snapshot(room_id) is None:
            raise not_found("Unknown room")
        if not await hs.storage.rooms.create_alias(alias, room_id, _user(request)):
            raise MatrixError(409, Codes.UNKNOWN, f"Room alias {alias} already exists")
        return 200, {}

    async def delete_alias(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        alias = _alias(request)
        found = await hs.storage.rooms.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        if found[1] != request.requester.user_id and not request.requester.is_admin:
            if not await _may_manage_aliases(hs, found[0], request.requester.user_id):
                raise forbidden("You may not delete this alias")
        await hs.storage.rooms.delete_alias(alias)
        return 200, {}

    router.add_client("POST", "/createRoom", create_room, ratelimit="room_creation")
    router.add_client("POST", "/join/{roomIdOrAlias}", join_by_id_or_alias, ratelimit="join")
    router.add_client(
        "POST", "/rooms/{roomId}/join", join_by_id, ratelimit="join", allow_guest=True
    )
    router.add_client("POST", "/rooms/{roomId}/leave", leave, allow_guest=True)
    router.add_client("POST", "/rooms/{roomId}/forget", forget)
    router.add_client("POST", "/rooms/{roomId}/invite", invite, ratelimit="invite")
    for action in ("kick", "ban", "unban"):
        router.add_client("POST", f"/rooms/{{roomId}}/{action}", moderation(action))
    router.add_client(
        "PUT",
        "/rooms/{roomId}/send/{eventType}/{txnId}",
        send_event,
        ratelimit="message",
        allow_guest=True,
    )
    router.add_client(
        "PUT", "/rooms/{roomId}/redact/{eventId}/{txnId}", redact, ratelimit="message"
    )
    router.add_client("PUT", "/rooms/{roomId}/state/{eventType}", put_state, ratelimit="message")
    router.add_client(
        "PUT",
        "/rooms/{roomId}/state/{eventType}/{stateKey}",
        put_state,
        ratelimit="message",
        allow_guest=True,
    )
    router.add_client("GET", "/rooms/{roomId}/state/{eventType}", get_state_event)
    router.add_client(
        "GET", "/rooms/{roomId}/state/{eventType}/{stateKey}", get_state_event, allow_guest=True
    )
    router.add_client("GET", "/rooms/{roomId}/state", get_state, allow_guest=True)
    router.add_client("GET", "/rooms/{roomId}/members", get_members, allow_guest=True)
    router.add_client("GET", "/rooms/{roomId}/joined_members", get_joined_members)
    router.add_client("GET", "/joined_rooms", joined_rooms)
    router.add_client("GET", "/rooms/{roomId}/event/{eventId}", get_event, allow_guest=True)
    router.add_client("GET", "/rooms/{roomId}/messages", messages, allow_guest=True)
    router.add_client("GET", "/directory/room/{roomAlias}", get_alias, auth="optional")
    router.add_client("PUT", "/directory/room/{roomAlias}", put_alias)
    router.add_client("DELETE", "/directory/room/{roomAlias}", delete_alias)


def _alias(request: ApiRequest) -> str:
    alias = request.path_params["roomAlias"]
    if not is_valid_room_alias(alias):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not a valid room alias")
    return alias


def _room_event_filter(raw: str | None) -> EventFilter:
    if not raw:
        return EventFilter()
    try:
        value = json.loads(raw)
    except ValueError:
        raise MatrixError(400, Codes.NOT_JSON, "filter is not valid JSON") from None
    return parse_event_filter(value, "filter")


async def _check_canonical_aliases(hs: HomeServer, room_id: str, content: dict[str, Any]) -> None:
    """The spec: a canonical alias must point at this room (M_BAD_ALIAS otherwise)."""
    aliases = []
    if content.get("alias") is not None:
        aliases.append(content["alias"])
    alt = content.get("alt_aliases", [])
    if not isinstance(alt, list):
        raise bad_json("alt_aliases must be a list")
    aliases.extend(alt)
    for alias in aliases:
        if not isinstance(alias, str) or not is_valid_room_alias(alias):
            raise MatrixError(400, Codes.INVALID_PARAM, f"{alias!r} is not a valid alias")
        if server_of(alias) == hs.server_name:
            found = await hs.storage.rooms.get_alias(alias)
            if found is None or found[0] != room_id:
                raise MatrixError(400, "M_BAD_ALIAS", f"{alias} does not point to this room")


async def _may_manage_aliases(hs: HomeServer, room_id: str, user_id: str) -> bool:
    """Room moderators (those who may set m.room.canonical_alias) may delete its aliases."""
    snapshot = await hs.storage.state.get_snapshot(room_id)
    if snapshot is None:
        return False
    ids = [snapshot.state.get(k) for k in (("m.room.power_levels", ""), ("m.room.create", ""))]
    events = await hs.storage.events.get_events([i for i in ids if i])
    power = events.get(ids[0]) if ids[0] else None
    create = events.get(ids[1]) if ids[1] else None
    content = power.content if power else None
    return get_user_power_level(user_id, content, create) >= get_event_send_level(
        "m.room.canonical_alias", True, content
    )
