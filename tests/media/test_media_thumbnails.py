"""Thumbnails of real PNG and JPEG images: sizes for crop and scale, made once, never upscaled."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from twisted.internet import defer
from twisted.trial import unittest

from homeserver.config import DEFAULT_THUMBNAIL_SIZES, ThumbnailSize
from homeserver.media import thumbnails
from homeserver.media.thumbnails import choose_size
from tests.asyncutil import async_test
from tests.media.media_testing import (
    CLIENT_MEDIA,
    MediaTestCase,
    files_under,
    image_size,
    json_body,
    make_image,
)


class ThumbnailTest(MediaTestCase):
    async def thumbnail(self, media_id: str, query: str):
        return await self.raw(
            "GET",
            f"{CLIENT_MEDIA}/thumbnail/{self.server_name}/{media_id}?{query}",
            token=self.bob_token,
        )

    @async_test
    async def test_png_crop_and_scale(self) -> None:
        media_id = await self.upload(make_image("PNG", 1000, 500), "image/png")
        crop = await self.thumbnail(media_id, "width=90&height=90&method=crop")
        self.assertEqual(crop.code, 200)
        self.assertEqual(crop.header("Content-Type"), "image/png")
        self.assertEqual(image_size(crop.body), ("PNG", (96, 96)))
        self.assertTrue((crop.header("Content-Disposition") or "").startswith("inline"))
        self.assertIn("sandbox", crop.header("Content-Security-Policy") or "")
        # scale keeps the aspect ratio, fitting inside the chosen 320x240.
        scale = await self.thumbnail(media_id, "width=300&height=200&method=scale")
        self.assertEqual(image_size(scale.body), ("PNG", (320, 160)))

    @async_test
    async def test_jpeg_thumbnails_are_jpeg(self) -> None:
        media_id = await self.upload(make_image("JPEG", 1600, 1200), "image/jpeg")
        scale = await self.thumbnail(media_id, "width=640&height=480")  # scale by default
        self.assertEqual(scale.header("Content-Type"), "image/jpeg")
        self.assertEqual(image_size(scale.body), ("JPEG", (640, 480)))
        crop = await self.thumbnail(media_id, "width=32&height=32&method=crop")
        self.assertEqual(image_size(crop.body), ("JPEG", (32, 32)))

    @async_test
    async def test_a_thumbnail_is_made_once_and_stored(self) -> None:
        media_id = await self.upload(make_image("PNG", 800, 800), "image/png")
        first = await self.thumbnail(media_id, "width=96&height=96&method=crop")
        files_after_first = sorted(files_under(self.media_store))
        self.assertEqual(len(files_after_first), 2)  # the original and one thumbnail

        def must_not_run(*args: object) -> bytes:
            raise AssertionError("thumbnail made again")

        self.patch(thumbnails, "make_thumbnail", must_not_run)
        # Another request that maps to the same configured size is served from storage.
        second = await self.thumbnail(media_id, "width=50&height=50&method=crop")
        self.assertEqual(second.code, 200)
        self.assertEqual(second.body, first.body)
        self.assertEqual(sorted(files_under(self.media_store)), files_after_first)
        rows = await self.server.hs.db.run(
            "count", lambda txn: txn.query_one("SELECT COUNT(*) FROM media_thumbnails")
        )
        self.assertEqual(rows[0], 1)

    @async_test
    async def test_concurrent_requests_make_one_thumbnail(self) -> None:
        media_id = await self.upload(make_image("JPEG", 1200, 900), "image/jpeg")
        calls = []
        original = thumbnails.make_thumbnail

        def counting(*args: Any) -> bytes:
            calls.append(args)
            return original(*args)

        self.patch(thumbnails, "make_thumbnail", counting)
        responses = await defer.gatherResults(
            [
                defer.ensureDeferred(self.thumbnail(media_id, "width=600&height=400"))
                for _ in range(4)
            ]
        )
        self.assertEqual({r.code for r in responses}, {200})
        self.assertEqual(len({r.body for r in responses}), 1)
        self.assertEqual(len(calls), 1)

    @async_test
    async def test_identical_images_share_thumbnails(self) -> None:
        data = make_image("PNG", 500, 500)
        first = await self.upload(data, "image/png")
        second = await self.upload(data, "image/png", token=self.bob_token)
        await self.thumbnail(first, "width=96&height=96&method=crop")
        await self.thumbnail(second, "width=96&height=96&method=crop")
        self.assertEqual(len(files_under(self.media_store)), 2)

    @async_test
    async def test_smaller_image_is_returned_as_is(self) -> None:
        data = make_image("PNG", 20, 10)
        media_id = await self.upload(data, "image/png")
        for method in ("crop", "scale"):
            response = await self.thumbnail(media_id, f"width=32&height=32&method={method}")
            self.assertEqual(response.code, 200)
            self.assertEqual(response.body, data)

    @async_test
    async def test_never_upscaled(self) -> None:
        # Smaller than the chosen 320x240 but larger than the request in one direction.
        media_id = await self.upload(make_image("PNG", 100, 300), "image/png")
        response = await self.thumbnail(media_id, "width=50&height=50&method=scale")
        self.assertEqual(image_size(response.body), ("PNG", (80, 240)))
        crop = await self.thumbnail(media_id, "width=200&height=200&method=crop")
        # The largest crop size (96x96) is smaller than asked: cut to its square aspect.
        self.assertEqual(image_size(crop.body), ("PNG", (96, 96)))

    @async_test
    async def test_animated_gif_gives_animated_webp_only_when_asked(self) -> None:
        frames = [Image.new("RGB", (200, 200), color) for color in ("red", "green", "blue")]
        out = io.BytesIO()
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
        media_id = await self.upload(out.getvalue(), "image/gif")
        animated = await self.thumbnail(media_id, "width=96&height=96&method=crop&animated=true")
        self.assertEqual(animated.header("Content-Type"), "image/webp")
        with Image.open(io.BytesIO(animated.body)) as image:
            self.assertEqual(image.size, (96, 96))
            self.assertEqual(image.n_frames, 3)
        still = await self.thumbnail(media_id, "width=96&height=96&method=crop")
        self.assertEqual(still.header("Content-Type"), "image/png")
        with Image.open(io.BytesIO(still.body)) as image:
            self.assertFalse(getattr(image, "is_animated", False))

    @async_test
    async def test_not_an_image(self) -> None:
        for content_type, data in (("text/plain", b"hello"), ("image/png", b"not a png")):
            media_id = await self.upload(data, content_type)
            response = await self.thumbnail(media_id, "width=32&height=32")
            self.assertEqual(response.code, 400, content_type)
            self.assertEqual(json_body(response)["errcode"], "M_UNKNOWN")

    @async_test
    async def test_bad_parameters(self) -> None:
        media_id = await self.upload(make_image("PNG", 50, 50), "image/png")
        cases = {
            "height=32": "M_MISSING_PARAM",
            "width=32": "M_MISSING_PARAM",
            "width=-1&height=32": "M_INVALID_PARAM",
            "width=0&height=32": "M_INVALID_PARAM",
            "width=abc&height=32": "M_INVALID_PARAM",
            "width=32&height=32&method=stretch": "M_INVALID_PARAM",
            "width=32&height=32&animated=maybe": "M_INVALID_PARAM",
        }
        for query, errcode in cases.items():
            response = await self.thumbnail(media_id, query)
            self.assertEqual(response.code, 400, query)
            self.assertEqual(json_body(response)["errcode"], errcode, query)


class TooManyPixelsTest(MediaTestCase):
    config = {"max_image_pixels": 1000}

    @async_test
    async def test_large_image_is_not_thumbnailed(self) -> None:
        media_id = await self.upload(make_image("PNG", 100, 100), "image/png")
        response = await self.raw(
            "GET",
            f"{CLIENT_MEDIA}/thumbnail/{self.server_name}/{media_id}?width=32&height=32",
            token=self.alice_token,
        )
        self.assertEqual(response.code, 413)
        self.assertEqual(json_body(response)["errcode"], "M_TOO_LARGE")


class ChooseSizeTest(unittest.TestCase):
    def choose(self, width: int, height: int, method: str) -> tuple[int, int, str]:
        size = choose_size(DEFAULT_THUMBNAIL_SIZES, width, height, method)
        assert size is not None
        return size.width, size.height, size.method

    def test_smallest_covering_size_of_the_method(self) -> None:
        self.assertEqual(self.choose(32, 32, "crop"), (32, 32, "crop"))
        self.assertEqual(self.choose(33, 33, "crop"), (96, 96, "crop"))
        self.assertEqual(self.choose(320, 240, "scale"), (320, 240, "scale"))
        self.assertEqual(self.choose(321, 100, "scale"), (640, 480, "scale"))
        self.assertEqual(self.choose(10, 10, "scale"), (320, 240, "scale"))

    def test_largest_when_none_covers(self) -> None:
        self.assertEqual(self.choose(2000, 2000, "scale"), (800, 600, "scale"))
        self.assertEqual(self.choose(500, 500, "crop"), (96, 96, "crop"))

    def test_other_method_only_when_none_configured(self) -> None:
        sizes = (ThumbnailSize(100, 100, "scale"),)
        size = choose_size(sizes, 50, 50, "crop")
        self.assertEqual(size, sizes[0])
        self.assertIsNone(choose_size((), 50, 50, "crop"))

    def test_crop_prefers_the_requested_aspect(self) -> None:
        sizes = (ThumbnailSize(200, 100, "crop"), ThumbnailSize(300, 300, "crop"))
        self.assertEqual(choose_size(sizes, 100, 100, "crop"), sizes[1])
        self.assertEqual(choose_size(sizes, 100, 50, "crop"), sizes[0])
