"""/sync and saved filters (/user/{userId}/filter)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError, forbidden, not_found
from homeserver.sync.filtering import SyncFilter, parse_sync_filter
from homeserver.sync.sync import SyncRequest
from homeserver.sync.tokens import StreamToken
from storage.lru import LruCache

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# A long-poll is capped so that proxies with a 60 s idle limit do not cut it.
MAX_SYNC_TIMEOUT_MS = 55_000


def register_routes(router: Router, hs: HomeServer) -> None:
    # Saved filters never change (a new one gets a new ID), so each is parsed once.
    saved_filters: LruCache[tuple[str, str], SyncFilter] = LruCache(10_000)

    async def sync(request: ApiRequest) -> tuple[int, Any]:
        requester = request.requester
        assert requester is not None
        since = request.query_str("since")
        set_presence = request.query_str("set_presence", "online")
        if set_presence not in ("online", "offline", "unavailable"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown set_presence value")
        sync_request = SyncRequest(
            user_id=requester.user_id,
            device_id=requester.device_id,
            since=StreamToken.decode(since) if since else None,
            sync_filter=await _load_filter(
                hs, saved_filters, requester.user_id, request.query_str("filter")
            ),
            timeout_ms=min(request.query_int("timeout", 0, minimum=0) or 0, MAX_SYNC_TIMEOUT_MS),
            full_state=request.query_bool("full_state", False),
        )
        # The user counts as connected (presence) while the request runs, unless "offline".
        async with hs.ephemeral.presence.syncing(requester.user_id, set_presence):
            result = await hs.sync.sync(sync_request)
        return 200, result.to_json()

    async def create_filter(request: ApiRequest) -> tuple[int, Any]:
        user_id = _own_user(request)
        body = request.json()
        parse_sync_filter(body)
        filter_id = await hs.storage.account_data.add_filter(user_id, body)
        return 200, {"filter_id": str(filter_id)}

    async def get_filter(request: ApiRequest) -> tuple[int, Any]:
        user_id = _own_user(request)
        filter_json = await _stored_filter(hs, user_id, request.path_params["filterId"])
        return 200, filter_json

    router.add_client("GET", "/sync", sync, allow_guest=True)
    router.add_client("POST", "/user/{userId}/filter", create_filter, allow_guest=True)
    router.add_client("GET", "/user/{userId}/filter/{filterId}", get_filter, allow_guest=True)


def _own_user(request: ApiRequest) -> str:
    assert request.requester is not None
    if request.path_params["userId"] != request.requester.user_id:
        raise forbidden("Cannot use filters of other users")
    return request.requester.user_id


async def _stored_filter(hs: HomeServer, user_id: str, filter_id: str) -> dict[str, Any]:
    if not filter_id.isdigit():
        raise not_found("No such filter")
    filter_json = await hs.storage.account_data.get_filter(user_id, int(filter_id))
    if filter_json is None:
        raise not_found("No such filter")
    return filter_json


@lru_cache(maxsize=256)
def _parse_inline_filter(raw: str) -> SyncFilter:
    """Clients send the same inline filter with every sync; parse each text once."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise MatrixError(400, Codes.NOT_JSON, "filter is not valid JSON") from None
    return parse_sync_filter(value)


async def _load_filter(
    hs: HomeServer,
    saved_filters: LruCache[tuple[str, str], SyncFilter],
    user_id: str,
    raw: str | None,
) -> SyncFilter:
    """The `filter` query parameter: inline JSON (starts with "{") or a saved filter ID."""
    if not raw:
        return SyncFilter()
    if raw.lstrip().startswith("{"):
        return _parse_inline_filter(raw)
    parsed = saved_filters.get((user_id, raw))
    if parsed is None:
        try:
            parsed = parse_sync_filter(await _stored_filter(hs, user_id, raw))
        except MatrixError as error:
            if error.errcode == Codes.NOT_FOUND:
                raise MatrixError(400, Codes.INVALID_PARAM, "No such filter") from None
            raise
        saved_filters.set((user_id, raw), parsed)
    return parsed
