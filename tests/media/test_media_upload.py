"""Uploads and downloads: bytes in equal bytes out, content stored once, the size limit."""

from __future__ import annotations

import hashlib
import os

from tests.asyncutil import async_test
from tests.media.media_testing import (
    CLIENT_MEDIA,
    MEDIA,
    ChunkedBody,
    MediaTestCase,
    files_under,
    json_body,
)

LIMIT = 100 * 1024


class UploadDownloadTest(MediaTestCase):
    @async_test
    async def test_upload_then_authenticated_download_is_byte_identical(self) -> None:
        data = os.urandom(200_000)
        media_id = await self.upload(data, "application/pdf", filename="report.pdf")
        response = await self.download(media_id, token=self.bob_token)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, data)
        self.assertEqual(response.header("Content-Type"), "application/pdf")
        self.assertEqual(
            response.header("Content-Disposition"), 'attachment; filename="report.pdf"'
        )

    @async_test
    async def test_file_name_in_the_path_overrides_the_uploaded_one(self) -> None:
        media_id = await self.upload(b"hello", "text/plain", filename="a.txt")
        response = await self.download(media_id, "/other%20name.txt")
        self.assertEqual(response.body, b"hello")
        self.assertEqual(
            response.header("Content-Disposition"), 'inline; filename="other name.txt"'
        )

    @async_test
    async def test_upload_without_content_type_or_filename(self) -> None:
        media_id = await self.upload(b"\x00\x01", content_type=None)
        response = await self.download(media_id)
        self.assertEqual(response.header("Content-Type"), "application/octet-stream")
        # No filename was given, so none is made up.
        self.assertEqual(response.header("Content-Disposition"), "attachment")

    @async_test
    async def test_non_ascii_filename_is_rfc5987_encoded(self) -> None:
        media_id = await self.upload(b"x", "text/plain", filename='Ünïcødé "q".txt')
        response = await self.download(media_id)
        self.assertEqual(
            response.header("Content-Disposition"),
            "inline; filename*=utf-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9%20%22q%22.txt",
        )

    @async_test
    async def test_identical_uploads_share_one_file(self) -> None:
        data = os.urandom(5000)
        first = await self.upload(data, filename="one")
        second = await self.upload(data, token=self.bob_token, filename="two")
        self.assertNotEqual(first, second)
        stored = files_under(self.media_store)
        self.assertEqual(len(stored), 1)
        # Named by the SHA-256 of the content.
        self.assertEqual(os.path.basename(stored[0]), hashlib.sha256(data).hexdigest())
        for media_id, name in ((first, "one"), (second, "two")):
            response = await self.download(media_id)
            self.assertEqual(response.body, data)
            self.assertEqual(
                response.header("Content-Disposition"), f'attachment; filename="{name}"'
            )

    @async_test
    async def test_media_survives_a_restart(self) -> None:
        media_id = await self.upload(b"persistent", "text/plain")
        await self.server.restart()
        response = await self.download(media_id)
        self.assertEqual(response.body, b"persistent")

    @async_test
    async def test_unknown_media_is_not_found(self) -> None:
        for media_id in ("doesNotExist", "bad..id"):
            response = await self.download(media_id)
            self.assertEqual(response.code, 404)
            self.assertEqual(json_body(response)["errcode"], "M_NOT_FOUND")

    @async_test
    async def test_content_missing_from_disk_is_not_found(self) -> None:
        media_id = await self.upload(b"soon gone", "text/plain")
        for path in files_under(self.media_store):
            os.unlink(path)
        response = await self.download(media_id)
        self.assertEqual(response.code, 404)
        self.assertEqual(json_body(response)["errcode"], "M_NOT_FOUND")

    @async_test
    async def test_remote_media_of_an_unreachable_server(self) -> None:
        # Fetched over federation (tests/federation/test_federation_media.py); this server
        # cannot be reached (an address outside what the server may connect to: no DNS).
        response = await self.raw(
            "GET", f"{CLIENT_MEDIA}/download/192.0.2.1/abcdef", token=self.alice_token
        )
        self.assertEqual(response.code, 502)
        self.assertEqual(json_body(response)["errcode"], "M_UNKNOWN")

    @async_test
    async def test_invalid_server_name_is_refused(self) -> None:
        response = await self.raw(
            "GET", f"{CLIENT_MEDIA}/download/bad%20name/abcdef", token=self.alice_token
        )
        self.assertEqual(response.code, 400)
        self.assertEqual(json_body(response)["errcode"], "M_INVALID_PARAM")

    @async_test
    async def test_authenticated_endpoints_need_a_token(self) -> None:
        media_id = await self.upload(b"secret", "text/plain")
        paths = [
            f"{CLIENT_MEDIA}/download/{self.server_name}/{media_id}",
            f"{CLIENT_MEDIA}/download/{self.server_name}/{media_id}/name.txt",
            f"{CLIENT_MEDIA}/thumbnail/{self.server_name}/{media_id}?width=32&height=32",
            f"{CLIENT_MEDIA}/config",
            f"{CLIENT_MEDIA}/preview_url?url=https://example.com",
        ]
        for path in paths:
            response = await self.raw("GET", path)
            self.assertEqual(response.code, 401, path)
            self.assertEqual(json_body(response)["errcode"], "M_MISSING_TOKEN", path)
        response = await self.raw("POST", f"{MEDIA}/upload", data=b"x")
        self.assertEqual(response.code, 401)

    @async_test
    async def test_config(self) -> None:
        for path in (f"{CLIENT_MEDIA}/config", f"{MEDIA}/config"):
            response = await self.raw("GET", path, token=self.alice_token)
            self.assertEqual(response.code, 200)
            self.assertEqual(json_body(response), {"m.upload.size": 50 * 1024 * 1024})

    @async_test
    async def test_head_gives_length_without_body(self) -> None:
        media_id = await self.upload(b"12345", "text/plain")
        response = await self.raw(
            "HEAD",
            f"{CLIENT_MEDIA}/download/{self.server_name}/{media_id}",
            token=self.alice_token,
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header("Content-Length"), "5")
        self.assertEqual(response.body, b"")


