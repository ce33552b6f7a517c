"""The media repository's tables: local media, cached remote media, thumbnails and cached URL
previews.

File contents are not here: they live in the content store (homeserver/media/files.py), named by
their SHA-256. These rows say which media ID or thumbnail is which content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn

_MEDIA_COLUMNS = (
    "media_id, user_id, created_ts, unused_expires_at, upload_ts, media_type, upload_name,"
    " media_length, sha256, authenticated, width, height, animated"
)


@dataclass(frozen=True)
class ImageInfo:
    """What the thumbnailer learnt about an image when it was uploaded."""

    width: int
    height: int
    animated: bool


@dataclass(frozen=True)
class StoredContent:
    """Content written to the content store."""

    sha256: str
    length: int
    media_type: str
    upload_name: str | None
    image: ImageInfo | None


@dataclass(frozen=True)
class MediaInfo:
    media_id: str
    user_id: str | None  # the uploader; None for media of other servers
    created_ts: int
    # Set while the media ID waits for its upload (POST /create); None once uploaded.
    unused_expires_at: int | None
    upload_ts: int | None
    media_type: str | None
    upload_name: str | None
    length: int | None
    sha256: str | None
    authenticated: bool
    image: ImageInfo | None
    origin: str | None = None  # the server of other servers' media, None for ours

    @property
    def uploaded(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class ThumbnailRow:
    sha256: str
    length: int
    media_type: str


def _media_from_row(row: tuple[Any, ...]) -> MediaInfo:
    # The first nine columns of _MEDIA_COLUMNS are MediaInfo's first nine fields, in order.
    width, height, animated = row[10:13]
    image = ImageInfo(width, height, bool(animated)) if width is not None else None
    return MediaInfo(*row[:9], authenticated=bool(row[9]), image=image)


_REMOTE_COLUMNS = (
    "media_id, fetched_ts, media_type, upload_name, media_length, sha256, authenticated,"
    " width, height, animated"
)


def _remote_media_from_row(origin: str, row: tuple[Any, ...]) -> MediaInfo:
    media_id, fetched_ts, media_type, upload_name, length, sha256, authenticated = row[:7]
    width, height, animated = row[7:10]
    image = ImageInfo(width, height, bool(animated)) if width is not None else None
    return MediaInfo(
        media_id,
        None,
        fetched_ts,
        None,
        fetched_ts,
        media_type,
        upload_name,
        length,
        sha256,
        authenticated=bool(authenticated),
        image=image,
        origin=origin,
    )


def _content_params(content: StoredContent) -> tuple[Any, ...]:
    image = content.image
    return (
        content.media_type,
        content.upload_name,
        content.length,
        content.sha256,
        image.width if image else None,
        image.height if image else None,
        bool(image and image.animated),
    )


class MediaStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_local_media(self, media_id: str) -> MediaInfo | None:
        row = await self.db.run(
            "get_local_media",
            lambda txn: txn.query_one(
                f"SELECT {_MEDIA_COLUMNS} FROM local_media WHERE media_id = ?", (media_id,)
            ),
        )
        return _media_from_row(row) if row else None

    async def store_local_media(
        self,
        media_id: str,
        user_id: str,
        now_ms: int,
        content: StoredContent,
        authenticated: bool,
    ) -> None:
        await self.db.run(
            "store_local_media",
            lambda txn: txn.execute(
                "INSERT INTO local_media (media_id, user_id, created_ts, upload_ts, authenticated,"
                " media_type, upload_name, media_length, sha256, width, height, animated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (media_id, user_id, now_ms, now_ms, authenticated, *_content_params(content)),
            ),
        )

    async def create_pending_media(
        self,
        media_id: str,
        user_id: str,
        now_ms: int,
        expires_at: int,
        authenticated: bool,
        max_pending: int,
    ) -> int | None:
        """Reserves a media ID for a later upload, unless the user already holds `max_pending`
        unexpired ones: then nothing is stored and the earliest of their expiries is returned."""

        def txn_fn(txn: Txn) -> int | None:
            row = txn.query_one(
                "SELECT COUNT(*), MIN(unused_expires_at) FROM local_media"
                " WHERE user_id = ? AND sha256 IS NULL AND unused_expires_at > ?",
                (user_id, now_ms),
            )
            if row and row[0] >= max_pending:
                return int(row[1])
            txn.execute(
                "INSERT INTO local_media (media_id, user_id, created_ts, unused_expires_at,"
                " authenticated) VALUES (?, ?, ?, ?, ?)",
                (media_id, user_id, now_ms, expires_at, authenticated),
            )
            return None

        return await self.db.run("create_pending_media", txn_fn)

    async def complete_pending_media(
        self, media_id: str, user_id: str, now_ms: int, content: StoredContent
    ) -> bool:
        """Fills a created media ID with its content; False if it was filled (or expired)
        meanwhile. The WHERE clause makes two racing uploads safe: only one row update wins."""

        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                "UPDATE local_media SET media_type = ?, upload_name = ?, media_length = ?,"
                " sha256 = ?, width = ?, height = ?, animated = ?, upload_ts = ?,"
                " unused_expires_at = NULL"
                " WHERE media_id = ? AND user_id = ? AND sha256 IS NULL AND unused_expires_at > ?",
                (*_content_params(content), now_ms, media_id, user_id, now_ms),
            )
            return txn.rowcount == 1

        return await self.db.run("complete_pending_media", txn_fn)

    async def get_remote_media(self, origin: str, media_id: str) -> MediaInfo | None:
        """Media of another server that is in the cache."""
        row = await self.db.run(
            "get_remote_media",
            lambda txn: txn.query_one(
                f"SELECT {_REMOTE_COLUMNS} FROM remote_media_cache"
                " WHERE media_origin = ? AND media_id = ?",
                (origin, media_id),
            ),
        )
        return _remote_media_from_row(origin, row) if row else None

    async def store_remote_media(
        self,
        origin: str,
        media_id: str,
        now_ms: int,
        content: StoredContent,
        authenticated: bool,
    ) -> MediaInfo:
        """Caches media fetched from another server; if another process cached the same media
        meanwhile, its row stays and is returned."""

        def txn_fn(txn: Txn) -> MediaInfo:
            txn.execute(
                "INSERT INTO remote_media_cache (media_origin, media_id, fetched_ts,"
                " authenticated, media_type, upload_name, media_length, sha256, width, height,"
                " animated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (origin, media_id, now_ms, authenticated, *_content_params(content)),
            )
            row = txn.query_one(
                f"SELECT {_REMOTE_COLUMNS} FROM remote_media_cache"
                " WHERE media_origin = ? AND media_id = ?",
                (origin, media_id),
            )
            assert row is not None
            return _remote_media_from_row(origin, row)

        return await self.db.run("store_remote_media", txn_fn)

    async def get_thumbnail(
        self, source_sha256: str, width: int, height: int, method: str, media_type: str
    ) -> ThumbnailRow | None:
        row = await self.db.run(
            "get_thumbnail",
            lambda txn: txn.query_one(
                "SELECT thumbnail_sha256, thumbnail_length FROM media_thumbnails"
                " WHERE source_sha256 = ? AND width = ? AND height = ? AND method = ?"
                " AND media_type = ?",
                (source_sha256, width, height, method, media_type),
            ),
        )
        return ThumbnailRow(row[0], row[1], media_type) if row else None

    async def store_thumbnail(
        self,
        source_sha256: str,
        width: int,
        height: int,
        method: str,
        thumbnail: ThumbnailRow,
        now_ms: int,
    ) -> None:
        # Two requests may make the same thumbnail at once: the first row stays.
        await self.db.run(
            "store_thumbnail",
            lambda txn: txn.execute(
                "INSERT INTO media_thumbnails (source_sha256, width, height, method, media_type,"
                " thumbnail_sha256, thumbnail_length, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    source_sha256,
                    width,
                    height,
                    method,
                    thumbnail.media_type,
                    thumbnail.sha256,
                    thumbnail.length,
                    now_ms,
                ),  # fmt: skip
            ),
        )

    async def get_url_preview(self, url: str, now_ms: int) -> dict[str, Any] | None:
        row = await self.db.run(
            "get_url_preview",
            lambda txn: txn.query_one(
                "SELECT og_json FROM url_previews WHERE url = ? AND expires_ts > ?", (url, now_ms)
            ),
        )
        return json.loads(row[0]) if row else None

    async def store_url_preview(
        self, url: str, now_ms: int, expires_ts: int, og: dict[str, Any]
    ) -> None:
        await self.db.run(
            "store_url_preview",
            lambda txn: txn.execute(
                "INSERT INTO url_previews (url, fetched_ts, expires_ts, og_json)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET"
                " fetched_ts = excluded.fetched_ts, expires_ts = excluded.expires_ts,"
                " og_json = excluded.og_json",
                (url, now_ms, expires_ts, json.dumps(og)),
            ),
        )
