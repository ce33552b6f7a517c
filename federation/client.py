"""Outbound federation requests: discovery, TLS, X-Matrix signatures, JSON in and out.

Every request goes through one HttpClient with the federation IP policy (`ip_range_blacklist`
/ `ip_range_whitelist`), so a server name cannot point us at our own network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from twisted.internet import defer
from twisted.names import client as dns_client
from twisted.names import dns
from twisted.names.error import DomainError
from twisted.web.http_headers import Headers

from federation.discovery import (
    WELL_KNOWN_ERROR_TTL_S,
    Destination,
    ServerResolver,
    WellKnownAnswer,
    cache_ttl,
    parse_well_known,
)
from federation.request_auth import authorization_header
from homeserver.events.signing import SigningKey
from homeserver.http_client import (
    HttpClient,
    HttpClientError,
    HttpResponse,
    IPPolicy,
    ResponseTooLarge,
    UnverifiedTLSPolicy,
)
from homeserver.identifiers import is_valid_server_name

logger = logging.getLogger(__name__)


class FederationError(Exception):
    """A remote server could not be reached, or answered with an error."""

    def __init__(self, destination: str, message: str, code: int | None = None,
                 body: Any = None) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination
        self.code = code
        self.body = body

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if isinstance(self.body, dict) else None


class FederationResponseTooLarge(FederationError):
    """The answer was larger than the caller was willing to read."""


def federation_path(template: str, *params: str) -> str:
    """A path with each parameter percent-encoded as one segment."""
    return template.format(*(quote(p, safe="") for p in params))


class FederationClient:
    def __init__(
        self,
        server_name: str,
        signing_key: SigningKey,
        http: HttpClient,
        resolver: ServerResolver,
    ) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.http = http
        self.resolver = resolver

    async def get_json(
        self, destination: str, path: str, query: Mapping[str, Any] | None = None, *,
        signed: bool = True, timeout: float = 60.0,
    ) -> Any:
        return await self.request("GET", destination, path, query=query, signed=signed,
                                  timeout=timeout)

    async def put_json(self, destination: str, path: str, content: Any, **kwargs: Any) -> Any:
        return await self.request("PUT", destination, path, content=content, **kwargs)

    async def post_json(self, destination: str, path: str, content: Any, **kwargs: Any) -> Any:
        return await self.request("POST", destination, path, content=content, **kwargs)

    async def request(
        self,
        method: str,
        destination: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        content: Any | None = None,
        signed: bool = True,
        timeout: float = 60.0,
    ) -> Any:
        """Sends one request; the parsed JSON answer, or FederationError."""
        response = await self._send(
            method, destination, path, query=query, content=content, signed=signed,
            timeout=timeout,
        )
        answer = _json_or_none(response.body)
        if answer is None:
            raise FederationError(destination, f"{method} {path} did not answer JSON", 200)
        return answer

    async def get_raw(
        self, destination: str, path: str, query: Mapping[str, Any] | None = None, *,
        max_size: int, signed: bool = True, timeout: float = 60.0,
    ) -> tuple[Headers, bytes]:
        """A GET whose answer is not JSON (media): the 200 response's headers and body.

        A body over `max_size` bytes raises FederationResponseTooLarge; any other status,
        FederationError (with the error JSON, if the answer had one).
        """
        response = await self._send(
            "GET", destination, path, query=query, signed=signed, timeout=timeout,
            max_size=max_size,
        )
        return response.headers, response.body

    async def _send(
        self,
        method: str,
        destination: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        content: Any | None = None,
        signed: bool = True,
        timeout: float = 60.0,
        max_size: int | None = None,
    ) -> HttpResponse:
        """Sends one request; its 200 response, or FederationError."""
        if destination == self.server_name:
            raise FederationError(destination, "refusing to send a federation request to ourselves")
        if not is_valid_server_name(destination):
            raise FederationError(destination, "not a valid server name")
        target = path + (("?" + urlencode(query, doseq=True)) if query else "")
        try:
            where = await self.resolver.resolve(destination)
        except ValueError as e:
            raise FederationError(destination, str(e)) from None
        headers = {"Host": where.host_header}
        body = None
        if content is not None:
            body = json.dumps(content).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if signed:
            headers["Authorization"] = authorization_header(
                method, target, self.server_name, destination, self.signing_key, content
            )
        try:
            response = await self.http.request(
                method, _url(where, target), headers=headers, body=body, timeout=timeout,
                max_size=max_size,
            )
        except ResponseTooLarge as e:
            raise FederationResponseTooLarge(destination, str(e)) from None
        except HttpClientError as e:
            raise FederationError(destination, str(e)) from None
        if response.code != 200:
            raise FederationError(
                destination, f"{method} {path} answered {response.code}", response.code,
                _json_or_none(response.body),
            )
        return response


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def _url(where: Destination, target: str) -> str:
    host = f"[{where.tls_name}]" if ":" in where.tls_name else where.tls_name
    return f"https://{host}:{where.port}{target}"


def build_federation_client(
    config: Any, reactor: Any, signing_key: SigningKey
) -> FederationClient:
    """The client with the config's IP policy and certificate checks, real DNS and HTTPS."""
    policy = IPPolicy(tuple(config.ip_range_blacklist), tuple(config.ip_range_whitelist))
    tls_policy = None if config.federation_verify_certificates else UnverifiedTLSPolicy()
    srv_targets: dict[tuple[str, int], str] = {}
    http = HttpClient(
        reactor,
        policy,
        user_agent="homeserver",
        tls_policy=tls_policy,
        persistent=True,
        connect_host=lambda host, port: srv_targets.get((host, port), host),
    )
    well_known_http = HttpClient(reactor, policy, tls_policy=tls_policy, retries=0)

    async def well_known(hostname: str) -> WellKnownAnswer:
        url = f"https://{hostname}/.well-known/matrix/server"
        try:
            response = await well_known_http.request("GET", url, timeout=10, max_size=50_000,
                                                     max_redirects=5)
        except HttpClientError as e:
            logger.info("No well-known for %s: %s", hostname, e)
            return WellKnownAnswer(None, WELL_KNOWN_ERROR_TTL_S)
        if response.code != 200:
            return WellKnownAnswer(None, WELL_KNOWN_ERROR_TTL_S)
        try:
            server = parse_well_known(response.json())
        except HttpClientError:
            server = None
        ttl = cache_ttl(response.header("Cache-Control")) if server else WELL_KNOWN_ERROR_TTL_S
        return WellKnownAnswer(server, ttl)

    async def srv(name: str) -> list[tuple[str, int]]:
        targets = await _lookup_srv(name)
        hostname = name.split(".", 2)[2]  # after "_matrix-fed._tcp."
        for target, port in targets[:1]:
            srv_targets[(hostname, port)] = target
        return targets

    return FederationClient(config.server_name, signing_key, http, ServerResolver(well_known, srv))


_resolver: dns_client.Resolver | None = None


def _dns_resolver() -> dns_client.Resolver:
    # Built from /etc/resolv.conf once. Twisted's default resolver re-reads that file on a
    # timer, which leaves a pending call behind whenever the reactor stops.
    global _resolver
    if _resolver is None:
        servers = []
        try:
            with open("/etc/resolv.conf") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] == "nameserver":
                        servers.append((parts[1], 53))
        except OSError:
            pass
        _resolver = dns_client.Resolver(servers=servers or [("127.0.0.1", 53)])
    return _resolver


async def _lookup_srv(name: str) -> list[tuple[str, int]]:
    try:
        answers, _authority, _additional = await _dns_resolver().lookupService(name, timeout=(2, 5))
    except (DomainError, defer.TimeoutError):
        # Every DNS answer of "no such record" or a failing server: there is no SRV record.
        return []
    records = [a.payload for a in answers if a.type == dns.SRV]
    # Lowest priority first; among equals, highest weight first (no random weighting: one
    # deterministic target keeps connection reuse simple).
    records.sort(key=lambda r: (r.priority, -r.weight))
    return [(str(r.target).rstrip("."), r.port) for r in records if str(r.target) != "."]
