"""Spaces and room lifecycles: GET /hierarchy, POST /knock, POST /rooms/{roomId}/upgrade."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError, bad_json, not_found
from homeserver.rooms.spaces import DEFAULT_LIMIT, HierarchyRequest

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def _user(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


def register_routes(router: Router, hs: HomeServer) -> None:
    async def hierarchy(request: ApiRequest) -> tuple[int, Any]:
        limit = request.query_int("limit", DEFAULT_LIMIT)
        if limit is None or limit <= 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "limit must be greater than zero")
        query = HierarchyRequest(
            user_id=_user(request),
            room_id=request.path_params["roomId"],
            suggested_only=request.query_bool("suggested_only"),
            max_depth=request.query_int("max_depth", minimum=0),
            limit=limit,
            from_token=request.query_str("from"),
        )
        return 200, await hs.spaces.get_hierarchy(query)

    async def knock(request: ApiRequest) -> tuple[int, Any]:
        body = request.json() if request.body else {}
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise bad_json("reason must be a string")
        target = request.path_params["roomIdOrAlias"]
        if "\x00" in target:
            # No room or alias holds NUL (and PostgreSQL refuses it in a query).
            raise not_found("That room does not appear to exist")
        room_id, servers = await hs.membership.resolve_room_and_servers(target)
        via = [*request.query_list("via"), *request.query_list("server_name"), *servers]
        await hs.membership.knock(_user(request), room_id, reason, via)
        return 200, {"room_id": room_id}

    async def upgrade(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        new_version = body.get("new_version")
        if not isinstance(new_version, str):
            raise bad_json("new_version must be a string")
        replacement = await hs.room_upgrader.upgrade(
            _user(request),
            request.path_params["roomId"],
            new_version,
            body.get("additional_creators"),
        )
        return 200, {"replacement_room": replacement}

    router.add_client("GET", "/rooms/{roomId}/hierarchy", hierarchy, versions=("v1",))
    router.add_client("POST", "/knock/{roomIdOrAlias}", knock, ratelimit="join")
    router.add_client("POST", "/rooms/{roomId}/upgrade", upgrade, ratelimit="room_creation")
