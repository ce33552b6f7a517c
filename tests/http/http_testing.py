"""A JsonResource on a real loopback listener, and a treq client for it, for the HTTP tests."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from treq.client import HTTPClient
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import WrappingFactory
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IResponse
from twisted.web.resource import IResource

from client_api.http import ApiRequest, JsonResource, Requester, Router, make_site
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from homeserver.ratelimit import RateLimiters

TOKENS = {
    "alice_token": ("@alice:test", False, False),
    "admin_token": ("@admin:test", True, False),
    "guest_token": ("@guest:test", False, True),
}


async def fake_authenticator(token: str, request: ApiRequest) -> Requester:
    if token not in TOKENS:
        raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown access token")
    user_id, is_admin, is_guest = TOKENS[token]
    digest = hashlib.sha256(token.encode()).hexdigest()
    return Requester(user_id, "DEVICE", is_admin, digest, is_guest=is_guest)


class CapturingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


class HttpTestCase(unittest.TestCase):
    """Starts servers on 127.0.0.1 and talks to them with treq over non-persistent connections."""

    def setUp(self) -> None:
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.client = HTTPClient(Agent(reactor, pool=self.pool))
        self.base = ""

    def start(
        self,
        router: Router,
        *,
        rate_limiters: RateLimiters | None = None,
        x_forwarded: bool = False,
        max_body_size: int = 1000,
        tree: Callable[[JsonResource], IResource] | None = None,
        site_factory: Callable[[IResource], Any] | None = None,
    ) -> JsonResource:
        resource = JsonResource(
            router,
            authenticator=fake_authenticator,
            clock=Clock(reactor),
            rate_limiters=rate_limiters,
            x_forwarded=x_forwarded,
            max_body_size=max_body_size,
        )
        root = tree(resource) if tree else resource
        if site_factory is not None:
            site = site_factory(root)
        else:
            site = make_site(root, max_body_size=max_body_size, x_forwarded=x_forwarded)
        # The wrapper lets cleanup wait for the server side of every connection to close, so
        # trial finds a clean reactor.
        self.wrapper = WrappingFactory(site)
        port = reactor.listenTCP(0, self.wrapper, interface="127.0.0.1")
        self.port_number = port.getHost().port
        self.base = f"http://127.0.0.1:{self.port_number}"
        self.addCleanup(self._wait_for_connections_to_close)
        self.addCleanup(port.stopListening)
        return resource

    async def _wait_for_connections_to_close(self) -> None:
        await self.pool.closeCachedConnections()
        for _ in range(200):
            if not self.wrapper.protocols:
                return
            await task.deferLater(reactor, 0.01, lambda: None)
        for protocol in list(self.wrapper.protocols):
            protocol.transport.abortConnection()

    async def request(
        self, method: str, path: str, *, json_body: Any = None, **kwargs: Any
    ) -> IResponse:
        if json_body is not None:
            kwargs["data"] = json.dumps(json_body).encode()
        return await self.client.request(method, self.base + path, **kwargs)

    async def json_of(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = await self.request(method, path, **kwargs)
        body = await response.content()
        return response.code, json.loads(body) if body else None

    def capture_log(self, name: str) -> CapturingHandler:
        handler = CapturingHandler()
        logger = logging.getLogger(name)
        old_level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)

        def restore() -> None:
            logger.removeHandler(handler)
            logger.setLevel(old_level)

        self.addCleanup(restore)
        return handler


class RawClient(Protocol):
    """Sends bytes as they are and collects the answer: for what treq will not send."""

    def __init__(self) -> None:
        self.data = b""
        self.closed: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(self.data)


async def raw_connect(port: int) -> RawClient:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    protocol = RawClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), protocol)
    return protocol


async def echo(request: ApiRequest) -> tuple[int, Any]:
    """Reports what the handler saw."""
    requester = request.requester
    return 200, {
        "method": request.method,
        "path": request.path,
        "params": request.path_params,
        "args": request.args,
        "user_id": requester.user_id if requester else None,
        "access_token": request.access_token,
        "client_ip": request.client_ip,
        "body_length": len(request.body),
    }
