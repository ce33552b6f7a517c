"""Request bodies: size limits (Content-Length and chunked), JSON parsing."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from twisted.web import server
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from twisted.web.resource import Resource
from zope.interface import implementer

from client_api.http import ApiRequest, HomeserverRequest, Router
from tests.http.http_testing import HttpTestCase, echo, raw_connect

LIMIT = 1000


@implementer(IBodyProducer)
class ChunkedProducer:
    """A body of unknown length, so the client sends it with chunked transfer encoding."""

    length = UNKNOWN_LENGTH

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def startProducing(self, consumer: Any) -> defer.Deferred[None]:
        for chunk in self.chunks:
            consumer.write(chunk)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class BodyLimitTests(HttpTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.calls: list[int] = []
        router = Router()
        router.add(["POST", "PUT", "GET"], "/echo", self.counting_echo, auth="none")
        router.add("POST", "/big", self.counting_echo, auth="none", max_body_size=10 * LIMIT)
        router.add("POST", "/small", self.counting_echo, auth="none", max_body_size=100)
        self.start(router, max_body_size=LIMIT)

    async def counting_echo(self, request: ApiRequest) -> tuple[int, Any]:
        self.calls.append(len(request.body))
        return await echo(request)

    async def assert_too_large(self, response: Any) -> None:
        self.assertEqual(response.code, 413)
        body = await response.json()
        self.assertEqual(body["errcode"], "M_TOO_LARGE")
        self.assertEqual(response.headers.getRawHeaders(b"Access-Control-Allow-Origin"), [b"*"])

    async def test_within_limit(self) -> None:
        code, body = await self.json_of("POST", "/echo", data=b"x" * LIMIT)
        self.assertEqual((code, body["body_length"]), (200, LIMIT))

    async def test_over_limit_with_content_length(self) -> None:
        response = await self.request("POST", "/echo", data=b"x" * (5 * LIMIT))
        await self.assert_too_large(response)
        self.assertEqual(self.calls, [])

    async def test_over_limit_chunked(self) -> None:
        producer = ChunkedProducer([b"x" * 400] * 10)
        response = await self.request("POST", "/echo", data=producer)
        await self.assert_too_large(response)
        self.assertEqual(self.calls, [])

    async def test_chunked_within_limit(self) -> None:
        producer = ChunkedProducer([b"y" * 300] * 3)
        code, body = await self.json_of("POST", "/echo", data=producer)
        self.assertEqual((code, body["body_length"]), (200, 900))

    async def test_route_override_larger(self) -> None:
        code, body = await self.json_of("POST", "/big", data=b"x" * (5 * LIMIT))
        self.assertEqual((code, body["body_length"]), (200, 5 * LIMIT))
        producer = ChunkedProducer([b"x" * LIMIT] * 5)
        code, body = await self.json_of("POST", "/big", data=producer)
        self.assertEqual((code, body["body_length"]), (200, 5 * LIMIT))

    async def test_route_override_smaller(self) -> None:
        await self.assert_too_large(await self.request("POST", "/small", data=b"x" * 101))
        await self.assert_too_large(
            await self.request("POST", "/small", data=ChunkedProducer([b"x" * 60] * 2))
        )

    async def test_connection_survives_a_drained_413(self) -> None:
        client = await raw_connect(self.port_number)
        client.transport.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n"
            + b"x" * 3000
            + b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = await client.closed
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data)
        self.assertIn(b"HTTP/1.1 200 ", data)
        self.assertEqual(self.calls, [0])

    async def test_huge_declared_length_is_refused_before_the_body(self) -> None:
        client = await raw_connect(self.port_number)
        client.transport.write(
            b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
        )
        data = await client.closed  # the server closes without waiting for the body
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), data)
        self.assertIn(b"Connection: close", head)
        self.assertEqual(json.loads(body)["errcode"], "M_TOO_LARGE")
        self.assertEqual(self.calls, [])

    async def test_huge_declared_length_with_some_body_sent(self) -> None:
        client = await raw_connect(self.port_number)
        client.transport.write(
            b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 500
        )
        data = await client.closed
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data)
        self.assertEqual(self.calls, [])

    async def test_expect_continue_gets_413_instead_of_100(self) -> None:
        client = await raw_connect(self.port_number)
        client.transport.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        data = await client.closed
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data)
        self.assertNotIn(b"100 Continue", data)

    async def test_endless_chunked_body_drops_the_connection(self) -> None:
        self.patch(HomeserverRequest, "drain_allowance", 2000)
        client = await raw_connect(self.port_number)
        chunk = b"%x\r\n%s\r\n" % (1000, b"x" * 1000)
        client.transport.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 5
        )
        # More than limit + allowance arrived: the server hangs up rather than keep reading.
        data = await client.closed
        self.assertEqual(data, b"")
        self.assertEqual(self.calls, [])

    async def test_get_body_is_not_given_to_handlers(self) -> None:
        code, body = await self.json_of("GET", "/echo", data=b"ignored")
        self.assertEqual((code, body["body_length"]), (200, 0))


class PlainSiteTests(HttpTestCase):
    """Under a plain twisted Site (no early refusal) the JsonResource still enforces limits."""

    async def test_limit_enforced_by_resource(self) -> None:
        router = Router()
        router.add("POST", "/_matrix/echo", echo, auth="none", max_body_size=10)

        def tree(resource: Any) -> Resource:
            root = Resource()
            root.putChild(b"_matrix", resource)
            return root

        self.start(router, tree=tree, site_factory=server.Site)
        code, body = await self.json_of("POST", "/_matrix/echo", data=b"x" * 11)
        self.assertEqual((code, body["errcode"]), (413, "M_TOO_LARGE"))
        code, body = await self.json_of("POST", "/_matrix/echo", data=b"x" * 10)
        self.assertEqual(code, 200)


class MountedResourceTests(HttpTestCase):
    async def test_route_limit_found_through_the_tree(self) -> None:
        router = Router()
        router.add("POST", "/_matrix/media/v3/upload", echo, auth="none", max_body_size=5000)
        router.add("POST", "/_matrix/client/v3/x", echo, auth="none")

        def tree(resource: Any) -> Resource:
            root = Resource()
            root.putChild(b"_matrix", resource)
            return root

        self.start(router, tree=tree, max_body_size=LIMIT)
        code, _ = await self.json_of("POST", "/_matrix/media/v3/upload", data=b"x" * 4000)
        self.assertEqual(code, 200)
        code, _ = await self.json_of("POST", "/_matrix/client/v3/x", data=b"x" * 4000)
        self.assertEqual(code, 413)


async def parse_json(request: ApiRequest) -> tuple[int, Any]:
    return 200, {"json": request.json(), "same": request.json() is request.json()}


class JsonBodyTests(HttpTestCase):
    def setUp(self) -> None:
        super().setUp()
        router = Router()
        router.add("POST", "/json", parse_json, auth="none")
        self.start(router)

    async def test_object(self) -> None:
        code, body = await self.json_of("POST", "/json", data=b'{"a": [1, "\xc3\xa9"]}')
        self.assertEqual((code, body), (200, {"json": {"a": [1, "é"]}, "same": True}))

    async def test_invalid_json_is_not_json(self) -> None:
        for data in (b"{nope", b"", b"\xff\xfe"):
            code, body = await self.json_of("POST", "/json", data=data)
            self.assertEqual((code, body["errcode"]), (400, "M_NOT_JSON"), data)

    async def test_array_is_bad_json(self) -> None:
        code, body = await self.json_of("POST", "/json", data=b"[1, 2]")
        self.assertEqual((code, body["errcode"]), (400, "M_BAD_JSON"))
