"""/_matrix/federation/v1/user/*: our users' devices and keys, for other servers (spec,
server-server "Device Management" and "End-to-End Encryption")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.identifiers import is_valid_user_id, server_of

if TYPE_CHECKING:
    from homeserver.server import HomeServer

V1 = "/_matrix/federation/v1"


def register_routes(router: Router, hs: HomeServer) -> None:
    def ours(user_id: Any) -> bool:
        return (
            isinstance(user_id, str)
            and is_valid_user_id(user_id)
            and server_of(user_id) == hs.server_name
        )

    async def user_devices(request: ApiRequest) -> tuple[int, Any]:
        user_id = request.path_params["userId"]
        if not ours(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "userId must be a user of this server")
        return 200, await hs.e2ee.announcer.user_devices(user_id)

    async def query_keys(request: ApiRequest) -> tuple[int, Any]:
        wanted = request.json().get("device_keys")
        if not isinstance(wanted, dict):
            raise bad_json("device_keys must be an object of user IDs to device ID lists")
        local: dict[str, list[str]] = {}
        for user_id, device_ids in wanted.items():
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise bad_json(f"device_keys[{user_id}] must be a list of device IDs")
            # The spec: requested users must be local; others are left out of the answer.
            if ours(user_id):
                local[user_id] = device_ids
        found = await hs.e2ee.keys.query_local(local, viewer=None)
        return 200, {
            "device_keys": found["device_keys"],
            "master_keys": found["master_keys"],
            "self_signing_keys": found["self_signing_keys"],
        }

    async def claim_keys(request: ApiRequest) -> tuple[int, Any]:
        wanted = request.json().get("one_time_keys")
        if not isinstance(wanted, dict):
            raise bad_json("one_time_keys must be an object of user IDs to devices")
        local: list[tuple[str, str, str]] = []
        for user_id, devices in wanted.items():
            if not isinstance(devices, dict) or not all(
                isinstance(a, str) for a in devices.values()
            ):
                raise bad_json(f"one_time_keys[{user_id}] must map device IDs to algorithms")
            if ours(user_id):
                local += [(user_id, device_id, alg) for device_id, alg in devices.items()]
        return 200, {"one_time_keys": await hs.e2ee.keys.claim_local(local)}

    router.add("GET", f"{V1}/user/devices/{{userId}}", user_devices, auth="federation")
    router.add("POST", f"{V1}/user/keys/query", query_keys, auth="federation")
    router.add("POST", f"{V1}/user/keys/claim", claim_keys, auth="federation")
