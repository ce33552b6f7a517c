"""The HTTP site of one listener: every route group its resources name, behind one resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.web.server import Site

from client_api.http import ApiRequest, JsonResource, Router, make_site
from client_api.servlets import ROUTE_GROUPS
from client_api.web_client import with_web_client
from federation.servlets import FEDERATION_ROUTE_GROUPS
from homeserver.accounts.auth import Requester
from homeserver.config import ListenerConfig

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def build_router(hs: HomeServer, resource_names: frozenset[str]) -> Router:
    router = Router()
    for resource, register_routes in ROUTE_GROUPS + FEDERATION_ROUTE_GROUPS:
        if resource in resource_names or resource == "always":
            register_routes(router, hs)
    return router


def build_site(hs: HomeServer, listener: ListenerConfig) -> Site:
    async def authenticate(token: str, request: ApiRequest) -> Requester:
        return await hs.authenticator.authenticate(token, request.client_ip, request.user_agent)

    resource = JsonResource(
        build_router(hs, listener.resource_names),
        authenticator=authenticate,
        clock=hs.clock,
        rate_limiters=hs.rate_limiters,
        x_forwarded=listener.x_forwarded,
        max_body_size=hs.config.max_request_body_size,
        server_authenticator=hs.server_authenticator,
    )
    # The bundled web client (web/dist) answers at / what the API does not know.
    root = with_web_client(resource) if "client" in listener.resource_names else resource
    return make_site(
        root,
        max_body_size=hs.config.max_request_body_size,
        x_forwarded=listener.x_forwarded,
    )
