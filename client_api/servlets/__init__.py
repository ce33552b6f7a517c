"""Every route group, and the listener resource (Synapse's names) that serves it.

A group is a module with `register_routes(router, hs)`. "always" groups are served on every
listener (health checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client_api.servlets import (
    account_data,
    accounts,
    admin,
    devices,
    directory,
    ephemeral,
    key_backup,
    keys,
    media,
    misc,
    profile,
    push,
    relations,
    rooms,
    search,
    spaces,
    sync,
    tags,
    threepids,
    to_device,
    versions,
)

if TYPE_CHECKING:
    from client_api.http import Router

RegisterRoutes = Callable[["Router", Any], None]

ROUTE_GROUPS: list[tuple[str, RegisterRoutes]] = [
    ("always", versions.register_health),
    ("client", versions.register_routes),
    ("client", rooms.register_routes),
    ("client", relations.register_routes),
    ("client", search.register_routes),
    ("client", sync.register_routes),
    ("client", account_data.register_routes),
    ("client", accounts.register_routes),
    ("client", devices.register_routes),
    ("client", profile.register_routes),
    ("client", admin.register_routes),
    ("client", media.register_client_routes),
    ("media", media.register_media_routes),
    ("client", tags.register_routes),
    ("client", misc.register_routes),
    ("client", threepids.register_routes),
    ("client", directory.register_routes),
    ("client", spaces.register_routes),
    ("client", ephemeral.register_routes),
    ("client", keys.register_routes),
    ("client", to_device.register_routes),
    ("client", key_backup.register_routes),
    ("client", push.register_routes),
    ("federation", misc.register_federation_openid_routes),
    ("openid", misc.register_federation_openid_routes),
]
