"""Every federation route group, and the listener resource (Synapse's names) that serves it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from federation.servlets import directory, keys, media, query, rooms, user, version

RegisterRoutes = Callable[[Any, Any], None]

FEDERATION_ROUTE_GROUPS: list[tuple[str, RegisterRoutes]] = [
    ("federation", keys.register_routes),
    ("keys", keys.register_routes),
    ("federation", version.register_routes),
    ("federation", query.register_routes),
    ("federation", rooms.register_routes),
    ("federation", user.register_routes),
    ("federation", media.register_routes),
    ("federation", directory.register_routes),
    ("client", version.register_well_known),
    ("federation", version.register_well_known),
]
