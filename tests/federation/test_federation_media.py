"""Federated media: bob's upload on B downloaded by alice through A, over real HTTPS."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
import treq
from twisted.internet import defer
from twisted.web.http_headers import Headers

from federation.client import FederationError
from federation.servlets.media import FederationMediaFetcher
from homeserver.errors import MatrixError
from homeserver.media import multipart
from tests.asyncutil import async_test
from tests.federation.federation_testing import FederatingServer, TwoServersCase
from tests.media.media_testing import RawResponse, image_size, make_image

MEDIA = "/_matrix/media/v3"
CLIENT_MEDIA = "/_matrix/client/v1/media"
FED_MEDIA = "/_matrix/federation/v1/media"


async def raw(
    server: FederatingServer, method: str, path: str, token: str, data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    response = await treq.request(
        method,
        server.base_url + path,
        data=data,
        headers={k: [v] for k, v in all_headers.items()},
        persistent=False,
    )
    return RawResponse(response.code, response.headers, await response.content())


class FederatedMedia(TwoServersCase):
    async def upload_on_b(self, data: bytes, content_type: str, filename: str) -> str:
        response = await raw(
            self.b, "POST", f"{MEDIA}/upload?filename={quote(filename)}", self.bob_token,
            data, {"Content-Type": content_type},
        )
        assert response.code == 200, response.body
        uri = json.loads(response.body)["content_uri"]
        prefix = f"mxc://{self.b.server_name}/"
        assert uri.startswith(prefix), uri
        return uri[len(prefix) :]

    def count_b_downloads(self) -> list[str]:
        """Every media ID B's federation endpoint is asked for, from now on."""
        seen: list[str] = []
        repository = self.b.hs.media
        download = repository.download

        async def counting(server_name: str, media_id: str, *args: Any, **kwargs: Any) -> Any:
            seen.append(media_id)
            return await download(server_name, media_id, *args, **kwargs)

        repository.download = counting
        return seen

    def alice_get(self, path: str) -> defer.Deferred:
        return defer.ensureDeferred(raw(self.a, "GET", path, self.alice_token))

    @async_test
    async def test_download_through_our_server_is_identical_then_cached(self) -> None:
        png = make_image("PNG", 800, 600)
        media_id = await self.upload_on_b(png, "image/png", "cat picture.png")
        asked = self.count_b_downloads()
        path = f"{CLIENT_MEDIA}/download/{self.b.server_name}/{media_id}"

        # Two requests at once: A fetches from B once.
        first, second = await defer.gatherResults([self.alice_get(path), self.alice_get(path)])
        for response in (first, second):
            self.assertEqual(response.code, 200, response.body)
            self.assertEqual(response.body, png)
            self.assertEqual(response.header("Content-Type"), "image/png")
            self.assertEqual(
                response.header("Content-Disposition"), 'inline; filename="cat picture.png"'
            )
            self.assertIn("sandbox", response.header("Content-Security-Policy") or "")
            self.assertEqual(response.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(asked, [media_id])

        thumbnail = await self.alice_get(
            f"{CLIENT_MEDIA}/thumbnail/{self.b.server_name}/{media_id}"
            "?width=32&height=32&method=scale"
        )
        self.assertEqual(thumbnail.code, 200, thumbnail.body)
        fmt, (width, height) = image_size(thumbnail.body)
        self.assertLess(width, 800)
        self.assertLess(height, 600)
        self.assertEqual(asked, [media_id])  # thumbnails are made from A's copy

        # With B gone, A still serves the media, and thumbnails of other sizes.
        await self.b.stop()
        again = await self.alice_get(path + "/renamed.png")
        self.assertEqual((again.code, again.body), (200, png))
        self.assertEqual(again.header("Content-Disposition"), 'inline; filename="renamed.png"')
        cropped = await self.alice_get(
            f"{CLIENT_MEDIA}/thumbnail/{self.b.server_name}/{media_id}"
            "?width=96&height=96&method=crop"
        )
        self.assertEqual(cropped.code, 200, cropped.body)
        self.assertEqual(image_size(cropped.body)[0], fmt)

    @async_test
    async def test_concurrent_requests_fetch_once(self) -> None:
        media_id = await self.upload_on_b(b"shared", "text/plain", "s.txt")
        remote = self.a.hs.media.remote
        fetches: list[str] = []
        fetch = remote.fetcher.fetch

        async def counting(server_name: str, wanted: str, *args: Any) -> Any:
            fetches.append(wanted)
            return await fetch(server_name, wanted, *args)

        remote.fetcher.fetch = counting
        # All three miss the cache before the first fetch is done.
        found = await defer.gatherResults(
            [
                defer.ensureDeferred(remote.get_media(self.b.server_name, media_id, 0))
                for _ in range(3)
            ]
        )
        self.assertEqual(fetches, [media_id])
        self.assertEqual({info.sha256 for info in found}, {found[0].sha256})
        self.assertEqual(found[0].origin, self.b.server_name)

    @async_test
    async def test_cache_survives_a_restart_of_our_server(self) -> None:
        media_id = await self.upload_on_b(b"plain words", "text/plain", "notes.txt")
        path = f"{CLIENT_MEDIA}/download/{self.b.server_name}/{media_id}"
        first = await self.alice_get(path)
        self.assertEqual((first.code, first.body), (200, b"plain words"))
        await self.a.restart()
        asked = self.count_b_downloads()
        again = await self.alice_get(path)
        self.assertEqual((again.code, again.body), (200, b"plain words"))
        self.assertEqual(again.header("Content-Type"), "text/plain")
        self.assertEqual(asked, [])

    @async_test
    async def test_unsafe_types_are_attachments(self) -> None:
        page = b"<script>alert(1)</script>"
        media_id = await self.upload_on_b(page, "text/html", "page.html")
        response = await self.alice_get(f"{CLIENT_MEDIA}/download/{self.b.server_name}/{media_id}")
        self.assertEqual((response.code, response.body), (200, page))
        self.assertEqual(
            response.header("Content-Disposition"), 'attachment; filename="page.html"'
        )
        self.assertIn("sandbox", response.header("Content-Security-Policy") or "")

    @async_test
    async def test_unknown_remote_media_is_not_found(self) -> None:
        for kind, query in (("download", ""), ("thumbnail", "?width=32&height=32")):
            response = await self.alice_get(
                f"{CLIENT_MEDIA}/{kind}/{self.b.server_name}/NoSuchMedia{query}"
            )
            self.assertEqual(response.code, 404, response.body)
            self.assertEqual(json.loads(response.body)["errcode"], "M_NOT_FOUND")
        # Nothing was cached for it.
        cached = await self.a.hs.storage.media.get_remote_media(self.b.server_name, "NoSuchMedia")
        self.assertIsNone(cached)

    @async_test
    async def test_remote_media_over_the_limit_is_refused(self) -> None:
        media_id = await self.upload_on_b(b"x" * 5000, "application/octet-stream", "big.bin")
        self.a.hs.media.remote.max_size = 1000
        response = await self.alice_get(f"{CLIENT_MEDIA}/download/{self.b.server_name}/{media_id}")
        self.assertEqual(response.code, 502, response.body)
        self.assertEqual(json.loads(response.body)["errcode"], "M_TOO_LARGE")
        cached = await self.a.hs.storage.media.get_remote_media(self.b.server_name, media_id)
        self.assertIsNone(cached)

    @async_test
    async def test_legacy_endpoints_do_not_fetch_remote_media(self) -> None:
        # While the unauthenticated endpoints are frozen, what they could fetch now would be
        # authenticated media: they are not found, as on Synapse.
        media_id = await self.upload_on_b(b"hidden", "text/plain", "a.txt")
        asked = self.count_b_downloads()
        response = await raw(
            self.a, "GET", f"{MEDIA}/download/{self.b.server_name}/{media_id}", self.alice_token
        )
        self.assertEqual(response.code, 404)
        self.assertEqual(asked, [])

    @async_test
    async def test_federation_endpoints_answer_multipart(self) -> None:
        png = make_image("PNG", 800, 400)
        media_id = await self.upload_on_b(png, "image/png", "pic.png")
        client = self.a.hs.federation_client

        headers, body = await client.get_raw(
            self.b.server_name, f"{FED_MEDIA}/download/{media_id}", max_size=1 << 20
        )
        content_type = headers.getRawHeaders("Content-Type")[0]
        self.assertTrue(content_type.startswith("multipart/mixed; boundary="), content_type)
        part = multipart.parse(content_type, body)
        self.assertEqual(part.metadata, {})
        self.assertEqual(part.body, png)
        self.assertEqual(part.header("Content-Type"), "image/png")
        self.assertEqual(part.header("Content-Disposition"), 'inline; filename="pic.png"')

        headers, body = await client.get_raw(
            self.b.server_name,
            f"{FED_MEDIA}/thumbnail/{media_id}",
            {"width": "32", "height": "32", "method": "scale"},
            max_size=1 << 20,
        )
        part = multipart.parse(headers.getRawHeaders("Content-Type")[0], body)
        self.assertEqual(part.header("Content-Type"), "image/png")
        fmt, (width, _height) = image_size(part.body)
        self.assertEqual(fmt, "PNG")
        self.assertLess(width, 800)

        with self.assertRaises(FederationError) as unknown:
            await client.get_raw(
                self.b.server_name, f"{FED_MEDIA}/download/NoSuchMedia", max_size=1 << 20
            )
        self.assertEqual((unknown.exception.code, unknown.exception.errcode), (404, "M_NOT_FOUND"))

        # Only signed requests are served.
        with self.assertRaises(FederationError) as unsigned:
            await client.get_raw(
                self.b.server_name, f"{FED_MEDIA}/download/{media_id}", max_size=1 << 20,
                signed=False,
            )
        self.assertEqual(unsigned.exception.code, 401)


# -- the fetcher against a fake remote ------------------------------------------------------------


class FakeClient:
    """FederationClient.get_raw answering from a script of (path prefix -> answer or error)."""

    def __init__(self, answers: list[tuple[str, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, str], bool]] = []

    async def get_raw(
        self, destination: str, path: str, query: Any = None, *, max_size: int,
        signed: bool = True, timeout: float = 60.0,
    ) -> tuple[Headers, bytes]:
        self.calls.append((path, dict(query or {}), signed))
        prefix, answer = self.answers.pop(0)
        assert path.startswith(prefix), (path, prefix)
        if isinstance(answer, Exception):
            raise answer
        headers, body = answer
        if len(body) > max_size:
            from federation.client import FederationResponseTooLarge

            raise FederationResponseTooLarge(destination, "too large")
        return Headers({k: [v] for k, v in headers.items()}), body


def _run(coro: Any) -> Any:
    """Runs a coroutine that never waits on the reactor."""
    result: list[Any] = []
    failure: list[Any] = []
    d = defer.ensureDeferred(coro)
    d.addCallbacks(result.append, failure.append)
    if failure:
        failure[0].raiseException()
    assert result, "the coroutine waited on something"
    return result[0]


def test_fetcher_falls_back_to_the_legacy_endpoint_only_on_unrecognized() -> None:
    unrecognized = FederationError("b.example", "404", 404, {"errcode": "M_UNRECOGNIZED"})
    client = FakeClient(
        [
            ("/_matrix/federation/v1/media/download/abc", unrecognized),
            (
                "/_matrix/media/v3/download/b.example/abc",
                (
                    {
                        "Content-Type": "image/gif",
                        "Content-Disposition": "attachment; filename*=utf-8''%E2%98%83.gif",
                    },
                    b"GIF89a...",
                ),
            ),
        ]
    )
    fetched = _run(FederationMediaFetcher(client).fetch("b.example", "abc", 1000, 5000))
    assert (fetched.body, fetched.media_type, fetched.upload_name) == (
        b"GIF89a...",
        "image/gif",
        "\u2603.gif",
    )
    legacy_path, legacy_query, signed = client.calls[1]
    assert legacy_query == {"allow_remote": "false", "timeout_ms": "5000"}
    assert not signed

    not_found = FederationError("b.example", "404", 404, {"errcode": "M_NOT_FOUND"})
    client = FakeClient([("/_matrix/federation/v1/media/download/abc", not_found)])
    with pytest.raises(MatrixError) as error:
        _run(FederationMediaFetcher(client).fetch("b.example", "abc", 1000, 5000))
    assert (error.value.http_status, error.value.errcode) == (404, "M_NOT_FOUND")
    assert len(client.calls) == 1


def test_fetcher_maps_remote_errors() -> None:
    cases = [
        (FederationError("b", "504", 504, {"errcode": "M_NOT_YET_UPLOADED"}), 504,
         "M_NOT_YET_UPLOADED"),
        (FederationError("b", "502", 502, {"errcode": "M_TOO_LARGE"}), 502, "M_TOO_LARGE"),
        (FederationError("b", "unreachable"), 502, "M_UNKNOWN"),
        (FederationError("b", "500", 500, None), 502, "M_UNKNOWN"),
    ]
    for error, status, errcode in cases:
        client = FakeClient([("/_matrix/federation/v1/media/download/", error)])
        with pytest.raises(MatrixError) as raised:
            _run(FederationMediaFetcher(client).fetch("b", "abc", 1000, 0))
        assert (raised.value.http_status, raised.value.errcode) == (status, errcode)

    # A body that is not the spec's multipart is a failure to fetch, not content.
    client = FakeClient(
        [("/_matrix/federation/v1/media/download/", ({"Content-Type": "image/png"}, b"png"))]
    )
    with pytest.raises(MatrixError) as raised:
        _run(FederationMediaFetcher(client).fetch("b", "abc", 1000, 0))
    assert raised.value.http_status == 502

    # Over the limit: the media part itself, not only the whole body.
    content_type, body = multipart.build({}, {"Content-Type": "text/plain"}, b"y" * 2000)
    client = FakeClient(
        [("/_matrix/federation/v1/media/download/", ({"Content-Type": content_type}, body))]
    )
    with pytest.raises(MatrixError) as raised:
        _run(FederationMediaFetcher(client).fetch("b", "abc", 1000, 0))
    assert (raised.value.http_status, raised.value.errcode) == (502, "M_TOO_LARGE")


# -- multipart/mixed ----------------------------------------------------------------------------


def test_multipart_round_trip() -> None:
    data = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    content_type, body = multipart.build(
        {"k": 1}, {"Content-Type": "application/pdf", "Content-Disposition": "attachment"}, data
    )
    part = multipart.parse(content_type, body)
    assert part.metadata == {"k": 1}
    assert part.body == data
    assert part.header("content-type") == "application/pdf"


def test_multipart_from_other_writers() -> None:
    # A quoted boundary, a preamble, transport padding, a part with no headers, an epilogue.
    body = (
        b"preamble\r\n--b0und\r\nContent-Type: application/json; charset=utf-8\r\n\r\n{}"
        b"\r\n--b0und  \r\n\r\nraw bytes\r\n--b0und--\r\nepilogue"
    )
    part = multipart.parse('multipart/mixed; boundary="b0und"', body)
    assert (part.metadata, part.headers, part.body) == ({}, {}, b"raw bytes")
    # A Location instead of bytes.
    body = (
        b"--x\r\nContent-Type: application/json\r\n\r\n{}\r\n"
        b"--x\r\nLocation: https://cdn.example/abc\r\n\r\n\r\n--x--\r\n"
    )
    part = multipart.parse("multipart/mixed;boundary=x", body)
    assert part.header("Location") == "https://cdn.example/abc"
    assert part.body == b""


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", b"--x\r\n\r\n{}\r\n--x\r\n\r\nabc\r\n--x--"),
        ("multipart/mixed", b"--x\r\n\r\n{}\r\n--x\r\n\r\nabc\r\n--x--"),
        # Only one part.
        ("multipart/mixed; boundary=x", b"--x\r\nContent-Type: application/json\r\n\r\n{}\r\n--x--"),
        # No closing delimiter: cut short.
        (
            "multipart/mixed; boundary=x",
            b"--x\r\nContent-Type: application/json\r\n\r\n{}\r\n--x\r\n\r\nabc",
        ),
        # The first part is not JSON metadata.
        (
            "multipart/mixed; boundary=x",
            b"--x\r\nContent-Type: text/plain\r\n\r\n{}\r\n--x\r\n\r\nabc\r\n--x--",
        ),
        (
            "multipart/mixed; boundary=x",
            b"--x\r\nContent-Type: application/json\r\n\r\n[]\r\n--x\r\n\r\nabc\r\n--x--",
        ),
    ],
)
def test_multipart_refuses_what_is_not_two_parts(content_type: str, body: bytes) -> None:
    with pytest.raises(multipart.MultipartError):
        multipart.parse(content_type, body)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('inline; filename="a b.png"', "a b.png"),
        ("attachment; filename=plain.txt", "plain.txt"),
        ('attachment; filename="q\\"uote.txt"', 'q"uote.txt'),
        ("attachment; filename*=utf-8''%E2%98%83.txt", "\u2603.txt"),
        ('attachment; filename="fallback.txt"; filename*=UTF-8\'en\'%C3%A9.txt', "\u00e9.txt"),
        ("attachment; filename*=bogus''%FF", None),
        ("inline", None),
        (None, None),
    ],
)
def test_filename_from_disposition(header: str | None, name: str | None) -> None:
    assert multipart.filename_from_disposition(header) == name
