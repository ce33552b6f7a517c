"""/user/{userId}/account_data/{type} and /user/{userId}/rooms/{roomId}/account_data/{type}."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError, forbidden, not_found
from homeserver.ignored_users import IGNORED_USER_LIST, validate_ignored_user_list
from push.rules_service import PUSH_RULES_TYPE

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Types the server manages itself; clients may not write them through this API.
SERVER_MANAGED = {"m.fully_read", PUSH_RULES_TYPE}


def register_routes(router: Router, hs: HomeServer) -> None:
    def target(request: ApiRequest) -> tuple[str, str, str]:
        assert request.requester is not None
        user_id = request.path_params["userId"]
        if user_id != request.requester.user_id:
            raise forbidden("Cannot access account data of other users")
        room_id = request.path_params.get("roomId", "")
        if room_id and not room_id.startswith("!"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Not a room ID")
        return user_id, room_id, request.path_params["type"]

    async def put(request: ApiRequest) -> tuple[int, Any]:
        user_id, room_id, data_type = target(request)
        if data_type in SERVER_MANAGED:
            raise MatrixError(405, Codes.BAD_JSON, f"Cannot set {data_type} through this API")
        content = request.json()
        if data_type == IGNORED_USER_LIST and not room_id:
            # /sync reads this list to leave events out; refuse content it could not read.
            validate_ignored_user_list(content)
        await hs.storage.account_data.put(user_id, room_id, data_type, content)
        hs.notifier.wake_users([user_id])
        return 200, {}

    async def get(request: ApiRequest) -> tuple[int, Any]:
        user_id, room_id, data_type = target(request)
        if data_type == PUSH_RULES_TYPE and not room_id:
            # Always the current rules, including for a user who never changed them.
            return 200, await hs.push_rules.ruleset_json(user_id)
        content = await hs.storage.account_data.get(user_id, room_id, data_type)
        if content is None:
            raise not_found("Account data not found")
        return 200, content

    for path in (
        "/user/{userId}/account_data/{type}",
        "/user/{userId}/rooms/{roomId}/account_data/{type}",
    ):
        router.add_client("PUT", path, put)
        router.add_client("GET", path, get)
