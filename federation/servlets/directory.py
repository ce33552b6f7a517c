"""Discovery between servers: /_matrix/federation/v1/publicRooms (our published room
directory, when allow_public_rooms_over_federation lets other servers read it) and
/_matrix/federation/v1/hierarchy/{roomId} (a space we hold and its children).

Out: `FederationRoomDirectory` asks another server for its directory, for clients'
/publicRooms?server=...; `FederationSpaces` asks for the hierarchy of rooms we are not in, for
clients' /hierarchy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from federation.client import FederationClient, FederationError, federation_path
from homeserver.directory.public_rooms import PublicRoomsRequest, parse_public_rooms_body
from homeserver.errors import Codes, MatrixError, not_found
from homeserver.rooms.spaces import RemoteSpaceError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

PUBLIC_ROOMS_PATH = "/_matrix/federation/v1/publicRooms"
# Errors of the remote a client may see as they are; anything else is our failure to ask (a
# 401 passed on would tell the client that its own access token is bad).
_PASSED_ON = frozenset({400, 403, 404})
_MAX_ERROR_MESSAGE = 200
# A client's /hierarchy waits for these: a server that does not answer soon is skipped.
_HIERARCHY_TIMEOUT_S = 15.0


def register_routes(router: Router, hs: HomeServer) -> None:
    public_rooms = hs.directories.public_rooms

    def check_allowed() -> None:
        # Synapse's answer when the directory is not shared: 403, not an empty list.
        if not hs.config.allow_public_rooms_over_federation:
            raise MatrixError(
                403, Codes.FORBIDDEN, "This server does not share its room directory"
            )

    async def get_public_rooms(request: ApiRequest) -> tuple[int, Any]:
        check_allowed()
        limit = request.query_int("limit", minimum=0)
        include_all = request.query_bool("include_all_networks", False)
        query = PublicRoomsRequest(
            # The federation API's default and 0 both mean "no limit": our largest page.
            limit=limit or None,
            since=request.query_str("since"),
            include_all_networks=include_all,
            third_party_instance_id=(
                None if include_all else request.query_str("third_party_instance_id")
            ),
        )
        return 200, await public_rooms.list_rooms(query)

    async def post_public_rooms(request: ApiRequest) -> tuple[int, Any]:
        check_allowed()
        return 200, await public_rooms.list_rooms(parse_public_rooms_body(request.json()))

    async def hierarchy(request: ApiRequest) -> tuple[int, Any]:
        assert request.origin is not None
        return 200, await hs.spaces.get_federation_hierarchy(
            request.origin,
            request.path_params["roomId"],
            request.query_bool("suggested_only", False),
            hs.server_name,
        )

    router.add("GET", PUBLIC_ROOMS_PATH, get_public_rooms, auth="federation")
    router.add("POST", PUBLIC_ROOMS_PATH, post_public_rooms, auth="federation")
    router.add("GET", "/_matrix/federation/v1/hierarchy/{roomId}", hierarchy, auth="federation")


def install_remote_directory(hs: HomeServer) -> None:
    """Lets clients' /publicRooms?server=... and /hierarchy ask other servers."""
    if hs.directories.public_rooms.remote is None:
        hs.directories.public_rooms.remote = FederationRoomDirectory(hs.federation_client)
    if hs.spaces.remote is None:
        hs.spaces.remote = FederationSpaces(hs.federation_client)


class FederationSpaces:
    """homeserver.rooms.spaces's RemoteSpaces, over federation."""

    def __init__(self, client: FederationClient) -> None:
        self.client = client

    async def get_hierarchy(
        self, server_name: str, room_id: str, suggested_only: bool
    ) -> dict[str, Any]:
        path = federation_path("/_matrix/federation/v1/hierarchy/{}", room_id)
        query = {"suggested_only": "true"} if suggested_only else None
        try:
            answer = await self.client.get_json(
                server_name, path, query, timeout=_HIERARCHY_TIMEOUT_S
            )
        except FederationError as e:
            raise RemoteSpaceError(str(e)) from None
        if not isinstance(answer, dict):
            raise RemoteSpaceError(f"{server_name} answered /hierarchy with {type(answer)}")
        return answer


class FederationRoomDirectory:
    """homeserver.directory.public_rooms's RemoteRoomDirectory, over federation."""

    def __init__(self, client: FederationClient) -> None:
        self.client = client

    async def public_rooms(self, server_name: str, request: PublicRoomsRequest) -> dict[str, Any]:
        try:
            if request.search is not None or request.room_types is not None:
                # Only POST carries a filter; GET is what every server has always served.
                answer = await self.client.post_json(
                    server_name, PUBLIC_ROOMS_PATH, _post_body(request)
                )
            else:
                answer = await self.client.get_json(
                    server_name, PUBLIC_ROOMS_PATH, _get_query(request)
                )
        except FederationError as e:
            raise _directory_error(server_name, e) from None
        return _checked_answer(server_name, answer)


def _get_query(request: PublicRoomsRequest) -> dict[str, str]:
    query = {}
    if request.limit is not None:
        query["limit"] = str(request.limit)
    if request.since is not None:
        query["since"] = request.since
    if request.include_all_networks:
        query["include_all_networks"] = "true"
    elif request.third_party_instance_id is not None:
        query["third_party_instance_id"] = request.third_party_instance_id
    return query


def _post_body(request: PublicRoomsRequest) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if request.limit is not None:
        body["limit"] = request.limit
    if request.since is not None:
        body["since"] = request.since
    room_filter: dict[str, Any] = {}
    if request.search is not None:
        room_filter["generic_search_term"] = request.search
    if request.room_types is not None:
        room_filter["room_types"] = list(request.room_types)
    if room_filter:
        body["filter"] = room_filter
    if request.include_all_networks:
        body["include_all_networks"] = True
    elif request.third_party_instance_id is not None:
        body["third_party_instance_id"] = request.third_party_instance_id
    return body


def _checked_answer(server_name: str, answer: Any) -> dict[str, Any]:
    """The remote's PublicRoomsResponse, keeping only what has the spec's shape."""
    chunk = answer.get("chunk") if isinstance(answer, dict) else None
    if not isinstance(chunk, list):
        logger.info("%s answered /publicRooms without a chunk list", server_name)
        raise _unavailable(server_name)
    rooms = [
        room for room in chunk if isinstance(room, dict) and isinstance(room.get("room_id"), str)
    ]
    body: dict[str, Any] = {"chunk": rooms}
    for key in ("next_batch", "prev_batch"):
        if isinstance(answer.get(key), str):
            body[key] = answer[key]
    total = answer.get("total_room_count_estimate")
    if type(total) is int and total >= 0:
        body["total_room_count_estimate"] = total
    return body


def _directory_error(server_name: str, error: FederationError) -> MatrixError:
    errcode = error.errcode
    if (
        error.code in _PASSED_ON
        and isinstance(errcode, str)
        and errcode.startswith("M_")
        and errcode != Codes.UNRECOGNIZED  # the client would read it as ours not existing
    ):
        message = error.body.get("error") if isinstance(error.body, dict) else None
        if not isinstance(message, str):
            message = f"{server_name} refused to share its room directory"
        return MatrixError(error.code, errcode, message[:_MAX_ERROR_MESSAGE])
    logger.info("Could not fetch the room directory of %s: %s", server_name, error)
    return _unavailable(server_name)


def _unavailable(server_name: str) -> MatrixError:
    # Not a 502: a server name that leads nowhere is what a client sent (and, unlike media,
    # the spec gives /publicRooms no gateway errors).
    return not_found(f"The room directory of {server_name} is not available")
