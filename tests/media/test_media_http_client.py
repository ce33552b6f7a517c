"""The outbound HTTP client: the IP blocklist (checked on resolved addresses), whitelist,
redirects, bounded responses, timeouts and retries, against a real server on loopback."""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHostnameResolver
from twisted.trial import unittest
from twisted.web import resource, server
from zope.interface import implementer

from homeserver.config import DEFAULT_IP_RANGE_BLACKLIST
from homeserver.http_client import (
    BlockedAddress,
    ConnectionFailed,
    HttpClient,
    InvalidUrl,
    IPPolicy,
    RequestTimedOut,
    ResponseTooLarge,
)
from tests.asyncutil import async_test

BLACKLIST = tuple(ipaddress.ip_network(n) for n in DEFAULT_IP_RANGE_BLACKLIST)
LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)


class _Origin(resource.Resource):
    """The server being fetched from; records what reached it."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bytes, bytes, bytes | None]] = []
        self.authorization: list[bytes | None] = []
        self.drops_left = 0

    def render(self, request: server.Request) -> Any:
        self.seen.append((request.method, request.path, request.getHeader(b"host")))
        self.authorization.append(request.getHeader(b"authorization"))
        path = request.path
        if path == b"/flaky" and self.drops_left > 0:
            self.drops_left -= 1
            request.transport.abortConnection()
            return server.NOT_DONE_YET
        if path == b"/big":
            return b"x" * 100_000
        if path == b"/big-chunked":
            for _ in range(100):
                request.write(b"y" * 1000)  # no Content-Length: sent chunked
            request.finish()
            return server.NOT_DONE_YET
        if path == b"/slow":
            return server.NOT_DONE_YET
        if path == b"/to-private":
            request.setResponseCode(302)
            request.setHeader(b"Location", b"http://10.0.0.1/secret")
            return b""
        if path == b"/to-other-host":
            port = request.getHost().port
            request.setResponseCode(307)
            request.setHeader(b"Location", b"http://other.test:%d/ok" % port)
            return b""
        if path == b"/to-ok":
            request.setResponseCode(301)
            request.setHeader(b"Location", b"/ok")
            return b""
        return b"hello"


@implementer(IHostnameResolver)
class FakeResolver:
    """DNS as the test says: name -> addresses."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    def resolveHostName(
        self,
        receiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        receiver.resolutionBegan(None)
        for address in self.answers.get(hostName, []):
            receiver.addressResolved(IPv4Address("TCP", address, portNumber))
        receiver.resolutionComplete()
        return None


