"""The HTTP transport under every API: the Site, its Request class, response writing, access log.

Kept apart from `client_api.http` (routing, authentication, handlers) because nothing here knows
about routes: it enforces request body limits while the body is still arriving, writes JSON and
error responses with the CORS headers, and logs one line per request.
"""

from __future__ import annotations

import io
import json
import logging
import weakref
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IReactorTime
from twisted.web import http, server
from twisted.web.resource import IResource

from homeserver.errors import Codes, MatrixError

logger = logging.getLogger(__name__)

# "Web Browser Clients" in the client-server spec: on every response, not only pre-flights.
# HEAD and Date go beyond the spec's recommended values because we serve HEAD and browsers
# may send Date.
CORS_HEADERS: dict[bytes, bytes] = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
}

# Clients (and proxies in between) must never reuse an API answer: /sync, /messages and the
# rest change from one call to the next.
JSON_CACHE_CONTROL = b"no-cache, no-store, must-revalidate"

# Past the body limit we keep reading (and discarding) this much more, so that a client still
# sending its body reads our 413 rather than a connection reset. Beyond it, or when the declared
# length already exceeds it, the connection is closed: reading gigabytes to say no is not worth it.
DRAIN_ALLOWANCE = 4 * 1024 * 1024


class BodyLimited(Protocol):
    """A resource that knows the body limit of each of its routes (JsonResource does)."""

    def body_limit_for(self, method: bytes, path: bytes) -> int: ...


# -- responses -----------------------------------------------------------------------------------


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the way Matrix servers answer."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (accepted from some client's "\ud800") cannot be UTF-8; its \u escape
        # is still valid JSON, so fall back to escaping instead of failing the whole response.
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def apply_cors(request: server.Request) -> None:
    for name, value in CORS_HEADERS.items():
        request.setHeader(name, value)


def write_body(
    request: server.Request,
    status: int,
    body: bytes,
    content_type: bytes | str,
    headers: dict[str, str] | None = None,
) -> None:
    """Writes a complete response; does nothing if the client has gone away meanwhile."""
    if request._disconnected or request.finished:
        return
    request.setResponseCode(status)
    for name, value in (headers or {}).items():
        request.setHeader(name, value)
    request.setHeader(b"Content-Type", content_type)
    # An explicit length keeps HTTP/1.1 connections reusable without chunking, and is the
    # right answer for HEAD too (Twisted drops the body of a HEAD response itself).
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)
    request.finish()


def write_json(
    request: server.Request, status: int, obj: Any, headers: dict[str, str] | None = None
) -> None:
    request.setHeader(b"Cache-Control", JSON_CACHE_CONTROL)
    write_body(request, status, encode_json(obj), b"application/json", headers)


def write_error(request: server.Request, error: MatrixError) -> None:
    write_json(request, error.http_status, error.to_json(), error.headers)


def too_large_error(limit: int) -> MatrixError:
    return MatrixError(413, Codes.TOO_LARGE, f"Request body is larger than {limit} bytes")


# -- request facts -------------------------------------------------------------------------------


def client_ip(request: http.Request, x_forwarded: bool) -> str:
    """The client's address: X-Forwarded-For's first entry behind a proxy, else the peer's.

    Only honoured when the listener says it sits behind a reverse proxy (`x_forwarded`):
    otherwise any client could claim any address and escape per-IP rate limits.
    """
    if x_forwarded:
        values = request.requestHeaders.getRawHeaders(b"X-Forwarded-For")
        if values:
            first = values[0].split(b",", 1)[0].strip()
            if first:
                return first.decode("ascii", "replace")
    address = request.getClientAddress()
    return str(getattr(address, "host", "-"))


def loggable_uri(uri: bytes) -> str:
    """The request target with any access_token parameter removed, safe to write to logs."""
    path, sep, query = uri.partition(b"?")
    if sep:
        kept = [p for p in query.split(b"&") if not _is_access_token_param(p)]
        path = path + b"?" + b"&".join(kept) if kept else path
    return printable(path)


