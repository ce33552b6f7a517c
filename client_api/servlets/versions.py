"""Discovery: /versions, /.well-known/matrix/client, /capabilities, /health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Only what is built: each release adds the versions whose endpoints it serves.
SPEC_VERSIONS = ["r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6"]


def register_health(router: Router, hs: HomeServer) -> None:
    async def health(request: ApiRequest) -> tuple[int, Any]:
        from client_api.http import Response

        return 200, Response(200, b"OK", "text/plain; charset=utf-8")

    router.add("GET", "/health", health, auth="none")


def register_routes(router: Router, hs: HomeServer) -> None:
    async def versions(request: ApiRequest) -> tuple[int, Any]:
        return 200, {"versions": SPEC_VERSIONS, "unstable_features": {}}

    async def well_known(request: ApiRequest) -> tuple[int, Any]:
        return 200, {"m.homeserver": {"base_url": hs.config.public_baseurl}}

    webpush: dict[str, Any] = {"enabled": False}
    if hs.pushers.webpush is not None:
        webpush = {"enabled": True, "vapid": hs.pushers.webpush.public_key}

    async def capabilities(request: ApiRequest) -> tuple[int, Any]:
        return 200, {
            "capabilities": {
                "m.room_versions": {
                    "default": hs.config.default_room_version,
                    "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS},
                },
                "m.change_password": {"enabled": True},
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                # Addresses can be added and removed when they can be validated by mail.
                "m.3pid_changes": {"enabled": hs.threepids.enabled},
                "m.get_login_token": {"enabled": False},
                # Web Push pushers (MSC4174), under its stable and its unstable name.
                **dict.fromkeys(("m.webpush", "org.matrix.msc4174.webpush"), webpush),
            }
        }

    router.add("GET", "/_matrix/client/versions", versions, auth="optional")
    router.add("GET", "/.well-known/matrix/client", well_known, auth="none")
    router.add_client("GET", "/capabilities", capabilities)
