"""Server-side key backups: /room_keys/version[/{version}] and /room_keys/keys[/{roomId}[/{sessionId}]]."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.e2ee.key_backup import parse_room_key
from homeserver.errors import bad_json, not_found
from storage.key_backup import RoomKeys

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def _user(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


def _target(request: ApiRequest) -> tuple[str | None, str | None]:
    return request.path_params.get("roomId"), request.path_params.get("sessionId")


def _keys_from_body(request: ApiRequest) -> RoomKeys:
    """The keys a PUT carries, whichever of the three paths it was sent to."""
    body = request.json()
    room_id, session_id = _target(request)
    if session_id is not None:
        assert room_id is not None
        return {(room_id, session_id): parse_room_key(body, "body")}
    rooms = {room_id: body} if room_id is not None else body.get("rooms")
    if not isinstance(rooms, dict):
        raise bad_json("rooms must be an object of room IDs to their sessions")
    keys: RoomKeys = {}
    for room, room_backup in rooms.items():
        sessions = room_backup.get("sessions") if isinstance(room_backup, dict) else None
        if not isinstance(sessions, dict):
            raise bad_json(f"sessions of {room} must be an object")
        for session, data in sessions.items():
            keys[(room, session)] = parse_room_key(data, f"{room}/{session}")
    return keys


def _render(keys: RoomKeys, room_id: str | None, session_id: str | None) -> dict[str, Any]:
    if session_id is not None:
        key = keys.get((room_id or "", session_id))
        if key is None:
            raise not_found("Key not found")
        return key.to_json()
    rooms: dict[str, Any] = {}
    for (room, session), key in sorted(keys.items()):
        rooms.setdefault(room, {"sessions": {}})["sessions"][session] = key.to_json()
    if room_id is not None:
        return rooms.get(room_id, {"sessions": {}})
    return {"rooms": rooms}


def register_routes(router: Router, hs: HomeServer) -> None:
    backups = hs.e2ee.key_backup

    async def create_version(request: ApiRequest) -> tuple[int, Any]:
        return 200, await backups.create_version(_user(request), request.json())

    async def get_current_version(request: ApiRequest) -> tuple[int, Any]:
        return 200, await backups.get_version(_user(request), None)

    async def get_version(request: ApiRequest) -> tuple[int, Any]:
        return 200, await backups.get_version(_user(request), request.path_params["version"])

    async def update_version(request: ApiRequest) -> tuple[int, Any]:
        version = request.path_params["version"]
        await backups.update_version(_user(request), version, request.json())
        return 200, {}

    async def delete_version(request: ApiRequest) -> tuple[int, Any]:
        await backups.delete_version(_user(request), request.path_params["version"])
        return 200, {}

    async def put_keys(request: ApiRequest) -> tuple[int, Any]:
        version = request.query_str("version")
        keys = _keys_from_body(request)
        return 200, await backups.put_keys(_user(request), version, keys)

    async def get_keys(request: ApiRequest) -> tuple[int, Any]:
        room_id, session_id = _target(request)
        keys = await backups.get_keys(
            _user(request), request.query_str("version"), room_id, session_id
        )
        return 200, _render(keys, room_id, session_id)

    async def delete_keys(request: ApiRequest) -> tuple[int, Any]:
        room_id, session_id = _target(request)
        version = request.query_str("version")
        return 200, await backups.delete_keys(_user(request), version, room_id, session_id)

    router.add_client("POST", "/room_keys/version", create_version)
    router.add_client("GET", "/room_keys/version", get_current_version)
    router.add_client("GET", "/room_keys/version/{version}", get_version)
    router.add_client("PUT", "/room_keys/version/{version}", update_version)
    router.add_client("DELETE", "/room_keys/version/{version}", delete_version)
    for path in (
        "/room_keys/keys",
        "/room_keys/keys/{roomId}",
        "/room_keys/keys/{roomId}/{sessionId}",
    ):
        router.add_client("PUT", path, put_keys)
        router.add_client("GET", path, get_keys)
        router.add_client("DELETE", path, delete_keys)
