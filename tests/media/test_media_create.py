"""POST /_matrix/media/v1/create, then PUT /_matrix/media/v3/upload/{serverName}/{mediaId}."""

from __future__ import annotations

import time

from twisted.internet import defer

from tests.asyncutil import async_test
from tests.media.media_testing import CLIENT_MEDIA, MEDIA, MediaTestCase, json_body

CREATE = "/_matrix/media/v1/create"


class CreateThenUploadTest(MediaTestCase):
    config = {"max_pending_media_uploads": 3}

    async def create(self, token: str | None = None) -> tuple[str, str, int]:
        """(server name, media ID, unused_expires_at) of a new media ID."""
        response = await self.raw("POST", CREATE, token=token or self.alice_token)
        self.assertEqual(response.code, 200, response.body)
        body = json_body(response)
        server_name, media_id = body["content_uri"].removeprefix("mxc://").split("/")
        return server_name, media_id, body["unused_expires_at"]

    async def put(self, media_id: str, data: bytes, token: str | None = None, **headers: str):
        return await self.raw(
            "PUT",
            f"{MEDIA}/upload/{self.server_name}/{media_id}?filename=late.txt",
            token=token or self.alice_token,
            data=data,
            headers={"Content-Type": "text/plain", **headers},
        )

    @async_test
    async def test_create_then_upload_then_download(self) -> None:
        server_name, media_id, expires_at = await self.create()
        self.assertEqual(server_name, self.server_name)
        # The spec's recommended lifetime of an unused ID is 24 hours.
        self.assertLess(abs(expires_at / 1000 - (time.time() + 86400)), 60)
        response = await self.put(media_id, b"uploaded later")
        self.assertEqual(response.code, 200)
        self.assertEqual(json_body(response), {})
        download = await self.download(media_id)
        self.assertEqual(download.body, b"uploaded later")
        self.assertEqual(download.header("Content-Disposition"), 'inline; filename="late.txt"')

    @async_test
    async def test_download_before_upload_is_not_yet_uploaded(self) -> None:
        _, media_id, _ = await self.create()
        response = await self.raw(
            "GET",
            f"{CLIENT_MEDIA}/download/{self.server_name}/{media_id}?timeout_ms=0",
            token=self.alice_token,
        )
        self.assertEqual(response.code, 504)
        self.assertEqual(json_body(response)["errcode"], "M_NOT_YET_UPLOADED")

    @async_test
    async def test_download_waits_for_the_upload(self) -> None:
        _, media_id, _ = await self.create()
        waiting = defer.ensureDeferred(
            self.raw(
                "GET",
                f"{CLIENT_MEDIA}/download/{self.server_name}/{media_id}?timeout_ms=10000",
                token=self.bob_token,
            )
        )
        self.assertFalse(waiting.called)
        self.assertEqual((await self.put(media_id, b"worth the wait")).code, 200)
        response = await waiting
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"worth the wait")

    @async_test
    async def test_only_the_creator_may_upload(self) -> None:
        _, media_id, _ = await self.create()
        response = await self.put(media_id, b"not mine", token=self.bob_token)
        self.assertEqual(response.code, 403)
        self.assertEqual(json_body(response)["errcode"], "M_FORBIDDEN")

    @async_test
    async def test_content_cannot_be_overwritten(self) -> None:
        _, media_id, _ = await self.create()
        self.assertEqual((await self.put(media_id, b"first")).code, 200)
        response = await self.put(media_id, b"second")
        self.assertEqual(response.code, 409)
        self.assertEqual(json_body(response)["errcode"], "M_CANNOT_OVERWRITE_MEDIA")
        self.assertEqual((await self.download(media_id)).body, b"first")

    @async_test
    async def test_plain_upload_cannot_be_overwritten_either(self) -> None:
        media_id = await self.upload(b"direct")
        response = await self.put(media_id, b"again")
        self.assertEqual(response.code, 409)
        self.assertEqual(json_body(response)["errcode"], "M_CANNOT_OVERWRITE_MEDIA")

    @async_test
    async def test_upload_to_unknown_or_foreign_id_is_not_found(self) -> None:
        response = await self.put("neverCreated", b"x")
        self.assertEqual(response.code, 404)
        self.assertEqual(json_body(response)["errcode"], "M_NOT_FOUND")
        response = await self.raw(
            "PUT",
            f"{MEDIA}/upload/other.example/abc",
            token=self.alice_token,
            data=b"x",
        )
        self.assertEqual(response.code, 404)
        self.assertEqual(json_body(response)["errcode"], "M_NOT_FOUND")

    @async_test
    async def test_pending_uploads_are_limited(self) -> None:
        for _ in range(3):
            await self.create()
        response = await self.raw("POST", CREATE, token=self.alice_token)
        self.assertEqual(response.code, 429)
        body = json_body(response)
        self.assertEqual(body["errcode"], "M_LIMIT_EXCEEDED")
        self.assertGreater(body["retry_after_ms"], 0)
        # The limit is per user.
        await self.create(token=self.bob_token)

    @async_test
    async def test_uploading_frees_a_pending_slot(self) -> None:
        ids = [(await self.create())[1] for _ in range(3)]
        self.assertEqual((await self.put(ids[0], b"done")).code, 200)
        await self.create()

    @async_test
    async def test_create_needs_a_token(self) -> None:
        response = await self.raw("POST", CREATE)
        self.assertEqual(response.code, 401)
        self.assertEqual(json_body(response)["errcode"], "M_MISSING_TOKEN")


class ExpiredCreateTest(MediaTestCase):
    config = {"unused_expiration_time": "1s"}

    @async_test
    async def test_expired_media_id_cannot_be_uploaded(self) -> None:
        response = await self.raw("POST", CREATE, token=self.alice_token)
        media_id = json_body(response)["content_uri"].rsplit("/", 1)[1]
        await self.server.hs.clock.sleep(1.1)
        response = await self.raw(
            "PUT",
            f"{MEDIA}/upload/{self.server_name}/{media_id}",
            token=self.alice_token,
            data=b"too late",
        )
        self.assertEqual(response.code, 404)
        self.assertEqual(json_body(response)["errcode"], "M_NOT_FOUND")


class CreateRateLimitTest(MediaTestCase):
    config = {"rc_media_create": {"per_second": 0.001, "burst_count": 2}}

    @async_test
    async def test_creating_is_rate_limited(self) -> None:
        for _ in range(2):
            self.assertEqual((await self.raw("POST", CREATE, token=self.alice_token)).code, 200)
        response = await self.raw("POST", CREATE, token=self.alice_token)
        self.assertEqual(response.code, 429)
        self.assertEqual(json_body(response)["errcode"], "M_LIMIT_EXCEEDED")
