"""Federated media, both ways.

In: /_matrix/federation/v1/media/{download,thumbnail}/{mediaId} serve this server's media to
other servers as multipart/mixed (JSON metadata, then the bytes), as the spec describes.

Out: `FederationMediaFetcher` fetches another server's media for the local cache
(homeserver/media/remote.py): the authenticated federation endpoint first, the deprecated
/_matrix/media/v3/download (with allow_remote=false) only when the remote answers that it does
not know the new one (404 M_UNRECOGNIZED). A `Location` in the media part is followed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Response, Router
from client_api.servlets.media import (
    disposition_for,
    thumbnail_filename,
    thumbnail_params,
    wait_ms_param,
)
from federation.client import (
    FederationClient,
    FederationError,
    FederationResponseTooLarge,
    federation_path,
)
from homeserver.errors import Codes, MatrixError, not_found
from homeserver.http_client import HttpClientError, ResponseTooLarge
from homeserver.media import multipart
from homeserver.media.remote import FetchedMedia, RemoteMediaCache
from homeserver.media.repository import Content, not_yet_uploaded

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

# Room for the multipart framing and the metadata part beside the media itself.
_MULTIPART_OVERHEAD = 64 * 1024
# On top of the time the remote may wait for a pending upload: the transfer itself.
_TRANSFER_TIMEOUT_S = 120.0
_MAX_CONTENT_TYPE = 255
_MAX_FILENAME = 1024


def register_routes(router: Router, hs: HomeServer) -> None:
    repository = hs.media

    async def download(request: ApiRequest) -> Response:
        # Only our own media: other servers must ask the server in the mxc:// URI.
        content = await repository.download(
            hs.server_name, request.path_params["mediaId"], wait_ms_param(request), legacy=False
        )
        return _multipart_response(content, content.upload_name, thumbnail=False)

    async def thumbnail(request: ApiRequest) -> Response:
        wanted = thumbnail_params(request)
        content = await repository.thumbnail(
            hs.server_name,
            request.path_params["mediaId"],
            wanted.width,
            wanted.height,
            wanted.method,
            wanted.animated,
            wait_ms_param(request),
            legacy=False,
        )
        return _multipart_response(content, thumbnail_filename(content), thumbnail=True)

    prefix = "/_matrix/federation/v1/media"
    router.add("GET", f"{prefix}/download/{{mediaId}}", download, auth="federation")
    router.add("GET", f"{prefix}/thumbnail/{{mediaId}}", thumbnail, auth="federation")


def install_remote_media(hs: HomeServer) -> None:
    """Lets the media repository fetch other servers' media over federation."""
    if hs.media.remote is None:
        hs.media.remote = RemoteMediaCache(hs.media, FederationMediaFetcher(hs.federation_client))


def _multipart_response(content: Content, filename: str | None, *, thumbnail: bool) -> Response:
    part_headers = {
        "Content-Type": content.media_type,
        "Content-Disposition": disposition_for(content.media_type, filename, thumbnail=thumbnail),
    }
    content_type, body = multipart.build({}, part_headers, content.body)
    return Response(200, body, content_type)


