"""Discovery: the published room directory (ours, or with `server=` another server's, asked
over federation), room visibility in it, the user directory, and a room's local aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.directory.public_rooms import (
    PublicRoomsRequest,
    Publisher,
    optional_int,
    parse_public_rooms_body,
)
from homeserver.directory.summaries import is_room_id_shaped
from homeserver.directory.user_directory import DEFAULT_LIMIT
from homeserver.errors import Codes, MatrixError, bad_json, forbidden
from homeserver.identifiers import is_valid_server_name

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def register_routes(router: Router, hs: HomeServer) -> None:
    directories = hs.directories

    async def get_public_rooms(request: ApiRequest) -> tuple[int, Any]:
        server = _remote_server(hs, request.query_str("server"))
        if request.requester is None and (
            server is not None or not hs.config.allow_public_rooms_without_auth
        ):
            # As Synapse: our own list may be open to everyone, asking other servers is not.
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
        query = PublicRoomsRequest(
            limit=request.query_int("limit", minimum=0), since=request.query_str("since")
        )
        if server is not None:
            return 200, await directories.public_rooms.list_remote_rooms(server, query)
        return 200, await directories.public_rooms.list_rooms(query)

    async def post_public_rooms(request: ApiRequest) -> tuple[int, Any]:
        server = _remote_server(hs, request.query_str("server"))
        query = parse_public_rooms_body(request.json())
        if server is not None:
            return 200, await directories.public_rooms.list_remote_rooms(server, query)
        return 200, await directories.public_rooms.list_rooms(query)

    async def get_visibility(request: ApiRequest) -> tuple[int, Any]:
        room_id = request.path_params["roomId"]
        return 200, {"visibility": await directories.public_rooms.get_visibility(room_id)}

    async def put_visibility(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        visibility = request.json().get("visibility", "public")
        if visibility not in ("public", "private"):
            raise bad_json("visibility must be 'public' or 'private'")
        publisher = Publisher(request.requester.user_id, request.requester.is_admin)
        await directories.public_rooms.set_visibility(
            publisher, request.path_params["roomId"], visibility
        )
        return 200, {}

    async def search_users(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        body = request.json()
        term = body.get("search_term")
        if not isinstance(term, str):
            raise bad_json("search_term must be a string")
        limit = optional_int(body, "limit")
        return 200, await directories.user_directory.search(
            request.requester.user_id, term, DEFAULT_LIMIT if limit is None else limit
        )

    async def room_aliases(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        room_id = request.path_params["roomId"]
        if not is_room_id_shaped(room_id):
            raise forbidden("You are not a member of the room")
        if not request.requester.is_admin:
            await _check_may_read_aliases(hs, request.requester.user_id, room_id)
        return 200, {"aliases": await hs.storage.rooms.get_aliases_for_room(room_id)}

    # GET /publicRooms has no security requirement in the spec; the config decides.
    router.add_client("GET", "/publicRooms", get_public_rooms, auth="optional", allow_guest=True)
    router.add_client("POST", "/publicRooms", post_public_rooms, allow_guest=True)
    router.add_client("GET", "/directory/list/room/{roomId}", get_visibility, auth="none")
    router.add_client("PUT", "/directory/list/room/{roomId}", put_visibility)
    router.add_client("POST", "/user_directory/search", search_users)
    router.add_client("GET", "/rooms/{roomId}/aliases", room_aliases)


def _remote_server(hs: HomeServer, server: str | None) -> str | None:
    """The `server` whose directory is asked for, when it is not this one."""
    if server is None or server == hs.server_name:
        return None
    if not is_valid_server_name(server):
        raise MatrixError(400, Codes.INVALID_PARAM, "server is not a valid server name")
    return server


async def _check_may_read_aliases(hs: HomeServer, user_id: str, room_id: str) -> None:
    """Members of the room, or anyone when its history is world_readable (the spec)."""
    snapshot = await hs.storage.state.get_snapshot(room_id)
    if snapshot is None:
        raise forbidden("You are not a member of the room")
    if snapshot.membership_of(user_id) == "join":
        return
    event_id = snapshot.state.get(("m.room.history_visibility", ""))
    event = await hs.storage.events.get_event(event_id) if event_id else None
    if event is None or event.content.get("history_visibility") != "world_readable":
        raise forbidden("You are not a member of the room")


async def check_create_room_publication(
    hs: HomeServer, request: ApiRequest, body: dict[str, Any]
) -> None:
    """For /createRoom: a room asking to be listed is refused before it exists, not after."""
    assert request.requester is not None
    if body.get("visibility") != "public":
        return
    localpart = body.get("room_alias_name")
    alias = f"#{localpart}:{hs.server_name}" if isinstance(localpart, str) else None
    publisher = Publisher(request.requester.user_id, request.requester.is_admin)
    await hs.directories.public_rooms.check_may_publish_new_room(publisher, alias)