class HttpClientTest(unittest.TestCase):
    def setUp(self) -> None:
        self.origin = _Origin()
        self.port = reactor.listenTCP(0, server.Site(self.origin), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.port_number = self.port.getHost().port

    def client(
        self, whitelist: tuple = (), answers: dict | None = None, **kwargs: Any
    ) -> HttpClient:
        return HttpClient(
            reactor,
            IPPolicy(BLACKLIST, whitelist),
            resolver=FakeResolver(answers or {}),
            retry_backoff=0.01,
            **kwargs,
        )

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port_number}{path}"

    @async_test
    async def test_loopback_is_refused_by_default(self) -> None:
        with self.assertRaises(BlockedAddress):
            await self.client().request("GET", self.url("/ok"))
        self.assertEqual(self.origin.seen, [])

    @async_test
    async def test_private_address_is_refused(self) -> None:
        for host in ("10.1.2.3", "192.168.0.1", "169.254.169.254", "[::1]", "[fe80::1]"):
            with self.assertRaises(BlockedAddress, msg=host):
                await self.client().request("GET", f"http://{host}:{self.port_number}/")

    @async_test
    async def test_whitelisted_loopback_is_allowed(self) -> None:
        response = await self.client(LOOPBACK_ONLY).request("GET", self.url("/ok"))
        self.assertEqual((response.code, response.body), (200, b"hello"))

    @async_test
    async def test_host_names_are_judged_by_what_they_resolve_to(self) -> None:
        answers = {"rebind.test": ["127.0.0.1"]}
        with self.assertRaises(BlockedAddress):
            await self.client(answers=answers).request("GET", self.url("/ok", "rebind.test"))
        self.assertEqual(self.origin.seen, [])
        response = await self.client(LOOPBACK_ONLY, answers).request(
            "GET", self.url("/ok", "rebind.test")
        )
        self.assertEqual(response.body, b"hello")
        # The name still goes in the Host header; only the connection uses the checked address.
        self.assertEqual(self.origin.seen[-1][2], f"rebind.test:{self.port_number}".encode())

    @async_test
    async def test_blocked_addresses_of_a_name_are_skipped(self) -> None:
        # 127.0.0.2 is blocked (not whitelisted): only the allowed address is connected to.
        answers = {"mixed.test": ["127.0.0.2", "127.0.0.1"]}
        response = await self.client(LOOPBACK_ONLY, answers).request(
            "GET", self.url("/ok", "mixed.test")
        )
        self.assertEqual(response.body, b"hello")

    @async_test
    async def test_redirect_to_a_private_address_is_refused(self) -> None:
        with self.assertRaises(BlockedAddress):
            await self.client(LOOPBACK_ONLY).request(
                "GET", self.url("/to-private"), max_redirects=3
            )

    @async_test
    async def test_redirects_are_followed_only_when_asked(self) -> None:
        client = self.client(LOOPBACK_ONLY)
        response = await client.request("GET", self.url("/to-ok"))
        self.assertEqual(response.code, 301)
        response = await client.request("GET", self.url("/to-ok"), max_redirects=1)
        self.assertEqual((response.code, response.body), (200, b"hello"))
        self.assertEqual(response.url, self.url("/ok"))

    @async_test
    async def test_credentials_are_not_sent_to_another_host(self) -> None:
        client = self.client(LOOPBACK_ONLY, {"other.test": ["127.0.0.1"]})
        response = await client.request(
            "GET",
            self.url("/to-other-host"),
            headers={"Authorization": "X-Matrix secret"},
            max_redirects=1,
        )
        self.assertEqual(response.body, b"hello")
        self.assertEqual(self.origin.authorization, [b"X-Matrix secret", None])

    @async_test
    async def test_response_size_is_bounded(self) -> None:
        client = self.client(LOOPBACK_ONLY)
        for path in ("/big", "/big-chunked"):
            with self.assertRaises(ResponseTooLarge, msg=path):
                await client.request("GET", self.url(path), max_size=50_000)
            response = await client.request("GET", self.url(path), max_size=100_000)
            self.assertEqual(len(response.body), 100_000)

    @async_test
    async def test_timeout(self) -> None:
        with self.assertRaises(RequestTimedOut):
            await self.client(LOOPBACK_ONLY).request("GET", self.url("/slow"), timeout=0.3)

    @async_test
    async def test_idempotent_requests_are_retried(self) -> None:
        self.origin.drops_left = 1
        response = await self.client(LOOPBACK_ONLY).request("GET", self.url("/flaky"), retries=1)
        self.assertEqual(response.body, b"hello")
        self.assertEqual(len(self.origin.seen), 2)

    @async_test
    async def test_post_is_not_retried_once_sent(self) -> None:
        self.origin.drops_left = 1
        with self.assertRaises(ConnectionFailed):
            await self.client(LOOPBACK_ONLY).request(
                "POST", self.url("/flaky"), body=b"{}", retries=2
            )
        self.assertEqual(len(self.origin.seen), 1)

    @async_test
    async def test_invalid_urls(self) -> None:
        for url in ("ftp://example.com/", "http://", "example.com", "http://x:99999/"):
            with self.assertRaises(InvalidUrl, msg=url):
                await self.client().request("GET", url)


class IPPolicyTest(unittest.TestCase):
    def test_default_blacklist(self) -> None:
        policy = IPPolicy(BLACKLIST)
        for blocked in ("127.0.0.1", "10.0.0.1", "172.16.5.4", "100.64.0.1", "0.0.0.0", "::1"):
            self.assertFalse(policy.allows(blocked), blocked)
        for allowed in ("8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"):
            self.assertTrue(policy.allows(allowed), allowed)

    def test_ipv4_mapped_ipv6_is_judged_as_ipv4(self) -> None:
        self.assertFalse(IPPolicy(BLACKLIST).allows("::ffff:127.0.0.1"))
        self.assertFalse(IPPolicy(BLACKLIST).allows("::ffff:10.0.0.1"))
        self.assertTrue(IPPolicy(BLACKLIST, LOOPBACK_ONLY).allows("::ffff:127.0.0.1"))

    def test_zone_ids_and_garbage(self) -> None:
        self.assertFalse(IPPolicy(BLACKLIST).allows("fe80::1%eth0"))
        self.assertFalse(IPPolicy(()).allows("not-an-ip"))

    def test_whitelist_wins(self) -> None:
        policy = IPPolicy(BLACKLIST, (ipaddress.ip_network("10.1.0.0/16"),))
        self.assertTrue(policy.allows("10.1.2.3"))
        self.assertFalse(policy.allows("10.2.0.1"))
