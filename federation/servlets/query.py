"""/_matrix/federation/v1/query/*: profile lookups from other servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from federation.joins import servers_in_room
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import is_valid_room_alias, is_valid_user_id, server_of

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PROFILE_FIELDS = ("displayname", "avatar_url")


def register_routes(router: Router, hs: HomeServer) -> None:
    async def profile(request: ApiRequest) -> tuple[int, Any]:
        user_id = request.query_str("user_id", required=True)
        field = request.query_str("field")
        assert user_id is not None
        if not is_valid_user_id(user_id) or server_of(user_id) != hs.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "user_id must be a user of this server")
        if field is not None and field not in PROFILE_FIELDS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unknown profile field {field!r}")
        found = await hs.accounts.get_profile(user_id)
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found")
        if field is not None:
            found = {field: found[field]} if field in found else {}
        return 200, found

    async def directory(request: ApiRequest) -> tuple[int, Any]:
        alias = request.query_str("room_alias", required=True)
        assert alias is not None
        if not is_valid_room_alias(alias) or server_of(alias) != hs.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "room_alias must be an alias of this server")
        found = await hs.storage.rooms.get_alias(alias)
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room alias not found")
        room_id = found[0]
        snapshot = await hs.storage.state.get_snapshot(room_id)
        servers = servers_in_room(snapshot.memberships) if snapshot else set()
        # Ourselves first: the asking server will most likely join through us.
        ordered = [hs.server_name, *sorted(servers - {hs.server_name})]
        return 200, {"room_id": room_id, "servers": ordered}

    router.add("GET", "/_matrix/federation/v1/query/profile", profile, auth="federation")
    router.add("GET", "/_matrix/federation/v1/query/directory", directory, auth="federation")
