"""The bundled web client: the files of `web/dist`, served at `/` beside the API.

A listener that serves the `client` resource answers GET and HEAD of any path the API does not
know (and that is not under `/_matrix`, `/_synapse`, `/.well-known` or `/health`) from the built
client: a file when there is one, else `index.html`, so that the app's own routes survive a
reload (the single-page-app fallback). Everything else, and every other method, is the API's.

When `web/dist` was not built (no Node.js where the server was installed), the same paths answer
a short page that says so and how to build it; the server starts all the same.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from twisted.web import server
from twisted.web.resource import Resource

from client_api.http import JsonResource, split_path
from client_api.http_site import write_body
from homeserver.errors import MatrixError

logger = logging.getLogger(__name__)

# The repository's web/dist, read when a listener is built (tests point it elsewhere). A new
# build is served after a restart.
DIST_DIR: Path = Path(__file__).resolve().parent.parent / "web" / "dist"

# First path segments that belong to the server, whatever the router says.
RESERVED_SEGMENTS = frozenset({"_matrix", "_synapse", ".well-known", "health"})

# Pinned rather than guessed: the platform's mime.types varies, and a wrong type on a module
# script stops the app from loading.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",
}

# The entry points must be revalidated on every load, or a new build would never be seen.
# Everything under assets/ has a content hash in its name and never changes.
NO_CACHE_FILES = frozenset({"index.html", "sw.js", "manifest.webmanifest"})
IMMUTABLE = b"public, max-age=31536000, immutable"
NO_CACHE = b"no-cache"
SHORT_CACHE = b"public, max-age=3600"

NOT_BUILT_PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Web client not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>The web client was not built</h1>
<p>This homeserver is running, and its Matrix API is at <code>/_matrix</code>: any Matrix client
can use it. Its bundled web client needs Node.js 20 or later to build.</p>
<p>Build it with <code>make run</code> (which builds it when Node.js is installed), or by hand:</p>
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>then reload this page.</p>
</body>
</html>
"""

@dataclass(frozen=True)
class _File:
    body: bytes
    etag: bytes
    content_type: bytes
    cache_control: bytes


def load_dist(dist_dir: Path) -> dict[str, _File] | None:
    """Every file of the build, by its path relative to `dist_dir` ("assets/index-x.js"), or
    None when there is no build. Read once when a listener is built: the build is a few hundred
    KiB, and requests then never touch the disk (nor block the reactor on it). Hidden files,
    and symlinks that lead outside the directory, are left out."""
    root = Path(dist_dir)
    if not (root / "index.html").is_file():
        return None
    real_root = root.resolve()
    files: dict[str, _File] = {}
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in names:
            path = Path(directory, name)
            if name.startswith(".") or not path.resolve().is_relative_to(real_root):
                continue
            relative = path.relative_to(root).as_posix()
            body = path.read_bytes()
            files[relative] = _File(
                body,
                b'"%s"' % hashlib.sha256(body).hexdigest()[:32].encode("ascii"),
                _content_type(path),
                _cache_control(relative),
            )
    return files


class WebClientResource(Resource):
    """Serves a built single-page app (GET and HEAD only), or a page saying it was not built."""

    isLeaf = True

    def __init__(self, files: dict[str, _File] | None) -> None:
        super().__init__()
        self.files = files

    def render_GET(self, request: server.Request) -> int:
        self._respond(request)
        return server.NOT_DONE_YET

    # Twisted's Resource would route HEAD to render_GET too; said here so it is plain.
    render_HEAD = render_GET

    def _respond(self, request: server.Request) -> None:
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        segments = _safe_segments(request.path)
        if segments is None:
            _text(request, 400, b"Bad path\n")
            return
        found = self.files.get("/".join(segments)) if self.files is not None else None
        if found is None and _looks_like_file(segments):
            _text(request, 404, b"Not found\n")
        elif self.files is None:
            request.setHeader(b"Cache-Control", NO_CACHE)
            write_body(request, 200, NOT_BUILT_PAGE, b"text/html; charset=utf-8")
        else:
            # The app's own routes (/rooms/...): index.html, and the app takes it from there.
            self._send(request, found or self.files["index.html"])

    def _send(self, request: server.Request, entry: _File) -> None:
        request.setHeader(b"Cache-Control", entry.cache_control)
        request.setHeader(b"ETag", entry.etag)
        if entry.content_type.startswith(b"text/html"):
            # Nobody may frame the app (clickjacking).
            request.setHeader(b"Content-Security-Policy", b"frame-ancestors 'none'")
        if_none_match = request.getHeader(b"If-None-Match")
        if if_none_match is not None and entry.etag in _etags(if_none_match):
            request.setResponseCode(304)
            request.finish()
            return
        write_body(request, 200, entry.body, entry.content_type)


