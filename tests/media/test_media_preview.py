"""URL previews: off by default; when on, OpenGraph data of a page served on loopback (which
only an explicit whitelist lets the server fetch), with its image stored as media."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import reactor
from twisted.trial import unittest
from twisted.web import resource, server

from homeserver.media.preview import parse_html
from tests.asyncutil import async_test
from tests.media.media_testing import (
    CLIENT_MEDIA,
    MEDIA,
    MediaTestCase,
    image_size,
    json_body,
    make_image,
)

PAGE = b"""<!doctype html>
<html><head>
<title>  Fallback   title </title>
<meta property="og:title" content="A &amp; B">
<meta property="og:description" content="What the page is about">
<meta property="og:image" content="/logo.png">
<meta property="og:image:width" content="9999">
</head><body><p>Hello</p></body></html>"""
PLAIN_PAGE = "<html><head><title>Caf\xe9 du coin</title></head></html>".encode("latin-1")
LOGO = make_image("PNG", 40, 30)


class _Site(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bytes] = []

    def render_GET(self, request: server.Request) -> Any:
        self.seen.append(request.path)
        pages = {
            b"/page": (b"text/html; charset=utf-8", PAGE),
            b"/plain": (b"text/html; charset=iso-8859-1", PLAIN_PAGE),
            b"/logo.png": (b"image/png", LOGO),
            b"/notes.txt": (b"text/plain", b"just text"),
        }
        if request.path not in pages:
            request.setResponseCode(404)
            return b"nope"
        content_type, body = pages[request.path]
        request.setHeader(b"Content-Type", content_type)
        return body


class _PreviewTestCase(MediaTestCase):
    def setUp(self) -> Any:
        self.site = _Site()
        self.origin = reactor.listenTCP(0, server.Site(self.site), interface="127.0.0.1")
        self.addCleanup(self.origin.stopListening)
        return super().setUp()

    def page_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.origin.getHost().port}{path}"

    async def preview(self, url: str, prefix: str = CLIENT_MEDIA, token: str | None = None):
        return await self.raw(
            "GET", f"{prefix}/preview_url?url={quote(url, safe='')}", token=token or self.bob_token
        )


class PreviewDisabledTest(_PreviewTestCase):
    @async_test
    async def test_off_by_default(self) -> None:
        for prefix in (CLIENT_MEDIA, MEDIA):
            response = await self.preview(self.page_url("/page"), prefix)
            self.assertEqual(response.code, 404)
            self.assertEqual(json_body(response)["errcode"], "M_UNRECOGNIZED")
        self.assertEqual(self.site.seen, [])


class PreviewBlockedTest(_PreviewTestCase):
    config = {"url_preview_enabled": True}

    @async_test
    async def test_loopback_is_not_fetched_without_a_whitelist(self) -> None:
        response = await self.preview(self.page_url("/page"))
        self.assertEqual(response.code, 403)
        self.assertEqual(json_body(response)["errcode"], "M_FORBIDDEN")
        self.assertEqual(self.site.seen, [])


class PreviewTest(_PreviewTestCase):
    config = {"url_preview_enabled": True, "url_preview_ip_range_whitelist": ["127.0.0.1"]}

    @async_test
    async def test_opengraph_of_a_page(self) -> None:
        response = await self.preview(self.page_url("/page"))
        self.assertEqual(response.code, 200, response.body)
        og = json_body(response)
        self.assertEqual(og["og:title"], "A & B")
        self.assertEqual(og["og:description"], "What the page is about")
        # The image is fetched, stored as media, and described by what was actually fetched.
        self.assertTrue(og["og:image"].startswith(f"mxc://{self.server_name}/"))
        self.assertEqual(og["og:image:type"], "image/png")
        self.assertEqual(og["matrix:image:size"], len(LOGO))
        self.assertEqual((og["og:image:width"], og["og:image:height"]), (40, 30))
        image = await self.download(og["og:image"].rsplit("/", 1)[1])
        self.assertEqual(image.body, LOGO)

    @async_test
    async def test_previews_are_cached(self) -> None:
        first = json_body(await self.preview(self.page_url("/page")))
        fetched = list(self.site.seen)
        second = json_body(await self.preview(self.page_url("/page"), MEDIA, self.alice_token))
        self.assertEqual(second, first)
        self.assertEqual(self.site.seen, fetched)

    @async_test
    async def test_title_fallback_and_charset(self) -> None:
        og = json_body(await self.preview(self.page_url("/plain")))
        self.assertEqual(og, {"og:title": "Caf\xe9 du coin"})

    @async_test
    async def test_image_url(self) -> None:
        og = json_body(await self.preview(self.page_url("/logo.png")))
        self.assertEqual(og["og:image:type"], "image/png")
        downloaded = await self.download(og["og:image"].rsplit("/", 1)[1])
        self.assertEqual(image_size(downloaded.body), ("PNG", (40, 30)))

    @async_test
    async def test_other_content_gives_an_empty_preview(self) -> None:
        response = await self.preview(self.page_url("/notes.txt"))
        self.assertEqual((response.code, json_body(response)), (200, {}))

    @async_test
    async def test_errors(self) -> None:
        response = await self.preview(self.page_url("/missing"))
        self.assertEqual(response.code, 502)
        self.assertEqual(json_body(response)["errcode"], "M_UNKNOWN")
        response = await self.preview("file:///etc/passwd")
        self.assertEqual(response.code, 400)
        self.assertEqual(json_body(response)["errcode"], "M_INVALID_PARAM")
        response = await self.raw("GET", f"{CLIENT_MEDIA}/preview_url", token=self.bob_token)
        self.assertEqual(response.code, 400)
        self.assertEqual(json_body(response)["errcode"], "M_MISSING_PARAM")
        # A private address outside the whitelist stays blocked.
        response = await self.preview("http://10.0.0.1/")
        self.assertEqual(response.code, 403)


class ParseHtmlTest(unittest.TestCase):
    def test_opengraph_wins_over_fallbacks(self) -> None:
        og = parse_html(PAGE, "utf-8")
        self.assertEqual(og["og:title"], "A & B")
        self.assertEqual(og["og:image"], "/logo.png")

    def test_fallbacks(self) -> None:
        html = b'<title>\n Hi  there\n</title><meta name="description" content="About">'
        self.assertEqual(
            parse_html(html, None), {"og:title": "Hi there", "og:description": "About"}
        )

    def test_meta_charset(self) -> None:
        html = '<meta charset="windows-1252"><title>\u20ac</title>'.encode("cp1252")
        self.assertEqual(parse_html(html, None), {"og:title": "\u20ac"})

    def test_long_description_is_cut(self) -> None:
        html = b'<meta property="og:description" content="' + b"x" * 5000 + b'">'
        self.assertEqual(len(parse_html(html, None)["og:description"]), 500)

    def test_garbage(self) -> None:
        self.assertEqual(parse_html(b"\xff\xfe<<<>>>\x00", "no-such-charset"), {})
