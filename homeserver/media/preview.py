"""URL previews: OpenGraph data of a web page, with its image stored as media.

Pages are fetched through the outbound HttpClient with the url_preview IP policy, so a preview
can never be pointed at the server's own network. HTML is parsed with the standard library's
html.parser in a thread. Answers are cached in the database for an hour, and concurrent
requests for one URL fetch it once.
"""

from __future__ import annotations

import codecs
import logging
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from twisted.internet import threads

from homeserver import http_client
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from homeserver.media.coalesce import Coalescer
from storage.media import MediaStore

if TYPE_CHECKING:
    from homeserver.media.repository import MediaRepository

logger = logging.getLogger(__name__)

CACHE_MS = 3600 * 1000
FETCH_TIMEOUT_S = 30.0
MAX_REDIRECTS = 5
# Some sites only give OpenGraph data to crawlers; say we are one.
USER_AGENT = "homeserver URL preview (bot)"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MAX_VALUE = 1000
_MAX_DESCRIPTION = 500
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class UrlPreviewer:
    def __init__(
        self,
        repository: MediaRepository,
        client: http_client.HttpClient,
        store: MediaStore,
        clock: Clock,
        reactor: Any,
        max_size: int,
    ) -> None:
        self.repository = repository
        self.client = client
        self.store = store
        self.clock = clock
        self.reactor = reactor
        self.max_size = max_size
        self._fetching: Coalescer[dict[str, Any]] = Coalescer()

    async def preview(self, url: str, user_id: str) -> dict[str, Any]:
        cached = await self.store.get_url_preview(url, self.clock.time_msec())
        if cached is not None:
            return cached
        return await self._fetching.run(url, lambda: self._preview_and_cache(url, user_id))

    async def _preview_and_cache(self, url: str, user_id: str) -> dict[str, Any]:
        og = await self._preview(url, user_id)
        now = self.clock.time_msec()
        await self.store.store_url_preview(url, now, now + CACHE_MS, og)
        return og

    async def _preview(self, url: str, user_id: str) -> dict[str, Any]:
        response = await self._fetch(url)
        media_type, charset = _parse_content_type(response.header("Content-Type"))
        if media_type.startswith("image/"):
            return await self._store_image(response, media_type, user_id)
        if media_type not in _HTML_TYPES:
            return {}  # the spec allows an empty preview
        og = await threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), parse_html, response.body, charset
        )
        return await self._add_image(og, response.url, user_id)

    async def _fetch(self, url: str) -> http_client.HttpResponse:
        try:
            response = await self.client.request(
                "GET",
                url,
                headers={"User-Agent": USER_AGENT, "Accept-Language": "en"},
                max_size=self.max_size,
                max_redirects=MAX_REDIRECTS,
                timeout=FETCH_TIMEOUT_S,
                retries=1,
            )
        except http_client.InvalidUrl:
            raise MatrixError(400, Codes.INVALID_PARAM, "url must be an http(s) URL") from None
        except http_client.BlockedAddress:
            raise MatrixError(403, Codes.FORBIDDEN, "This URL may not be previewed") from None
        except http_client.ResponseTooLarge:
            raise MatrixError(502, Codes.TOO_LARGE, "The page is too large to preview") from None
        except http_client.HttpClientError as e:
            logger.info("URL preview fetch failed: %s", e)
            raise MatrixError(502, Codes.UNKNOWN, "Could not fetch the URL to preview") from None
        if response.code != 200:
            raise MatrixError(502, Codes.UNKNOWN, f"The URL answered with HTTP {response.code}")
        return response

    async def _add_image(self, og: dict[str, Any], page_url: str, user_id: str) -> dict[str, Any]:
        """Replaces og:image's URL by an mxc:// URI of the image, or drops it if unfetchable."""
        image_url = og.get("og:image") or og.get("og:image:secure_url") or og.get("og:image:url")
        # The page's own image facts (and remote URLs the client should not fetch) go; what
        # we learn from the image itself comes back below.
        og = {k: v for k, v in og.items() if not k.startswith("og:image")}
        if not image_url:
            return og
        try:
            response = await self.client.request(
                "GET",
                urljoin(page_url, image_url),
                headers={"User-Agent": USER_AGENT},
                max_size=self.max_size,
                max_redirects=MAX_REDIRECTS,
                timeout=FETCH_TIMEOUT_S,
                retries=0,
            )
        except http_client.HttpClientError as e:
            logger.info("URL preview image fetch failed: %s", e)
            return og
        media_type, _ = _parse_content_type(response.header("Content-Type"))
        if response.code != 200 or not media_type.startswith("image/"):
            return og
        return {**og, **await self._store_image(response, media_type, user_id)}

    async def _store_image(
        self, response: http_client.HttpResponse, media_type: str, user_id: str
    ) -> dict[str, Any]:
        name = urlsplit(response.url).path.rstrip("/").rsplit("/", 1)[-1][:255] or None
        mxc, stored = await self.repository.upload(user_id, response.body, media_type, name)
        og: dict[str, Any] = {
            "og:image": mxc,
            "og:image:type": media_type,
            "matrix:image:size": stored.length,
        }
        if stored.image is not None:
            og["og:image:width"] = stored.image.width
            og["og:image:height"] = stored.image.height
        return og


def _parse_content_type(header: str | None) -> tuple[str, str | None]:
    """(lower-cased media type, charset parameter or None)."""
    if not header:
        return "application/octet-stream", None
    media_type, *params = header.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


def _decode(body: bytes, charset: str | None) -> str:
    """The page as text: the header's charset, else a <meta charset>, else UTF-8."""
    candidates = [charset]
    match = _META_CHARSET.search(body[:4096])
    if match:
        candidates.append(match.group(1).decode("ascii"))
    for name in candidates:
        if not name:
            continue
        try:
            codecs.lookup(name)
        except LookupError:
            continue
        return body.decode(name, errors="replace")
    return body.decode("utf-8", errors="replace")


class _OpenGraphParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.title: str | None = None
        self.description: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title is None:
            self._in_title = True
        elif tag == "meta":
            self._meta({name: value or "" for name, value in attrs})

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split())

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)

    def _meta(self, attrs: dict[str, str]) -> None:
        content = attrs.get("content")
        if content is None:
            return
        key = attrs.get("property") or attrs.get("name") or ""
        if key.startswith("og:") and key not in self.og:
            self.og[key] = content[:_MAX_VALUE]
        elif key.lower() == "description" and self.description is None:
            self.description = content


def parse_html(body: bytes, charset: str | None) -> dict[str, Any]:
    """OpenGraph tags of a page, with <title> and <meta name=description> as fallbacks."""
    parser = _OpenGraphParser()
    try:
        parser.feed(_decode(body, charset))
        parser.close()
    except Exception:
        # html.parser is lenient; whatever it read before giving up is still useful.
        logger.debug("HTML parser gave up", exc_info=True)
    og: dict[str, Any] = dict(parser.og)
    if "og:title" not in og and parser.title:
        og["og:title"] = parser.title[:_MAX_VALUE]
    if "og:description" not in og and parser.description:
        og["og:description"] = parser.description
    if "og:description" in og:
        og["og:description"] = og["og:description"][:_MAX_DESCRIPTION]
    return og
