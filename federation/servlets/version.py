"""/_matrix/federation/v1/version and /.well-known/matrix/server."""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def _version() -> str:
    try:
        return metadata.version("homeserver")
    except metadata.PackageNotFoundError:
        return "unknown"


def register_routes(router: Router, hs: HomeServer) -> None:
    async def version(request: ApiRequest) -> tuple[int, Any]:
        return 200, {"server": {"name": "homeserver", "version": _version()}}

    _add_once(router, "GET", "/_matrix/federation/v1/version", version)


def register_well_known(router: Router, hs: HomeServer) -> None:
    async def well_known(request: ApiRequest) -> tuple[int, Any]:
        if not hs.config.serve_server_wellknown:
            raise MatrixError(404, Codes.NOT_FOUND, "No .well-known/matrix/server here")
        # Federation traffic arrives where public_baseurl points, on 443 unless it says a port.
        base = urlsplit(hs.config.public_baseurl)
        return 200, {"m.server": f"{base.hostname}:{base.port or 443}"}

    _add_once(router, "GET", "/.well-known/matrix/server", well_known)


def _add_once(router: Router, method: str, path: str, handler: Any) -> None:
    # A listener naming several resources that serve the same route registers it once.
    if not any(route.pattern == path and route.method == method for route in router.routes()):
        router.add(method, path, handler, auth="none")
