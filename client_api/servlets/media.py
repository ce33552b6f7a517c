"""The content repository: /_matrix/media/* (the "media" resource) and the authenticated
/_matrix/client/v1/media/* (the "client" resource). Media of other servers is fetched over
federation and cached (homeserver/media/remote.py, federation/servlets/media.py).

Downloads carry headers that keep uploaded content from acting as a web page of this origin:
a sandboxing Content-Security-Policy, nosniff, and `inline` only for the spec's safe types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from client_api.http import ApiRequest, Response, Router
from homeserver.errors import Codes, MatrixError
from homeserver.media.repository import DEFAULT_WAIT_MS, MAX_WAIT_MS, Content

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# The spec's "Serving inline content" list: types a browser will not run as a document.
INLINE_TYPES = frozenset(
    {
        "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
        "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
        "video/mp4", "video/webm", "video/ogg", "video/quicktime",
        "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave",
        "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
    }
)  # fmt: skip

# Synapse's policy: the spec's recommendation plus media-src 'self'.
CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
    "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"
)
_MAX_CONTENT_TYPE = 255
_MAX_FILENAME = 1024
# RFC 5987 attr-char, besides the letters, digits and "_.-~" that quote() always keeps.
_ATTR_CHAR_EXTRA = "!#$&+^`|"
_LEGACY_VERSIONS = ("v3", "r0", "v1")


def content_disposition(disposition: str, filename: str | None) -> str:
    """RFC 6266: a quoted filename when it is plain ASCII, else RFC 5987's filename*."""
    if not filename:
        return disposition
    if filename.isascii() and filename.isprintable() and not set(filename) & {'"', "\\"}:
        return f'{disposition}; filename="{filename}"'
    encoded = quote(filename.encode("utf-8"), safe=_ATTR_CHAR_EXTRA)
    return f"{disposition}; filename*=utf-8''{encoded}"


def disposition_for(media_type: str, filename: str | None, *, thumbnail: bool) -> str:
    """The Content-Disposition of media: `inline` only for the spec's safe types."""
    base_type = media_type.split(";", 1)[0].strip().lower()
    # Thumbnails are always images of the spec's thumbnail types, which must be inline.
    disposition = "inline" if thumbnail or base_type in INLINE_TYPES else "attachment"
    return content_disposition(disposition, filename)


def thumbnail_filename(content: Content) -> str:
    return f"thumbnail.{content.media_type.rsplit('/', 1)[-1]}"


def media_response(
    content: Content, filename: str | None, *, thumbnail: bool, authenticated: bool
) -> Response:
    headers = {
        "Content-Disposition": disposition_for(content.media_type, filename, thumbnail=thumbnail),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Security-Policy": "sandbox;",  # older browsers' name for it
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Referrer-Policy": "no-referrer",
        # Media never changes once uploaded; but what needed an access token must not be
        # handed out again by a shared cache.
        "Cache-Control": f"{'private' if authenticated else 'public'}, max-age=86400",
    }
    return Response(200, content.body, content.media_type, headers)


def wait_ms_param(request: ApiRequest) -> int:
    """timeout_ms: how long a download may wait for a pending upload, within our ceiling."""
    wait = request.query_int("timeout_ms", DEFAULT_WAIT_MS, minimum=0)
    assert wait is not None
    return min(wait, MAX_WAIT_MS)


@dataclass(frozen=True)
class ThumbnailParams:
    width: int
    height: int
    method: str
    animated: bool


def thumbnail_params(request: ApiRequest) -> ThumbnailParams:
    width = request.query_int("width", required=True, minimum=1, maximum=100_000)
    height = request.query_int("height", required=True, minimum=1, maximum=100_000)
    method = request.query_str("method", "scale")
    if method not in ("crop", "scale"):
        raise MatrixError(400, Codes.INVALID_PARAM, "method must be 'crop' or 'scale'")
    assert width is not None and height is not None
    return ThumbnailParams(width, height, method, request.query_bool("animated", False))


def _upload_params(request: ApiRequest, max_size: int) -> tuple[str, str | None]:
    """The content type (header) and file name (query) of an upload."""
    media_type = (request.header("Content-Type") or "").strip() or "application/octet-stream"
    if (
        len(media_type) > _MAX_CONTENT_TYPE
        or not media_type.isascii()
        or not media_type.isprintable()
    ):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid Content-Type")
    filename = request.query_str("filename") or None
    if filename is not None and (len(filename) > _MAX_FILENAME or not filename.isprintable()):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid filename")
    if len(request.body) > max_size:
        # The transport refuses these first; this guards against a route without the limit.
        raise MatrixError(413, Codes.TOO_LARGE, "Upload is too large")
    return media_type, filename


