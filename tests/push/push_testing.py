"""A recording HTTPS receiver on loopback (a push gateway, or a browser's push service) whose
certificate the homeserver is made to trust, as a real one's would be.

The certificate is written to a CA bundle file and `SSL_CERT_FILE` points at it for the test,
which is how an operator adds a private CA to the system trust the pushers use.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, reactor, ssl
from twisted.web import resource, server

from tests.federation.federation_testing import write_self_signed_cert

# (status, JSON body[, headers]) the receiver answers with, given the request's path and body.
Responder = Callable[[str, bytes], tuple[Any, ...]]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Recorder(resource.Resource):
    isLeaf = True

    def __init__(self, receiver: HttpsReceiver) -> None:
        super().__init__()
        self.receiver = receiver

    def render_POST(self, request: Any) -> bytes:
        body = request.content.read()
        path = request.path.decode("utf-8")
        headers = {k.decode().lower(): v[0].decode() for k, v in
                   request.requestHeaders.getAllRawHeaders()}
        self.receiver.received.append(Received(path, headers, body))
        status, answer, *headers = self.receiver.responder(path, body)
        for name, value in (headers[0] if headers else {}).items():
            request.setHeader(name.encode(), value.encode())
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        waiters, self.receiver.waiters = self.receiver.waiters, []
        for waiter in waiters:
            reactor.callLater(0, _fire, waiter)
        return json.dumps(answer).encode("utf-8")


def _fire(waiter: defer.Deferred) -> None:
    if not waiter.called:
        waiter.callback(None)


@dataclass
class HttpsReceiver:
    """Listens on 127.0.0.1 with a certificate for localhost; URLs use "localhost"."""

    responder: Responder = lambda path, body: (200, {})  # noqa: E731
    received: list[Received] = field(default_factory=list)
    waiters: list[defer.Deferred] = field(default_factory=list)

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="hs-receiver-")
        self.cert_path, key_path = write_self_signed_cert(self._tmp.name, "localhost",
                                                         verifiable=True)
        with open(self.cert_path, "rb") as f:
            cert_pem = f.read()
        with open(key_path, "rb") as f:
            key_pem = f.read()
        options = ssl.PrivateCertificate.loadPEM(cert_pem + key_pem).options()
        self.port = reactor.listenSSL(0, server.Site(_Recorder(self)), options,
                                      interface="127.0.0.1")
        self._old_cert_file = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = self.cert_path

    async def stop(self) -> None:
        if self._old_cert_file is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = self._old_cert_file
        await self.port.stopListening()
        self._tmp.cleanup()

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port.getHost().port}{path}"

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        """Until `count` requests arrived (fails after `timeout_s`)."""
        deadline = reactor.seconds() + timeout_s
        while len(self.received) < count:
            if reactor.seconds() > deadline:
                raise AssertionError(f"only {len(self.received)} of {count} requests arrived")
            waiter: defer.Deferred = defer.Deferred()
            self.waiters.append(waiter)
            timer = reactor.callLater(0.2, _fire, waiter)
            await waiter
            if timer.active():
                timer.cancel()
        return self.received[:count]
