"""End-to-end encryption keys: /keys/upload, query, claim, changes, and cross-signing
(/keys/device_signing/upload, /keys/signatures/upload)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from client_api.servlets.accounts import password_uia
from homeserver.accounts.auth import Requester
from homeserver.sync.tokens import StreamToken

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def _requester(request: ApiRequest) -> Requester:
    assert request.requester is not None
    return request.requester


def register_routes(router: Router, hs: HomeServer) -> None:
    e2ee = hs.e2ee

    async def upload(request: ApiRequest) -> tuple[int, Any]:
        requester = _requester(request)
        body = request.json()
        result = await e2ee.keys.upload(
            requester.user_id, requester.device_id, body, hs.clock.time_msec()
        )
        return 200, result

    async def query(request: ApiRequest) -> tuple[int, Any]:
        return 200, await e2ee.keys.query(_requester(request).user_id, request.json())

    async def claim(request: ApiRequest) -> tuple[int, Any]:
        return 200, await e2ee.keys.claim(request.json())

    async def changes(request: ApiRequest) -> tuple[int, Any]:
        since = StreamToken.decode(request.query_str("from", required=True) or "")
        upto = StreamToken.decode(request.query_str("to", required=True) or "")
        # `to` is a hint (spec): never look past what has committed.
        now = hs.notifier.current_token()
        news = await e2ee.device_lists.news_between(
            _requester(request).user_id, since.capped_at(now), upto.capped_at(now)
        )
        return 200, {"changed": sorted(news.changed), "left": sorted(news.left)}

    async def upload_signing_keys(request: ApiRequest) -> tuple[int, Any]:
        user_id = _requester(request).user_id
        body = request.json()
        if await e2ee.cross_signing.needs_auth(user_id, body):
            await password_uia(hs, request, body)
        await e2ee.cross_signing.upload_keys(user_id, body)
        return 200, {}

    async def upload_signatures(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        return 200, await e2ee.cross_signing.upload_signatures(_requester(request).user_id, body)

    router.add_client("POST", "/keys/upload", upload, allow_guest=True)
    router.add_client("POST", "/keys/query", query, allow_guest=True)
    router.add_client("POST", "/keys/claim", claim, allow_guest=True)
    router.add_client("GET", "/keys/changes", changes)
    router.add_client("POST", "/keys/device_signing/upload", upload_signing_keys)
    router.add_client("POST", "/keys/signatures/upload", upload_signatures)
