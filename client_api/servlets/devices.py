"""Device management: /devices, /devices/{deviceId}, /delete_devices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from client_api.servlets.accounts import body_or_empty, password_uia
from homeserver.accounts.service import MAX_DEVICE_DISPLAY_NAME_LENGTH
from homeserver.errors import Codes, MatrixError, bad_json, not_found
from storage.accounts import Device

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def device_json(device: Device) -> dict[str, Any]:
    """The spec's Device object: unknown fields are left out rather than null."""
    fields = {
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.last_seen_ip,
        "last_seen_ts": device.last_seen_ts,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _user(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


def register_routes(router: Router, hs: HomeServer) -> None:
    store = hs.storage.accounts

    async def list_devices(request: ApiRequest) -> tuple[int, Any]:
        await hs.authenticator.wait_for_seen_writes(_user(request))
        devices = await store.get_devices(_user(request))
        return 200, {"devices": [device_json(d) for d in devices]}

    async def get_device(request: ApiRequest) -> tuple[int, Any]:
        await hs.authenticator.wait_for_seen_writes(_user(request))
        device = await store.get_device(_user(request), request.path_params["deviceId"])
        if device is None:
            raise not_found("Device not found")
        return 200, device_json(device)

    async def update_device(request: ApiRequest) -> tuple[int, Any]:
        user_id = _user(request)
        device_id = request.path_params["deviceId"]
        body = request.json()
        if await store.get_device(user_id, device_id) is None:
            # Creating devices this way is for application services, which we do not have.
            raise not_found("Device not found")
        if "display_name" in body:
            name = body["display_name"]
            if name is not None and not isinstance(name, str):
                raise bad_json("display_name must be a string")
            if name is not None and len(name) > MAX_DEVICE_DISPLAY_NAME_LENGTH:
                raise MatrixError(
                    400,
                    Codes.TOO_LARGE,
                    f"display_name is too long (at most {MAX_DEVICE_DISPLAY_NAME_LENGTH})",
                )
            await store.update_device_display_name(user_id, device_id, name)
            # Other servers' users see device names in key queries: tell them.
            await hs.e2ee.on_device_renamed(user_id)
        return 200, {}

    async def delete_device(request: ApiRequest) -> tuple[int, Any]:
        body = body_or_empty(request)
        await password_uia(hs, request, body)
        # The spec: 200 also when the device had been removed already.
        await hs.accounts.delete_devices(_user(request), [request.path_params["deviceId"]])
        return 200, {}

    async def delete_devices(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        devices = body.get("devices")
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise bad_json("devices must be a list of device IDs")
        await password_uia(hs, request, body)
        await hs.accounts.delete_devices(_user(request), devices)
        return 200, {}

    router.add_client("GET", "/devices", list_devices)
    router.add_client("GET", "/devices/{deviceId}", get_device)
    router.add_client("PUT", "/devices/{deviceId}", update_device)
    router.add_client("DELETE", "/devices/{deviceId}", delete_device)
    router.add_client("POST", "/delete_devices", delete_devices)