class FederationMediaFetcher:
    """homeserver.media.remote's MediaFetcher, over federation."""

    def __init__(self, client: FederationClient) -> None:
        self.client = client

    async def fetch(
        self, server_name: str, media_id: str, max_size: int, wait_ms: int
    ) -> FetchedMedia:
        path = federation_path("/_matrix/federation/v1/media/download/{}", media_id)
        try:
            headers, body = await self.client.get_raw(
                server_name,
                path,
                {"timeout_ms": str(wait_ms)},
                max_size=max_size + _MULTIPART_OVERHEAD,
                timeout=_timeout(wait_ms),
            )
        except FederationError as e:
            if e.code == 404 and e.errcode == Codes.UNRECOGNIZED:
                return await self._fetch_legacy(server_name, media_id, max_size, wait_ms)
            raise _fetch_error(server_name, media_id, e) from None
        try:
            part = multipart.parse(_header(headers, "Content-Type"), body)
        except multipart.MultipartError as e:
            logger.info("Bad media download from %s for %s: %s", server_name, media_id, e)
            raise _failed() from None
        location = part.header("Location")
        if location is not None:
            return await self._follow(server_name, media_id, location, part, max_size)
        if len(part.body) > max_size:
            raise _too_large()
        return FetchedMedia(
            part.body,
            _media_type(part.header("Content-Type")),
            _filename(part.header("Content-Disposition")),
        )

    async def _fetch_legacy(
        self, server_name: str, media_id: str, max_size: int, wait_ms: int
    ) -> FetchedMedia:
        """The deprecated unauthenticated endpoint, for servers older than Matrix 1.11."""
        path = federation_path("/_matrix/media/v3/download/{}/{}", server_name, media_id)
        try:
            headers, body = await self.client.get_raw(
                server_name,
                path,
                {"allow_remote": "false", "timeout_ms": str(wait_ms)},
                max_size=max_size,
                signed=False,
                timeout=_timeout(wait_ms),
            )
        except FederationError as e:
            raise _fetch_error(server_name, media_id, e) from None
        return FetchedMedia(
            body,
            _media_type(_header(headers, "Content-Type")),
            _filename(_header(headers, "Content-Disposition")),
        )

    async def _follow(
        self,
        server_name: str,
        media_id: str,
        location: str,
        part: multipart.MediaPart,
        max_size: int,
    ) -> FetchedMedia:
        """The media where the remote's Location points (a CDN, say): a plain GET through the
        federation client's IP policy."""
        try:
            response = await self.client.http.request(
                "GET", location, max_size=max_size, max_redirects=5, timeout=_TRANSFER_TIMEOUT_S
            )
        except ResponseTooLarge:
            raise _too_large() from None
        except HttpClientError as e:
            logger.info("Could not follow %s's Location for %s: %s", server_name, media_id, e)
            raise _failed() from None
        if response.code != 200:
            logger.info(
                "%s's Location for %s answered %d", server_name, media_id, response.code
            )
            raise _failed()
        return FetchedMedia(
            response.body,
            _media_type(response.header("Content-Type") or part.header("Content-Type")),
            _filename(response.header("Content-Disposition"))
            or _filename(part.header("Content-Disposition")),
        )


def _fetch_error(server_name: str, media_id: str, error: FederationError) -> MatrixError:
    """What a client is told when the media's server could not give it to us."""
    if isinstance(error, FederationResponseTooLarge):
        return _too_large()
    errcode = error.errcode
    if error.code == 404:
        return not_found("Media not found")
    if error.code == 504 and errcode == Codes.NOT_YET_UPLOADED:
        return not_yet_uploaded()
    if errcode == Codes.TOO_LARGE:
        return _too_large()
    logger.info("Failed to fetch mxc://%s/%s: %s", server_name, media_id, error)
    return _failed()


def _too_large() -> MatrixError:
    return MatrixError(502, Codes.TOO_LARGE, "Remote media is too large")


def _failed() -> MatrixError:
    return MatrixError(502, Codes.UNKNOWN, "Failed to fetch remote media")


def _timeout(wait_ms: int) -> float:
    return wait_ms / 1000 + _TRANSFER_TIMEOUT_S


def _header(headers: Any, name: str) -> str | None:
    values = headers.getRawHeaders(name)
    return values[0] if values else None


def _media_type(value: str | None) -> str:
    value = (value or "").strip()
    if not value or len(value) > _MAX_CONTENT_TYPE or not value.isascii() or not value.isprintable():
        return "application/octet-stream"
    return value


def _filename(disposition: str | None) -> str | None:
    name = multipart.filename_from_disposition(disposition)
    if name is None or len(name) > _MAX_FILENAME or not name.isprintable():
        return None
    return name