def _requester_id(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


class _Handlers:
    """Every media endpoint, over one HomeServer."""

    def __init__(self, hs: HomeServer) -> None:
        self.hs = hs
        self.repository = hs.media
        self.max_upload_size = hs.config.max_upload_size

    async def upload(self, request: ApiRequest) -> tuple[int, Any]:
        media_type, filename = _upload_params(request, self.max_upload_size)
        mxc, _ = await self.repository.upload(
            _requester_id(request), request.body, media_type, filename
        )
        return 200, {"content_uri": mxc}

    async def create(self, request: ApiRequest) -> tuple[int, Any]:
        mxc, expires_at = await self.repository.create(_requester_id(request))
        return 200, {"content_uri": mxc, "unused_expires_at": expires_at}

    async def upload_to(self, request: ApiRequest) -> tuple[int, Any]:
        media_type, filename = _upload_params(request, self.max_upload_size)
        params = request.path_params
        await self.repository.upload_to(
            _requester_id(request),
            params["serverName"],
            params["mediaId"],
            request.body,
            media_type,
            filename,
        )
        return 200, {}

    async def download(self, request: ApiRequest, *, legacy: bool = False) -> Response:
        params = request.path_params
        if legacy and not self._remote_allowed(request):
            raise MatrixError(404, Codes.NOT_FOUND, "Media not found")
        content = await self.repository.download(
            params["serverName"], params["mediaId"], wait_ms_param(request), legacy=legacy
        )
        filename = params.get("fileName") or content.upload_name
        return media_response(content, filename, thumbnail=False, authenticated=not legacy)

    async def legacy_download(self, request: ApiRequest) -> Response:
        return await self.download(request, legacy=True)

    async def thumbnail(self, request: ApiRequest, *, legacy: bool = False) -> Response:
        params = request.path_params
        if legacy and not self._remote_allowed(request):
            raise MatrixError(404, Codes.NOT_FOUND, "Media not found")
        wanted = thumbnail_params(request)
        content = await self.repository.thumbnail(
            params["serverName"],
            params["mediaId"],
            wanted.width,
            wanted.height,
            wanted.method,
            wanted.animated,
            wait_ms_param(request),
            legacy=legacy,
        )
        return media_response(
            content, thumbnail_filename(content), thumbnail=True, authenticated=not legacy
        )

    async def legacy_thumbnail(self, request: ApiRequest) -> Response:
        return await self.thumbnail(request, legacy=True)

    async def config(self, request: ApiRequest) -> tuple[int, Any]:
        return 200, {"m.upload.size": self.max_upload_size}

    async def preview_url(self, request: ApiRequest) -> tuple[int, Any]:
        previewer = self.repository.previewer
        if previewer is None:
            # Synapse's answer when previews are off: as if the endpoint did not exist.
            raise MatrixError(404, Codes.UNRECOGNIZED, "URL previews are disabled")
        url = request.query_str("url", required=True)
        # `ts` asks for a preview as of a time; the spec lets us answer with a newer one.
        request.query_int("ts")
        assert url is not None
        return 200, await previewer.preview(url, _requester_id(request))

    def _remote_allowed(self, request: ApiRequest) -> bool:
        """allow_remote=false (legacy endpoints) forbids fetching from other servers."""
        server_name = request.path_params["serverName"]
        return server_name == self.hs.server_name or request.query_bool("allow_remote", True)


def register_media_routes(router: Router, hs: HomeServer) -> None:
    """/_matrix/media/{v3,r0,v1}/*: uploads, and the deprecated unauthenticated downloads."""
    h = _Handlers(hs)
    limit = hs.config.max_upload_size
    for version in _LEGACY_VERSIONS:
        prefix = f"/_matrix/media/{version}"
        router.add("POST", f"{prefix}/upload", h.upload, max_body_size=limit)
        router.add(
            "PUT", f"{prefix}/upload/{{serverName}}/{{mediaId}}", h.upload_to, max_body_size=limit
        )
        for suffix in ("", "/{fileName}"):
            path = f"{prefix}/download/{{serverName}}/{{mediaId}}{suffix}"
            router.add("GET", path, h.legacy_download, auth="none")
        router.add(
            "GET", f"{prefix}/thumbnail/{{serverName}}/{{mediaId}}", h.legacy_thumbnail, auth="none"
        )
        router.add("GET", f"{prefix}/config", h.config, allow_guest=True)
        router.add("GET", f"{prefix}/preview_url", h.preview_url, allow_guest=True)
    router.add("POST", "/_matrix/media/v1/create", h.create, ratelimit="media_create")


def register_client_routes(router: Router, hs: HomeServer) -> None:
    """/_matrix/client/v1/media/*: the authenticated downloads (Matrix 1.11)."""
    h = _Handlers(hs)
    v1 = {"versions": ("v1",), "allow_guest": True}
    for suffix in ("", "/{fileName}"):
        router.add_client(
            "GET", f"/media/download/{{serverName}}/{{mediaId}}{suffix}", h.download, **v1
        )
    router.add_client("GET", "/media/thumbnail/{serverName}/{mediaId}", h.thumbnail, **v1)
    router.add_client("GET", "/media/config", h.config, **v1)
    router.add_client("GET", "/media/preview_url", h.preview_url, **v1)
