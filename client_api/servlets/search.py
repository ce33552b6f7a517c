"""POST /search: server-side full-text search (client-server spec, "Server Side Search")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.search.handler import SearchHandler

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def register_routes(router: Router, hs: HomeServer) -> None:
    handler = SearchHandler(hs.storage, hs.clock)

    async def search(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        response = await handler.search(
            request.requester.user_id,
            request.requester.device_id,
            request.json(),
            request.query_str("next_batch"),
        )
        return 200, response

    router.add_client("POST", "/search", search)
