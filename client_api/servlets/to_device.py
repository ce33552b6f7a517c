"""Send-to-device messaging: PUT /sendToDevice/{eventType}/{txnId}."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.errors import bad_json

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def register_routes(router: Router, hs: HomeServer) -> None:
    async def send(request: ApiRequest) -> tuple[int, Any]:
        requester = request.requester
        assert requester is not None
        body = request.json()
        if "messages" not in body:
            raise bad_json("Missing messages")
        await hs.e2ee.to_device.send(
            requester.user_id,
            requester.device_id,
            request.path_params["eventType"],
            request.path_params["txnId"],
            body["messages"],
        )
        # The same answer for a retry of the same transaction (spec: Transaction identifiers).
        return 200, {}

    router.add_client("PUT", "/sendToDevice/{eventType}/{txnId}", send, allow_guest=True)
