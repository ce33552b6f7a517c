"""Other servers' media, fetched once and served from the local cache after that.

The first request for an mxc:// URI of another server fetches it (through a `MediaFetcher`,
which federation provides), writes the bytes to the content store and a row to
remote_media_cache; every later request, thumbnails included, is served from there. Concurrent
requests for the same media wait for the one fetch under way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from homeserver.errors import not_found
from homeserver.media.coalesce import Coalescer
from storage.media import MediaInfo

if TYPE_CHECKING:
    from homeserver.media.repository import MediaRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedMedia:
    body: bytes
    media_type: str
    upload_name: str | None


class MediaFetcher(Protocol):
    async def fetch(
        self, server_name: str, media_id: str, max_size: int, wait_ms: int
    ) -> FetchedMedia:
        """The media from its server. Raises MatrixError: 404 when the server does not have
        it, 504 M_NOT_YET_UPLOADED, 502 when it is too large or could not be fetched."""
        ...


class RemoteMediaCache:
    """The media repository's RemoteMediaSource."""

    def __init__(self, repository: MediaRepository, fetcher: MediaFetcher) -> None:
        self.repository = repository
        self.store = repository.store
        self.fetcher = fetcher
        # The spec leaves the limit to us; Synapse's is the upload limit too.
        self.max_size = repository.config.max_upload_size
        self._fetching: Coalescer[MediaInfo] = Coalescer()

    async def get_media(
        self, server_name: str, media_id: str, wait_ms: int, *, fetch: bool = True
    ) -> MediaInfo:
        """The cached media, fetched first if it is not cached yet (unless `fetch` is false)."""
        info = await self.store.get_remote_media(server_name, media_id)
        if info is not None:
            return info
        if not fetch:
            raise not_found("Media not found")
        return await self._fetching.run(
            (server_name, media_id), lambda: self._fetch(server_name, media_id, wait_ms)
        )

    async def _fetch(self, server_name: str, media_id: str, wait_ms: int) -> MediaInfo:
        # A fetch that finished between our look at the cache and this one starting.
        info = await self.store.get_remote_media(server_name, media_id)
        if info is not None:
            return info
        fetched = await self.fetcher.fetch(server_name, media_id, self.max_size, wait_ms)
        repository = self.repository
        stored = await repository.store_content(
            fetched.body, fetched.media_type, fetched.upload_name
        )
        logger.info(
            "Cached mxc://%s/%s (%d bytes, %s)", server_name, media_id, stored.length,
            stored.media_type,
        )
        return await self.store.store_remote_media(
            server_name,
            media_id,
            repository.clock.time_msec(),
            stored,
            repository.media_config.enable_authenticated_media,
        )