class ApiWithWebClient(Resource):
    """A listener's root: the API, with the web client answering what the API does not know."""

    isLeaf = True

    def __init__(self, api: JsonResource, web: WebClientResource) -> None:
        super().__init__()
        self.api = api
        self.web = web

    def body_limit_for(self, method: bytes, path: bytes) -> int:
        # Consulted by HomeserverSite before the body arrives; the web client takes no bodies.
        return self.api.body_limit_for(method, path)

    def render(self, request: server.Request) -> int:
        if self.is_for_web_client(request.method, request.path):
            return self.web.render(request)
        return self.api.render(request)

    def is_for_web_client(self, method: bytes, path: bytes) -> bool:
        if method not in (b"GET", b"HEAD"):
            return False
        first = path.split(b"/", 2)[1] if path.startswith(b"/") else b""
        if unquote_to_bytes(first).decode("utf-8", "replace") in RESERVED_SEGMENTS:
            return False
        try:
            self.api.router.find(method.decode("ascii", "replace"), split_path(path))
        except MatrixError as error:
            # Unknown to the API: ours. A known path with another method (405), or a bad
            # path (400), is for the API to answer.
            return error.http_status == 404
        return False


def with_web_client(api: JsonResource, dist_dir: Path | None = None) -> ApiWithWebClient:
    """Wraps a listener's API resource so that the web client is served beside it."""
    dist = Path(dist_dir if dist_dir is not None else DIST_DIR)
    files = load_dist(dist)
    if files is None:
        logger.warning(
            "The web client was not built (%s has no index.html): / explains how to build "
            "it (cd web && npm ci && npm run build, or make run with Node.js installed)",
            dist,
        )
    else:
        logger.info("Serving the web client from %s at / (%d files)", dist, len(files))
    return ApiWithWebClient(api, WebClientResource(files))


def _safe_segments(raw_path: bytes) -> list[str] | None:
    """The decoded path segments, or None for anything that could leave the directory."""
    segments: list[str] = []
    for raw in raw_path.split(b"/")[1:]:
        try:
            segment = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if segment in (".", "..") or any(c in segment for c in ("/", "\\", "\x00")):
            return None
        if segment.startswith(".") or (os.sep != "/" and os.sep in segment):
            return None
        segments.append(segment)
    return segments


def _looks_like_file(segments: list[str]) -> bool:
    """A request for a static file (a script, an icon), answered 404 rather than with the app:
    a <script> must not receive HTML. App routes may hold dots (room IDs, aliases)."""
    if not segments or segments[-1] == "":
        return False
    if segments[0] == "assets":
        return True
    return Path(segments[-1]).suffix.lower() in CONTENT_TYPES


def _etags(header: bytes) -> set[bytes]:
    return {tag.strip().removeprefix(b"W/") for tag in header.split(b",")}


def _cache_control(relative: str) -> bytes:
    if relative in NO_CACHE_FILES:
        return NO_CACHE
    return IMMUTABLE if relative.startswith("assets/") else SHORT_CACHE


def _content_type(path: Path) -> bytes:
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known is None:
        known = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return known.encode("ascii")


def _text(request: server.Request, status: int, body: bytes) -> None:
    write_body(request, status, body, b"text/plain; charset=utf-8")
