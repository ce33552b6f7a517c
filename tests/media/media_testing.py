"""What the media tests share: a server with per-class config, raw byte requests, images."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import treq
from PIL import Image
from twisted.internet import defer
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from tests.client.client_testing import ClientTestCase
from tests.harness import TestServer

MEDIA = "/_matrix/media/v3"
CLIENT_MEDIA = "/_matrix/client/v1/media"


@dataclass
class RawResponse:
    code: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


@implementer(IBodyProducer)
class ChunkedBody:
    """A body of unknown length, so treq sends it with Transfer-Encoding: chunked."""

    length = UNKNOWN_LENGTH

    def __init__(self, data: bytes, chunk_size: int = 64 * 1024) -> None:
        self.data = data
        self.chunk_size = chunk_size

    def startProducing(self, consumer: Any) -> defer.Deferred:
        for start in range(0, len(self.data), self.chunk_size):
            consumer.write(self.data[start : start + self.chunk_size])
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def make_image(fmt: str, width: int, height: int) -> bytes:
    """A real image: a gradient, so that resizing has something to do."""
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    image = Image.new(mode, (width, height))
    image.putdata(
        [
            (x * 255 // width, y * 255 // height, 128) + ((255,) if mode == "RGBA" else ())
            for y in range(height)
            for x in range(width)
        ]
    )
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def image_size(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def files_under(path: str) -> list[str]:
    found = []
    for directory, _dirs, names in os.walk(path):
        found.extend(os.path.join(directory, name) for name in names)
    return found


class MediaTestCase(ClientTestCase):
    """A ClientTestCase whose server gets `config` overrides."""

    config: dict[str, Any] = {}

    def setUp(self) -> defer.Deferred:
        self.server = TestServer(**self.config)
        return defer.ensureDeferred(self._start())

    @property
    def server_name(self) -> str:
        return self.server.config.server_name

    @property
    def media_store(self) -> str:
        return self.server.config.media_store_path

    async def raw(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        data: bytes | ChunkedBody | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        response = await treq.request(
            method,
            self.server.base_url + path,
            data=data,
            headers={k: [v] for k, v in all_headers.items()},
            persistent=False,
        )
        return RawResponse(response.code, response.headers, await response.content())

    async def upload(
        self,
        data: bytes,
        content_type: str | None = "application/octet-stream",
        filename: str | None = None,
        token: str | None = None,
    ) -> str:
        """Uploads as alice (by default); returns the media ID."""
        query = "" if filename is None else "?filename=" + quote(filename, safe="")
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await self.raw(
            "POST",
            f"{MEDIA}/upload{query}",
            token=token or self.alice_token,
            data=data,
            headers=headers,
        )
        assert response.code == 200, response.body
        content_uri = json_body(response)["content_uri"]
        prefix = f"mxc://{self.server_name}/"
        assert content_uri.startswith(prefix), content_uri
        return content_uri[len(prefix) :]

    async def download(
        self, media_id: str, suffix: str = "", token: str | None = None
    ) -> RawResponse:
        return await self.raw(
            "GET",
            f"{CLIENT_MEDIA}/download/{self.server_name}/{media_id}{suffix}",
            token=token or self.alice_token,
        )


def json_body(response: RawResponse) -> Any:
    return json.loads(response.body)