class UploadLimitTest(MediaTestCase):
    config = {"max_upload_size": LIMIT}

    @async_test
    async def test_config_reports_the_limit(self) -> None:
        response = await self.raw("GET", f"{CLIENT_MEDIA}/config", token=self.alice_token)
        self.assertEqual(json_body(response), {"m.upload.size": LIMIT})

    @async_test
    async def test_upload_at_the_limit_is_accepted(self) -> None:
        data = os.urandom(LIMIT)
        media_id = await self.upload(data)
        self.assertEqual((await self.download(media_id)).body, data)

    @async_test
    async def test_oversized_upload_with_content_length_is_refused(self) -> None:
        response = await self.raw(
            "POST", f"{MEDIA}/upload", token=self.alice_token, data=os.urandom(LIMIT + 1)
        )
        self.assertEqual(response.code, 413)
        self.assertEqual(json_body(response)["errcode"], "M_TOO_LARGE")
        self.assertEqual(files_under(self.media_store), [])

    @async_test
    async def test_oversized_chunked_upload_is_refused(self) -> None:
        body = ChunkedBody(os.urandom(3 * LIMIT), chunk_size=16 * 1024)
        response = await self.raw("POST", f"{MEDIA}/upload", token=self.alice_token, data=body)
        self.assertEqual(response.code, 413)
        self.assertEqual(json_body(response)["errcode"], "M_TOO_LARGE")
        self.assertEqual(files_under(self.media_store), [])

    @async_test
    async def test_small_chunked_upload_is_accepted(self) -> None:
        data = os.urandom(LIMIT // 2)
        response = await self.raw(
            "POST", f"{MEDIA}/upload", token=self.alice_token, data=ChunkedBody(data, 4096)
        )
        self.assertEqual(response.code, 200)
        media_id = json_body(response)["content_uri"].rsplit("/", 1)[1]
        self.assertEqual((await self.download(media_id)).body, data)
