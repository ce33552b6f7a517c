"""Query helpers, client IP behind proxies, the access log, and cancellation on disconnect."""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import defer
from twisted.web.client import ResponseNeverReceived
from twisted.web.resource import Resource

from client_api.http import ApiRequest, Router, make_site
from tests.http.http_testing import HttpTestCase, echo, raw_connect


async def query_handler(request: ApiRequest) -> tuple[int, Any]:
    return 200, {
        "s": request.query_str("s", "default"),
        "i": request.query_int("i", 7, minimum=0, maximum=100),
        "b": request.query_bool("b"),
        "l": request.query_list("l"),
    }


async def required_handler(request: ApiRequest) -> tuple[int, Any]:
    return 200, {
        "s": request.query_str("s", required=True),
        "i": request.query_int("i", required=True),
    }


class QueryTests(HttpTestCase):
    def setUp(self) -> None:
        super().setUp()
        router = Router()
        router.add("GET", "/q", query_handler, auth="none")
        router.add("GET", "/required", required_handler, auth="none")
        self.start(router)

    async def test_defaults(self) -> None:
        code, body = await self.json_of("GET", "/q")
        self.assertEqual(body, {"s": "default", "i": 7, "b": False, "l": []})

    async def test_values_are_decoded(self) -> None:
        code, body = await self.json_of("GET", "/q?s=%C3%A9+x%2By&i=-0&b=true&l=a&l=&l=c")
        self.assertEqual(code, 200)
        self.assertEqual(body, {"s": "é x+y", "i": 0, "b": True, "l": ["a", "", "c"]})

    async def test_missing_required(self) -> None:
        code, body = await self.json_of("GET", "/required?i=1")
        self.assertEqual((code, body["errcode"]), (400, "M_MISSING_PARAM"))
        code, body = await self.json_of("GET", "/required?s=x")
        self.assertEqual((code, body["errcode"]), (400, "M_MISSING_PARAM"))

    async def test_invalid_values(self) -> None:
        for query in ("i=abc", "i=1.5", "i=+1", "i=%201", "i=101", "i=-1", "i=" + "9" * 30):
            code, body = await self.json_of("GET", "/q?" + query)
            self.assertEqual((code, body["errcode"]), (400, "M_INVALID_PARAM"), query)
        for query in ("b=1", "b=yes", "b=True", "b="):
            code, body = await self.json_of("GET", "/q?" + query)
            self.assertEqual((code, body["errcode"]), (400, "M_INVALID_PARAM"), query)

    async def test_invalid_utf8_query(self) -> None:
        code, body = await self.json_of("GET", "/q?s=%FF")
        self.assertEqual((code, body["errcode"]), (400, "M_INVALID_PARAM"))


class ClientIpTests(HttpTestCase):
    async def client_ip_seen(self, x_forwarded: bool) -> str:
        router = Router()
        router.add("GET", "/ip", echo, auth="none")
        self.start(router, x_forwarded=x_forwarded)
        _, body = await self.json_of(
            "GET", "/ip", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
        )
        return body["client_ip"]

    async def test_forwarded_for_honoured_when_configured(self) -> None:
        self.assertEqual(await self.client_ip_seen(True), "203.0.113.7")

    async def test_forwarded_for_ignored_otherwise(self) -> None:
        self.assertEqual(await self.client_ip_seen(False), "127.0.0.1")


LINE = re.compile(r"^(\S+) (\S+) (\S+) (\S+) (\d{3}) (\d+)B (\d+)ms$")


class AccessLogTests(HttpTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.started: defer.Deferred[None] = defer.Deferred()
        self.cancelled: defer.Deferred[str] = defer.Deferred()
        router = Router()
        router.add("GET", "/me", echo)
        router.add("GET", "/wait", self.wait_forever, auth="none")
        self.log = self.capture_log("homeserver.access")
        self.http_log = self.capture_log("client_api.http")
        self.start(router, x_forwarded=True, max_body_size=100)

    async def wait_forever(self, request: ApiRequest) -> tuple[int, Any]:
        self.started.callback(None)
        try:
            await defer.Deferred()  # a long-poll that nothing wakes
        except defer.CancelledError:
            self.cancelled.callback("cancelled")
            raise
        return 200, {}

    def lines(self) -> list[re.Match[str]]:
        matches = [LINE.match(m) for m in self.log.messages()]
        self.assertTrue(all(matches), self.log.messages())
        return [m for m in matches if m]

    async def test_one_line_per_request_without_token(self) -> None:
        response = await self.request(
            "GET",
            "/me?x=1&access_token=alice_token&y=2",
            headers={"X-Forwarded-For": "198.51.100.2"},
        )
        body = await response.content()
        (line,) = self.lines()
        self.assertEqual(
            line.groups()[:6],
            ("198.51.100.2", "@alice:test", "GET", "/me?x=1&y=2", "200", str(len(body))),
        )
        self.assertNotIn("alice_token", "\n".join(self.log.messages()))

    async def test_errors_and_refusals_are_logged(self) -> None:
        await self.request("GET", "/nowhere?access_token=alice_token")
        await self.request("POST", "/me", data=b"x" * 200)
        lines = self.lines()
        self.assertEqual([(m[1], m[2], m[4], m[5]) for m in lines], [
            ("127.0.0.1", "-", "/nowhere", "404"),
            ("127.0.0.1", "-", "/me", "413"),
        ])  # fmt: skip

    async def test_early_refusal_is_logged(self) -> None:
        client = await raw_connect(self.port_number)
        client.transport.write(
            b"PUT /me?access_token=alice_token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 999999999\r\n\r\n"
        )
        await client.closed
        (line,) = self.lines()
        self.assertEqual((line[3], line[4], line[5]), ("PUT", "/me", "413"))

    async def test_disconnect_cancels_the_handler(self) -> None:
        request = defer.ensureDeferred(self.request("GET", "/wait"))
        await self.started
        request.cancel()  # the client gives up and closes the connection
        self.assertEqual(await self.cancelled, "cancelled")
        self.assertFailure(request, ResponseNeverReceived, defer.CancelledError)
        await request
        # Logged as a disconnect; nothing at error level.
        (line,) = self.lines()
        self.assertEqual((line[4], line[5]), ("/wait", "499"))
        self.assertEqual([r for r in self.http_log.records if r.levelname == "ERROR"], [])

    def test_twisted_access_log_is_off(self) -> None:
        site = make_site(Resource(), max_body_size=1, x_forwarded=False)
        site.startFactory()
        self.assertIsNone(site._logFile)
        site.stopFactory()


def test_loggable_uri_strips_every_spelling_of_the_token() -> None:
    from client_api.http_site import loggable_uri

    assert loggable_uri(b"/a?access_token=s&b=1") == "/a?b=1"
    assert loggable_uri(b"/a?access%5Ftoken=s&access_token&b=1") == "/a?b=1"
    assert loggable_uri(b"/a?access_token=s") == "/a"
    assert loggable_uri(b"/a\n\xff") == "/a\\n\\xff"
