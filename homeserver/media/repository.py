"""The media repository: uploads, created-then-uploaded media IDs, downloads and thumbnails.

Media of other servers is asked of a `RemoteMediaSource` (homeserver/media/remote.py, with the
fetcher federation plugs in); without one it is simply not found. Content goes to the
ContentStore (named by hash), metadata to storage.media; images are measured at upload so
thumbnail requests know the original's size without decoding it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet import defer, threads

from homeserver.clock import Clock
from homeserver.config import HomeServerConfig, ThumbnailSize
from homeserver.errors import Codes, LimitExceeded, MatrixError, not_found
from homeserver.http_client import HttpClient, IPPolicy
from homeserver.identifiers import is_valid_server_name, random_string
from homeserver.media import thumbnails
from homeserver.media.coalesce import Coalescer
from homeserver.media.files import ContentStore
from homeserver.media.preview import UrlPreviewer
from storage.media import MediaInfo, MediaStore, StoredContent, ThumbnailRow

logger = logging.getLogger(__name__)

# The spec's alphabet for media IDs: anything else can never name our media (and must never
# reach a file path).
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
MEDIA_ID_LENGTH = 24
# timeout_ms: the spec's default, and our ceiling on how long a download waits for an upload.
DEFAULT_WAIT_MS = 20_000
MAX_WAIT_MS = 60_000
# Another process may complete an upload: poll the database this often while waiting.
_POLL_S = 1.0


def not_yet_uploaded() -> MatrixError:
    return MatrixError(504, Codes.NOT_YET_UPLOADED, "Content has not yet been uploaded")


@dataclass(frozen=True)
class Content:
    """Bytes to send, with what the HTTP layer needs to describe them."""

    body: bytes
    media_type: str
    upload_name: str | None


class RemoteMediaSource(Protocol):
    """Fetches media of other servers into the local cache (federation implements this)."""

    async def get_media(
        self, server_name: str, media_id: str, wait_ms: int, *, fetch: bool = True
    ) -> MediaInfo:
        """The cached media, fetched first if needed (and `fetch`); raises MatrixError (404,
        502, 504)."""
        ...


class MediaRepository:
    def __init__(
        self,
        config: HomeServerConfig,
        store: MediaStore,
        content: ContentStore,
        clock: Clock,
        reactor: Any,
    ) -> None:
        self.server_name = config.server_name
        self.config = config
        self.media_config = config.media
        self.store = store
        self.content = content
        self.clock = clock
        self.reactor = reactor
        self.remote: RemoteMediaSource | None = None
        self.previewer: UrlPreviewer | None = None
        # media_id -> Deferreds of downloads waiting for its upload (in this process).
        self._waiting: dict[str, list[defer.Deferred[None]]] = {}
        # Thumbnails being made, so concurrent requests for the same one make it once.
        self._making: Coalescer[ThumbnailRow] = Coalescer()

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.server_name}/{media_id}"

    # -- uploads ------------------------------------------------------------------------------

    async def upload(
        self, user_id: str, data: bytes, media_type: str, upload_name: str | None
    ) -> tuple[str, StoredContent]:
        """Stores new media; returns its mxc:// URI and what was stored."""
        stored = await self.store_content(data, media_type, upload_name)
        media_id = random_string(MEDIA_ID_LENGTH)
        await self.store.store_local_media(
            media_id, user_id, self.clock.time_msec(), stored, self._authenticated()
        )
        return self.mxc(media_id), stored

    async def create(self, user_id: str) -> tuple[str, int]:
        """Reserves a media ID for a later upload: (mxc URI, unused_expires_at)."""
        now = self.clock.time_msec()
        expires_at = now + self.media_config.unused_expiration_time_ms
        media_id = random_string(MEDIA_ID_LENGTH)
        earliest = await self.store.create_pending_media(
            media_id,
            user_id,
            now,
            expires_at,
            self._authenticated(),
            self.media_config.max_pending_media_uploads,
        )
        if earliest is not None:
            # The spec's answer to too many pending uploads: 429, until the first expires.
            raise LimitExceeded(max(0, earliest - now))
        return self.mxc(media_id), expires_at

    async def upload_to(
        self,
        user_id: str,
        server_name: str,
        media_id: str,
        data: bytes,
        media_type: str,
        upload_name: str | None,
    ) -> None:
        """Fills a media ID reserved by `create`."""
        info = await self._created_media(server_name, media_id)
        if info.user_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "This media ID was created by another user")
        if info.uploaded:
            raise _cannot_overwrite()
        if (info.unused_expires_at or 0) <= self.clock.time_msec():
            raise not_found("This media ID has expired")
        stored = await self.store_content(data, media_type, upload_name)
        if not await self.store.complete_pending_media(
            media_id, user_id, self.clock.time_msec(), stored
        ):
            # Lost a race with another upload to the same ID (or it expired meanwhile).
            raise _cannot_overwrite()
        self._wake(media_id)

    async def store_content(
        self, data: bytes, media_type: str, upload_name: str | None
    ) -> StoredContent:
        """Writes the bytes to the content store and measures them if they are an image."""

        max_pixels = self.media_config.max_image_pixels

        def blocking() -> StoredContent:
            sha256 = self.content.write_blocking(data)
            image = thumbnails.probe_image(data, media_type, max_pixels)
            return StoredContent(sha256, len(data), media_type, upload_name, image)

        return await threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), blocking)

    async def _created_media(self, server_name: str, media_id: str) -> MediaInfo:
        check_server_name(server_name)
        info = None
        if server_name == self.server_name and _MEDIA_ID.match(media_id):
            info = await self.store.get_local_media(media_id)
        if info is None:
            raise not_found("Unknown media ID")
        return info

    def _authenticated(self) -> bool:
        return self.media_config.enable_authenticated_media

    # -- downloads ----------------------------------------------------------------------------

    async def get_media(
        self, server_name: str, media_id: str, wait_ms: int, *, legacy: bool
    ) -> MediaInfo:
        """The uploaded media behind an mxc:// URI, waiting up to wait_ms for a pending upload.

        `legacy` requests (the unauthenticated /_matrix/media/v3 endpoints) do not see media
        uploaded while they were frozen: 404, as the spec allows.
        """
        check_server_name(server_name)
        if not _MEDIA_ID.match(media_id):
            raise not_found("Media not found")
        if server_name != self.server_name:
            if self.remote is None:
                raise not_found("Media not found")
            # While the legacy endpoints are frozen, whatever we fetch now is authenticated
            # media they would not serve: they see only what was cached before.
            fetch = not (legacy and self._authenticated())
            info = await self.remote.get_media(server_name, media_id, wait_ms, fetch=fetch)
        else:
            info = await self._wait_for_upload(media_id, wait_ms)
        if legacy and info.authenticated and self._authenticated():
            raise not_found("Media not found")
        return info

    async def download(
        self, server_name: str, media_id: str, wait_ms: int, *, legacy: bool
    ) -> Content:
        info = await self.get_media(server_name, media_id, wait_ms, legacy=legacy)
        assert info.sha256 is not None
        body = await self._read(info.sha256)
        return Content(body, info.media_type or "application/octet-stream", info.upload_name)

    async def _read(self, sha256: str) -> bytes:
        try:
            return await self.content.read(sha256)
        except FileNotFoundError:
            # The database knows it but the disk does not (removed by hand, a lost volume).
            logger.error("Media content %s is missing from the media store", sha256)
            raise not_found("Media not found") from None

    async def _wait_for_upload(self, media_id: str, wait_ms: int) -> MediaInfo:
        deadline = self.clock.time() + min(max(wait_ms, 0), MAX_WAIT_MS) / 1000
        while True:
            info = await self.store.get_local_media(media_id)
            if info is None:
                raise not_found("Media not found")
            if info.uploaded:
                return info
            remaining = deadline - self.clock.time()
            if remaining <= 0 or (info.unused_expires_at or 0) <= self.clock.time_msec():
                raise not_yet_uploaded()
            await self._wait_once(media_id, min(remaining, _POLL_S))

    async def _wait_once(self, media_id: str, seconds: float) -> None:
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiting.setdefault(media_id, []).append(waiter)
        call = self.clock.call_later(seconds, lambda: waiter.called or waiter.callback(None))
        try:
            await waiter
        finally:
            if call.active():
                call.cancel()
            waiters = self._waiting.get(media_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(media_id, None)

    def _wake(self, media_id: str) -> None:
        for waiter in self._waiting.pop(media_id, []):
            if not waiter.called:
                waiter.callback(None)

    # -- thumbnails ---------------------------------------------------------------------------

    async def thumbnail(
        self,
        server_name: str,
        media_id: str,
        width: int,
        height: int,
        method: str,
        animated: bool,
        wait_ms: int,
        *,
        legacy: bool,
    ) -> Content:
        info = await self.get_media(server_name, media_id, wait_ms, legacy=legacy)
        assert info.sha256 is not None
        if not thumbnails.can_thumbnail(info.media_type):
            raise _cannot_thumbnail()
        image = info.image
        if image is not None:
            if image.width * image.height > self.media_config.max_image_pixels:
                raise MatrixError(413, Codes.TOO_LARGE, "Content is too large to thumbnail")
            if self._original_fits(info, width, height, animated):
                body = await self._read(info.sha256)
                return Content(body, thumbnails.base_type(info.media_type), None)
        size = thumbnails.choose_size(self.media_config.thumbnail_sizes, width, height, method)
        if size is None:
            raise _cannot_thumbnail()
        wants_animation = animated and image is not None and image.animated
        output_type = thumbnails.thumbnail_type(info.media_type, wants_animation)
        row = await self._stored_thumbnail(info.sha256, size, output_type)
        return Content(await self._read(row.sha256), row.media_type, None)

    @staticmethod
    def _original_fits(info: MediaInfo, width: int, height: int, animated: bool) -> bool:
        """The spec: content smaller than the request is answered with the content itself,
        if it can be a thumbnail (and is not animated, unless animation was asked for)."""
        image = info.image
        assert image is not None
        return (
            image.width <= width
            and image.height <= height
            and thumbnails.base_type(info.media_type) in thumbnails.THUMBNAIL_RESPONSE_TYPES
            and (animated or not image.animated)
        )

    async def _stored_thumbnail(
        self, source_sha256: str, size: ThumbnailSize, output_type: str
    ) -> ThumbnailRow:
        row = await self.store.get_thumbnail(
            source_sha256, size.width, size.height, size.method, output_type
        )
        if row is not None:
            return row
        return await self._making.run(
            (source_sha256, size, output_type),
            lambda: self._make_thumbnail(source_sha256, size, output_type),
        )

    async def _make_thumbnail(
        self, source_sha256: str, size: ThumbnailSize, output_type: str
    ) -> ThumbnailRow:
        path = self.content.path_for(source_sha256)
        max_pixels = self.media_config.max_image_pixels

        def blocking() -> ThumbnailRow:
            data = thumbnails.make_thumbnail(path, size, output_type, max_pixels)
            return ThumbnailRow(self.content.write_blocking(data), len(data), output_type)

        try:
            row = await threads.deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), blocking
            )
        except thumbnails.ImageTooLarge:
            raise MatrixError(413, Codes.TOO_LARGE, "Content is too large to thumbnail") from None
        except thumbnails.CannotThumbnail as e:
            logger.info("Cannot thumbnail %s: %s", source_sha256, e)
            raise _cannot_thumbnail() from None
        await self.store.store_thumbnail(
            source_sha256, size.width, size.height, size.method, row, self.clock.time_msec()
        )
        return row


def check_server_name(server_name: str) -> None:
    if not is_valid_server_name(server_name):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid server name")


def _cannot_overwrite() -> MatrixError:
    return MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")


def _cannot_thumbnail() -> MatrixError:
    return MatrixError(400, Codes.UNKNOWN, "Cannot generate thumbnails for the requested content")


def build_media_repository(
    config: HomeServerConfig, store: MediaStore, clock: Clock, reactor: Any
) -> MediaRepository:
    """The repository as server.py wires it: files under media_store_path, and URL previews
    through their own outbound client (url_preview_ip_range_*) when enabled."""
    repository = MediaRepository(
        config, store, ContentStore(config.media_store_path, reactor), clock, reactor
    )
    if config.url_preview_enabled:
        media = config.media
        policy = IPPolicy(
            media.url_preview_ip_range_blacklist, media.url_preview_ip_range_whitelist
        )
        client = HttpClient(reactor, policy, max_response_size=media.max_spider_size)
        repository.previewer = UrlPreviewer(
            repository, client, store, clock, reactor, media.max_spider_size
        )
    return repository
