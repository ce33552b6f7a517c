"""Server discovery: which address, port, `Host` header and certificate name reach a server.

Follows "Resolving server names" in the server-server API: IP literals and explicit ports are
used directly; otherwise `/.well-known/matrix/server` (cached), then SRV `_matrix-fed._tcp`,
then the deprecated `_matrix._tcp`, then port 8448. Lookups are injected, so the decision logic
is tested without DNS or HTTP.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeserver.identifiers import is_valid_server_name

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_DEFAULT_TTL_S = 24 * 3600
WELL_KNOWN_MAX_TTL_S = 48 * 3600
WELL_KNOWN_ERROR_TTL_S = 3600

# A well-known lookup answers the `m.server` value, or None for any error response.
WellKnownLookup = Callable[[str], Awaitable["WellKnownAnswer"]]
# An SRV lookup answers (target host, port) pairs in preference order; empty if none.
SrvLookup = Callable[[str], Awaitable[list[tuple[str, int]]]]


@dataclass(frozen=True)
class WellKnownAnswer:
    server: str | None  # the `m.server` value, None when the answer was an error
    ttl_s: float


@dataclass(frozen=True)
class Destination:
    """How to reach a server: connect to host:port, send `Host`, expect a cert for tls_name."""

    connect_host: str
    port: int
    host_header: str
    tls_name: str


_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:]+)(?::(?P<port>\d{1,5}))?$")


def split_host_port(name: str) -> tuple[str, int | None]:
    """("example.com", 8448) from "example.com:8448"; IPv6 literals keep their brackets off."""
    match = _HOST_PORT.match(name)
    if match is None:
        raise ValueError(f"not a valid server name: {name!r}")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"not a valid port in {name!r}")
    return match["host"].strip("[]"), port


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_well_known(body: Any) -> str | None:
    """The delegated server name from a well-known document, or None if it is invalid."""
    if not isinstance(body, dict):
        return None
    server = body.get("m.server")
    if not isinstance(server, str) or not is_valid_server_name(server):
        return None
    try:
        split_host_port(server)
    except ValueError:
        return None
    return server


def cache_ttl(cache_control: str | None, default_s: float = WELL_KNOWN_DEFAULT_TTL_S) -> float:
    """How long to keep a well-known answer: its max-age (capped at 48 h), else 24 h."""
    if cache_control:
        directives = [d.strip().lower() for d in cache_control.split(",")]
        if "no-store" in directives or "no-cache" in directives:
            return 0.0
        for directive in directives:
            name, _, value = directive.partition("=")
            if name == "max-age" and value.isdigit():
                return min(float(value), WELL_KNOWN_MAX_TTL_S)
    return default_s


class ServerResolver:
    """Resolves server names to Destinations, caching well-known answers."""

    def __init__(
        self,
        well_known: WellKnownLookup,
        srv: SrvLookup,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._well_known = well_known
        self._srv = srv
        self._now = now
        self._well_known_cache: dict[str, tuple[float, str | None]] = {}

    async def resolve(self, server_name: str) -> Destination:
        host, port = split_host_port(server_name)
        if is_ip_literal(host) or port is not None:
            # Steps 1 and 2: the name says where to go.
            return Destination(host, port or DEFAULT_PORT, server_name, host)
        delegated = await self._delegated_name(host)
        if delegated is None:
            return await self._via_srv(host)  # steps 4 to 6
        delegated_host, delegated_port = split_host_port(delegated)
        if is_ip_literal(delegated_host) or delegated_port is not None:
            # Steps 3.1 and 3.2.
            port = delegated_port or DEFAULT_PORT
            return Destination(delegated_host, port, delegated, delegated_host)
        return await self._via_srv(delegated_host)  # steps 3.3 to 3.5

    async def _via_srv(self, hostname: str) -> Destination:
        for service in ("_matrix-fed._tcp", "_matrix._tcp"):
            targets = await self._lookup_srv(f"{service}.{hostname}")
            if targets:
                target, port = targets[0]
                return Destination(target, port, hostname, hostname)
        return Destination(hostname, DEFAULT_PORT, hostname, hostname)

    async def _lookup_srv(self, name: str) -> list[tuple[str, int]]:
        try:
            return await self._srv(name)
        except Exception as e:  # a DNS failure is "no record", not a failed request
            logger.debug("SRV lookup of %s failed: %s", name, e)
            return []

    async def _delegated_name(self, hostname: str) -> str | None:
        cached = self._well_known_cache.get(hostname)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        try:
            answer = await self._well_known(hostname)
        except Exception as e:
            logger.info("No /.well-known/matrix/server for %s: %s", hostname, e)
            answer = WellKnownAnswer(None, WELL_KNOWN_ERROR_TTL_S)
        self._well_known_cache[hostname] = (self._now() + answer.ttl_s, answer.server)
        return answer.server