def printable(value: bytes | str) -> str:
    """Escapes non-ASCII and control characters, so that client input cannot forge log lines."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return text.encode("unicode_escape").decode("ascii")


def _is_access_token_param(param: bytes) -> bool:
    name = param.split(b"=", 1)[0].replace(b"+", b" ")
    return unquote_to_bytes(name) == b"access_token"


# -- the Request and the Site --------------------------------------------------------------------


class HomeserverRequest(server.Request):
    """A Request that refuses oversized bodies without buffering them, and logs itself.

    The limit is decided in gotLength, as soon as the headers are in: the channel has parsed
    the request line by then (HTTPChannel keeps it in `_command`/`_path` until the body is
    complete), so the Site can look up the route's own limit, e.g. a larger one for media.
    """

    # Set by the API layer once it knows who is calling, for the access log.
    authenticated_user: str | None = None
    drain_allowance: int = DRAIN_ALLOWANCE

    def __init__(self, channel: http.HTTPChannel, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        self.start_time = _reactor_of(channel).seconds()
        self.body_limit: int | None = None
        self.body_too_large = False
        self._received = 0
        # True once we answered (or dropped the connection) before the body was complete.
        self._refused = False
        self._early_method: bytes | None = None
        self._early_uri: bytes | None = None

    # Called by the channel once the headers are parsed, before any body arrives.
    def gotLength(self, length: int | None) -> None:
        channel = self.channel
        self._early_method = getattr(channel, "_command", None)
        self._early_uri = getattr(channel, "_path", None)
        site = getattr(channel, "site", None)
        limit_for = getattr(site, "body_limit_for", None)
        self.body_limit = limit_for(self._early_method, self._early_uri) if limit_for else None
        if self.body_limit is None or length is None or length <= self.body_limit:
            super().gotLength(length)
            return
        # Declared too large: store nothing, whatever else happens.
        self.body_too_large = True
        self.content = io.BytesIO()
        if length > self.body_limit + self.drain_allowance or self._expects_continue():
            self._refuse_now()

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        limit = self.body_limit
        if limit is None or (self._received <= limit and not self.body_too_large):
            super().handleContentChunk(data)
            return
        if not self.body_too_large:
            # A chunked body just crossed the limit: free what was stored so far.
            self.body_too_large = True
            self.content.seek(0)
            self.content.truncate()
        if self._received > limit + self.drain_allowance:
            logger.warning(
                "Dropping connection from %s: request body over %d bytes", self._peer(), limit
            )
            self._refused = True
            self.channel.transport.abortConnection()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return  # already answered, or the connection is being dropped
        super().requestReceived(command, path, version)

    def process(self) -> None:
        if self.body_too_large:
            # Answered here rather than by the resource so that no resource ever sees a
            # truncated body, whatever it is.
            self.site = self.channel.site
            apply_cors(self)
            write_error(self, too_large_error(self.body_limit or 0))
            return
        super().process()

    def connectionLost(self, reason: Any) -> None:
        log_request = getattr(_site_of(self), "log_request", None)
        if not self.finished and log_request is not None:
            log_request(self, disconnected=True)
        super().connectionLost(reason)

    def _expects_continue(self) -> bool:
        expect = self.requestHeaders.getRawHeaders(b"Expect")
        return bool(expect) and expect[0].lower() == b"100-continue"

    def _refuse_now(self) -> None:
        """Answers 413 while the headers are being processed, then closes the connection.

        Only done when the client will not be sending the body yet (it waits for "100 Continue")
        or when the body is too big to drain. The channel never handed us the request line, so
        fill it in for the status line and the log; closing makes the channel stop parsing.
        """
        channel = self.channel
        self._refused = True
        self.method = self._early_method or b"-"
        self.uri = self._early_uri or b"-"
        self.path = self.uri.split(b"?", 1)[0]
        self.clientproto = getattr(channel, "_version", b"HTTP/1.1")
        # No "100 Continue" after our final answer.
        self.requestHeaders.removeHeader(b"Expect")
        channel.persistent = False
        self.setHeader(b"Connection", b"close")
        apply_cors(self)
        write_error(self, too_large_error(self.body_limit or 0))

    def _peer(self) -> str:
        return str(getattr(self.getClientAddress(), "host", "-"))


class HomeserverSite(server.Site):
    """A Site with body limits per route and a stdlib-logging access log (Twisted's is off)."""

    def __init__(
        self,
        resource: IResource,
        *,
        max_body_size: int,
        x_forwarded: bool,
        access_log_name: str = "homeserver.access",
        reactor: IReactorTime | None = None,
    ) -> None:
        # Form parsing off: Twisted would otherwise decode urlencoded/multipart POST bodies into
        # request.args, mixing body fields into the query parameters.
        super().__init__(
            resource,
            requestFactory=HomeserverRequest,
            parsePOSTFormSubmission=False,
            reactor=reactor,
        )
        self.max_body_size = max_body_size
        self.x_forwarded = x_forwarded
        self.access_logger = logging.getLogger(access_log_name)
        # Connections we accepted (weakly held: a closed one simply disappears), so that a
        # stopping server can close those its peers keep alive.
        self.open_connections: weakref.WeakSet[Any] = weakref.WeakSet()

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            self.open_connections.add(protocol)
        return protocol

    def close_connections(self) -> int:
        """Aborts every open connection; how many there were (they close on the next turn of
        the reactor)."""
        closed = 0
        for protocol in list(self.open_connections):
            # Site builds a wrapper that picks HTTP/1.1 or HTTP/2; the transport is its channel's.
            channel = getattr(protocol, "_channel", protocol)
            transport = getattr(channel, "transport", None)
            if transport is None or getattr(transport, "disconnected", False):
                continue
            transport.abortConnection()
            closed += 1
        return closed

    def startFactory(self) -> None:
        # Skip Twisted's access-log file and its once-a-second date refresh: we log ourselves.
        pass

    def body_limit_for(self, method: bytes | None, uri: bytes | None) -> int:
        """The body limit for a request: its route's, when a BodyLimited resource serves it."""
        if method is None or uri is None:
            return self.max_body_size
        path = uri.split(b"?", 1)[0]
        owner = _body_limited_resource(self.resource, path)
        return owner.body_limit_for(method, path) if owner else self.max_body_size

    def log(self, request: http.Request) -> None:
        # Called by Request.finish.
        self.log_request(request, disconnected=False)

    def log_request(self, request: http.Request, *, disconnected: bool) -> None:
        # A request refused or dropped before its body was complete never got its request
        # line from the channel: HomeserverRequest kept a copy.
        method = request.method
        if method == http.Request.method:
            method = getattr(request, "_early_method", None) or b"-"
        uri = request.uri
        if uri == http.Request.uri:
            uri = getattr(request, "_early_uri", None) or b"-"
        user = getattr(request, "authenticated_user", None) or "-"
        elapsed_ms = (self.reactor.seconds() - getattr(request, "start_time", 0.0)) * 1000
        # 499 is nginx's "client closed request": there was no response status to log.
        status = 499 if disconnected else request.code
        self.access_logger.info(
            "%s %s %s %s %d %dB %dms",
            printable(client_ip(request, self.x_forwarded)),
            printable(user),
            printable(method),
            loggable_uri(uri),
            status,
            request.sentLength,
            elapsed_ms,
        )


def make_site(
    resource_tree: IResource,
    *,
    max_body_size: int,
    x_forwarded: bool,
    access_log_name: str = "homeserver.access",
    reactor: IReactorTime | None = None,
) -> HomeserverSite:
    """The Site for one listener. Body limits per route come from the JsonResources in the tree."""
    return HomeserverSite(
        resource_tree,
        max_body_size=max_body_size,
        x_forwarded=x_forwarded,
        access_log_name=access_log_name,
        reactor=reactor,
    )


def _body_limited_resource(root: Any, path: bytes) -> BodyLimited | None:
    """Follows the tree's static children (putChild) along `path` to a BodyLimited resource.

    Only static children: calling getChild here could run application code before the body.
    """
    node = root
    segments = path.split(b"/")[1:]
    for segment in [*segments, None]:
        if callable(getattr(node, "body_limit_for", None)):
            return node
        children = getattr(node, "children", None)
        if segment is None or not children:
            return None
        node = children.get(unquote_to_bytes(segment))
        if node is None:
            return None
    return None


def _reactor_of(channel: Any) -> IReactorTime:
    site = getattr(channel, "site", None)
    reactor = getattr(site, "reactor", None)
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    return reactor


def _site_of(request: HomeserverRequest) -> Any:
    return getattr(request, "site", None) or getattr(request.channel, "site", None)
