"""The bundled web client served at / beside the API (client_api/web_client.py)."""

from __future__ import annotations

import http.client
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import treq
from twisted.internet import defer, threads
from twisted.trial import unittest
from twisted.web.http_headers import Headers

from client_api import web_client
from tests.asyncutil import async_test
from tests.harness import TestServer

INDEX = b"<!doctype html><title>app</title><div id=root></div>"
SCRIPT = b"console.log('app')"


class _WebClientCase(unittest.TestCase):
    """A TestServer whose listener serves the web client from a dist directory of the test's."""

    build = True

    def setUp(self) -> defer.Deferred[object]:
        self._tmp = tempfile.TemporaryDirectory(prefix="hs-web-")
        self.addCleanup(self._tmp.cleanup)
        root = Path(self._tmp.name)
        self.dist = root / "dist"
        if self.build:
            (self.dist / "assets").mkdir(parents=True)
            (self.dist / "icons").mkdir()
            (self.dist / "index.html").write_bytes(INDEX)
            (self.dist / "sw.js").write_bytes(b"self.addEventListener('fetch', () => {});")
            (self.dist / "manifest.webmanifest").write_bytes(b'{"name": "Chat"}')
            (self.dist / "assets" / "index-abc123.js").write_bytes(SCRIPT)
            (self.dist / "assets" / "index-abc123.css").write_bytes(b"body{}")
            (self.dist / "icons" / "icon-192.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
        # A file beside dist that no request may reach.
        (root / "secret.txt").write_bytes(b"not for the web")
        self.patch(web_client, "DIST_DIR", self.dist)
        self.server = TestServer()
        self.addCleanup(lambda: defer.ensureDeferred(self.server.stop()))
        return defer.ensureDeferred(self.server.start())

    async def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, Headers]:
        response = await treq.request(
            "GET",
            self.server.base_url + path,
            headers={k: [v] for k, v in (headers or {}).items()},
            persistent=False,
        )
        return response.code, await response.content(), response.headers

    async def raw_get(self, path: str) -> tuple[int, bytes]:
        """A request with the path exactly as given: clients normalize `..` away, attackers not."""
        address = urlsplit(self.server.base_url)

        def fetch() -> tuple[int, bytes]:
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            try:
                connection.request("GET", path)
                answer = connection.getresponse()
                return answer.status, answer.read()
            finally:
                connection.close()

        return await threads.deferToThread(fetch)


def header(headers: Headers, name: str) -> str | None:
    values = headers.getRawHeaders(name)
    return values[0] if values else None


class WebClientTests(_WebClientCase):
    @async_test
    async def test_root_serves_index_html(self) -> None:
        code, body, headers = await self.get("/")
        self.assertEqual((code, body), (200, INDEX))
        self.assertEqual(header(headers, "Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(header(headers, "Cache-Control"), "no-cache")

    @async_test
    async def test_assets_get_their_content_type_and_long_caching(self) -> None:
        code, body, headers = await self.get("/assets/index-abc123.js")
        self.assertEqual((code, body), (200, SCRIPT))
        self.assertEqual(header(headers, "Content-Type"), "text/javascript; charset=utf-8")
        self.assertEqual(header(headers, "Cache-Control"), "public, max-age=31536000, immutable")
        self.assertEqual(header(headers, "X-Content-Type-Options"), "nosniff")
        for path, content_type in (
            ("/assets/index-abc123.css", "text/css; charset=utf-8"),
            ("/manifest.webmanifest", "application/manifest+json"),
            ("/icons/icon-192.png", "image/png"),
            ("/sw.js", "text/javascript; charset=utf-8"),
        ):
            code, _, headers = await self.get(path)
            self.assertEqual((code, header(headers, "Content-Type")), (200, content_type), path)
        # The service worker and the manifest must be revalidated, or updates are never seen.
        for path in ("/sw.js", "/manifest.webmanifest"):
            _, _, headers = await self.get(path)
            self.assertEqual(header(headers, "Cache-Control"), "no-cache", path)

    @async_test
    async def test_unknown_paths_fall_back_to_index_html(self) -> None:
        for path in ("/rooms/!abc:example.org", "/settings", "/assets/", "/icons"):
            code, body, _ = await self.get(path)
            self.assertEqual((code, body), (200, INDEX), path)
        # A missing file is a 404, not the app: a script tag must not receive HTML.
        code, body, _ = await self.get("/assets/gone-123.js")
        self.assertEqual(code, 404)
        self.assertNotEqual(body, INDEX)

    @async_test
    async def test_api_is_untouched(self) -> None:
        code, body, headers = await self.get("/_matrix/client/versions")
        self.assertEqual(code, 200)
        self.assertIn(b'"versions"', body)
        self.assertEqual(header(headers, "Content-Type"), "application/json")
        # Unknown API paths keep their JSON 404, under every reserved prefix.
        for path in ("/_matrix/client/v3/nothing", "/_synapse/nothing", "/.well-known/nothing"):
            code, body, _ = await self.get(path)
            self.assertEqual(code, 404, path)
            self.assertIn(b"M_UNRECOGNIZED", body, path)
        code, body, _ = await self.get("/health")
        self.assertEqual((code, body), (200, b"OK"))

    @async_test
    async def test_other_methods_stay_with_the_api(self) -> None:
        response = await treq.request(
            "POST", self.server.base_url + "/", data=b"{}", persistent=False
        )
        self.assertEqual(response.code, 404)
        self.assertIn(b"M_UNRECOGNIZED", await response.content())

    @async_test
    async def test_head_and_conditional_requests(self) -> None:
        response = await treq.request("HEAD", self.server.base_url + "/", persistent=False)
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response.headers, "Content-Length"), str(len(INDEX)))
        self.assertEqual(await response.content(), b"")
        etag = header(response.headers, "ETag")
        self.assertIsNotNone(etag)
        code, body, _ = await self.get("/", {"If-None-Match": etag or ""})
        self.assertEqual((code, body), (304, b""))

    @async_test
    async def test_traversal_is_refused(self) -> None:
        for path in (
            "/../secret.txt",
            "/assets/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
            "/..%5csecret.txt",
        ):
            code, body = await self.raw_get(path)
            self.assertNotIn(b"not for the web", body, path)
            self.assertIn(code, (400, 404), path)

    @async_test
    async def test_symlinks_out_of_dist_are_refused(self) -> None:
        (self.dist / "link.txt").symlink_to(self.dist.parent / "secret.txt")
        code, body, _ = await self.get("/link.txt")
        self.assertEqual(code, 404)
        self.assertNotIn(b"not for the web", body)

    @async_test
    async def test_no_directory_listing(self) -> None:
        code, body, _ = await self.get("/assets/")
        self.assertEqual((code, body), (200, INDEX))
        self.assertNotIn(b"index-abc123.js", body)


class NotBuiltTests(_WebClientCase):
    build = False

    @async_test
    async def test_root_says_the_client_was_not_built(self) -> None:
        code, body, headers = await self.get("/")
        self.assertEqual(code, 200)
        self.assertEqual(header(headers, "Content-Type"), "text/html; charset=utf-8")
        self.assertIn(b"web client was not built", body)
        self.assertIn(b"npm ci", body)
        code, _, _ = await self.get("/assets/index-abc123.js")
        self.assertEqual(code, 404)

    @async_test
    async def test_api_still_answers(self) -> None:
        code, body, _ = await self.get("/_matrix/client/versions")
        self.assertEqual(code, 200)
        self.assertIn(b'"versions"', body)
