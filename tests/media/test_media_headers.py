"""Download headers that keep uploaded content from running as a page, and the legacy
unauthenticated endpoints (frozen for new media unless enable_authenticated_media is off)."""

from __future__ import annotations

from dataclasses import replace

from tests.asyncutil import async_test
from tests.media.media_testing import MEDIA, MediaTestCase, json_body, make_image

SCRIPTED = {
    "text/html": b"<html><script>alert(document.cookie)</script></html>",
    "image/svg+xml": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "application/javascript": b"alert(1)",
}


class DownloadHeadersTest(MediaTestCase):
    @async_test
    async def test_html_and_svg_are_sandboxed_attachments(self) -> None:
        for content_type, data in SCRIPTED.items():
            media_id = await self.upload(data, content_type, filename="page")
            response = await self.download(media_id)
            self.assertEqual(response.code, 200)
            self.assertEqual(response.body, data)
            # The type stays as uploaded; it is what makes it an attachment.
            self.assertEqual(response.header("Content-Type"), content_type)
            self.assertEqual(
                response.header("Content-Disposition"), 'attachment; filename="page"', content_type
            )
            csp = response.header("Content-Security-Policy") or ""
            directives = [d.strip() for d in csp.split(";")]
            self.assertIn("sandbox", directives)
            self.assertIn("script-src 'none'", directives)
            self.assertIn("default-src 'none'", directives)
            self.assertEqual(response.header("X-Content-Type-Options"), "nosniff")
            self.assertEqual(response.header("Cross-Origin-Resource-Policy"), "cross-origin")

    @async_test
    async def test_safe_types_are_inline(self) -> None:
        cases = {
            "image/png": make_image("PNG", 4, 4),
            "text/plain; charset=utf-8": b"hi",
            "video/mp4": b"\x00\x00\x00\x18ftypmp42",
            "audio/ogg": b"OggS",
        }
        for content_type, data in cases.items():
            media_id = await self.upload(data, content_type, filename="f")
            response = await self.download(media_id)
            self.assertEqual(response.header("Content-Disposition"), 'inline; filename="f"')
            self.assertIn("sandbox", response.header("Content-Security-Policy") or "")

    @async_test
    async def test_cors_lets_web_clients_read_media(self) -> None:
        media_id = await self.upload(b"x", "text/plain")
        response = await self.download(media_id)
        self.assertEqual(response.header("Access-Control-Allow-Origin"), "*")

    @async_test
    async def test_json_upload_is_served_as_bytes(self) -> None:
        # The JSON API's own headers must not leak onto media that happens to be JSON.
        media_id = await self.upload(b'{"a": 1}', "application/json")
        response = await self.download(media_id)
        self.assertEqual(response.body, b'{"a": 1}')
        self.assertIn("max-age", response.header("Cache-Control") or "")


class FrozenLegacyDownloadTest(MediaTestCase):
    """enable_authenticated_media defaults to true: new media only on the v1 endpoints."""

    @async_test
    async def test_legacy_endpoints_do_not_serve_new_media(self) -> None:
        media_id = await self.upload(make_image("PNG", 64, 64), "image/png")
        for path in (
            f"{MEDIA}/download/{self.server_name}/{media_id}",
            f"{MEDIA}/download/{self.server_name}/{media_id}/x.png",
            f"{MEDIA}/thumbnail/{self.server_name}/{media_id}?width=32&height=32",
        ):
            response = await self.raw("GET", path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(json_body(response)["errcode"], "M_NOT_FOUND")
        self.assertEqual((await self.download(media_id)).code, 200)


class UnfrozenLegacyDownloadTest(MediaTestCase):
    config = {"enable_authenticated_media": False}

    @async_test
    async def test_legacy_endpoints_serve_without_a_token(self) -> None:
        data = make_image("PNG", 64, 64)
        media_id = await self.upload(data, "image/png", filename="pic.png")
        for version in ("v3", "r0"):
            response = await self.raw(
                "GET", f"/_matrix/media/{version}/download/{self.server_name}/{media_id}"
            )
            self.assertEqual(response.code, 200)
            self.assertEqual(response.body, data)
            self.assertEqual(response.header("Content-Disposition"), 'inline; filename="pic.png"')
            self.assertIn("sandbox", response.header("Content-Security-Policy") or "")
        response = await self.raw(
            "GET", f"{MEDIA}/thumbnail/{self.server_name}/{media_id}?width=32&height=32&method=crop"
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header("Content-Type"), "image/png")

    @async_test
    async def test_media_uploaded_while_unfrozen_stays_on_legacy_after_freezing(self) -> None:
        media_id = await self.upload(b"old", "text/plain")
        # Freeze: restart with the option on; old media keeps working, new media does not.
        config = self.server.config
        self.server.config = replace(
            config, media=replace(config.media, enable_authenticated_media=True)
        )
        await self.server.restart()
        old = await self.raw("GET", f"{MEDIA}/download/{self.server_name}/{media_id}")
        self.assertEqual(old.code, 200)
        new_id = await self.upload(b"new", "text/plain")
        new = await self.raw("GET", f"{MEDIA}/download/{self.server_name}/{new_id}")
        self.assertEqual(new.code, 404)

    @async_test
    async def test_allow_remote_false_refuses_remote_media(self) -> None:
        response = await self.raw("GET", f"{MEDIA}/download/other.example/abc?allow_remote=false")
        self.assertEqual(response.code, 404)
        self.assertEqual(json_body(response)["errcode"], "M_NOT_FOUND")
