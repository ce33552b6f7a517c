"""The API layer shared by the client API (and later federation and media): routes, requests,
authentication, rate limits, and turning results and errors into JSON responses.

A handler is `async def handler(request: ApiRequest) -> (status, json_body) | Response`.
It raises MatrixError for anything the client should see; everything else becomes a 500.
The transport underneath (Site, Request, body limits, access log) is in `client_api.http_site`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource

from client_api.http_site import (
    JSON_CACHE_CONTROL,
    HomeserverRequest,
    HomeserverSite,
    apply_cors,
    client_ip,
    encode_json,
    make_site,
    printable,
    too_large_error,
    write_body,
)
from homeserver.accounts.auth import Requester
from homeserver.clock import Clock
from homeserver.errors import Codes, InteractiveAuthRequired, MatrixError
from homeserver.events.canonical_json import parse_json_object
from homeserver.ratelimit import RateLimiters

__all__ = [
    "ApiRequest",
    "Handler",
    "HomeserverRequest",
    "HomeserverSite",
    "JsonResource",
    "Requester",
    "Response",
    "Route",
    "Router",
    "make_site",
    "split_path",
]

logger = logging.getLogger(__name__)

# "federation": the X-Matrix signature of another server (federation/inbound_auth.py).
AuthMode = Literal["required", "optional", "none", "federation"]

# Methods whose body we hand to handlers; DELETE included (DELETE /devices/{id} carries auth).
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_INT_RE = re.compile(r"-?[0-9]{1,18}")
_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Response:
    """A non-JSON answer (media), or JSON with extra headers via `Response.json`."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, encode_json(obj), "application/json", dict(headers or {}))


Handler = Callable[["ApiRequest"], Awaitable["tuple[int, Any] | Response"]]
Authenticator = Callable[[str, "ApiRequest"], Awaitable[Requester]]
# Checks a request's X-Matrix signature; answers the origin server's name.
ServerAuthenticator = Callable[["ApiRequest"], Awaitable[str]]


# -- the request as handlers see it ----------------------------------------------------------------


class ApiRequest:
    """One API call: decoded path parameters and query, headers, body, and who is calling."""

    def __init__(
        self,
        request: server.Request,
        *,
        method: str,
        path: str,
        path_params: dict[str, str],
        client_ip: str,
    ) -> None:
        self.raw = request  # the Twisted request, for the rare handler that needs it
        self.method = method
        self.path = path
        self.path_params = path_params
        self.client_ip = client_ip
        self.headers: Headers = request.requestHeaders
        self.user_agent = self.header("User-Agent") or ""
        self.args = _decode_args(request.args or {})
        # Taken out of args so that handlers logging their arguments cannot leak it.
        token_args = self.args.pop("access_token", None)
        self._query_token = token_args[0] if token_args else None
        self.requester: Requester | None = None
        self.origin: str | None = None  # the calling server, on federation routes
        self.access_token: str | None = None
        self.body = _read_body(request) if method in _METHODS_WITH_BODY else b""
        self._json: dict[str, Any] | None = None

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name.encode("ascii"))
        return values[0].decode("utf-8", "replace") if values else None

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (400 M_NOT_JSON / M_BAD_JSON otherwise), parsed once."""
        if self._json is None:
            self._json = parse_json_object(self.body)
        return self._json

    def query_str(
        self, name: str, default: str | None = None, *, required: bool = False
    ) -> str | None:
        values = self.args.get(name)
        if not values:
            if required:
                raise MatrixError(
                    400, Codes.MISSING_PARAM, f"Missing required query parameter: {name}"
                )
            return default
        return values[0]

    def query_int(
        self,
        name: str,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        required: bool = False,
    ) -> int | None:
        """An integer parameter; out of [minimum, maximum] is 400 M_INVALID_PARAM, not clamped."""
        text = self.query_str(name, required=required)
        if text is None:
            return default
        # Stricter than int(): no whitespace, "+", "_" or absurd lengths.
        if not _INT_RE.fullmatch(text):
            raise _invalid_param(name, "an integer")
        value = int(text)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise _invalid_param(name, f"an integer in [{minimum}, {maximum}]")
        return value

    def query_bool(self, name: str, default: bool = False) -> bool:
        text = self.query_str(name)
        if text is None:
            return default
        if text == "true":
            return True
        if text == "false":
            return False
        raise _invalid_param(name, "'true' or 'false'")

    def query_list(self, name: str) -> list[str]:
        return list(self.args.get(name, ()))


def _invalid_param(name: str, expected: str) -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, f"Query parameter {name!r} must be {expected}")


def _decode_args(raw: dict[bytes, list[bytes]]) -> dict[str, list[str]]:
    try:
        args = {k.decode("utf-8"): [v.decode("utf-8") for v in vs] for k, vs in raw.items()}
    except UnicodeDecodeError:
        raise MatrixError(400, Codes.INVALID_PARAM, "Query string is not valid UTF-8") from None
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in args.items()):
        raise _nul_error()
    return args


def _nul_error() -> MatrixError:
    # No identifier or parameter may contain NUL, and PostgreSQL text cannot store one.
    return MatrixError(400, Codes.INVALID_PARAM, "NUL characters are not allowed")


def _read_body(request: server.Request) -> bytes:
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    return content.read()


# -- routing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    auth: AuthMode
    allow_guest: bool
    ratelimit: str | None
    max_body_size: int | None
    params: tuple[tuple[int, str], ...]  # (segment index, name) of each {name} segment


class _Node:
    """A trie over path segments; literal children are tried before the parameter child."""

    __slots__ = ("literals", "param", "routes")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.routes: dict[str, Route] = {}


class Router:
    """Method + path pattern -> handler. Patterns are literal segments and {name} segments."""

    def __init__(self) -> None:
        self._root = _Node()

    def add(
        self,
        methods: str | Iterable[str],
        pattern: str,
        handler: Handler,
        *,
        auth: AuthMode = "required",
        allow_guest: bool = False,
        ratelimit: str | None = None,
        max_body_size: int | None = None,
    ) -> None:
        if auth not in ("required", "optional", "none", "federation"):
            raise ValueError(f"auth must be 'required', 'optional', 'none' or 'federation', not {auth!r}")
        node, params = self._node_for(pattern)
        for method in [methods] if isinstance(methods, str) else methods:
            method = method.upper()
            if method in node.routes:
                raise ValueError(f"{method} {pattern} is already registered")
            node.routes[method] = Route(
                method, pattern, handler, auth, allow_guest, ratelimit, max_body_size, params
            )

    def add_client(
        self,
        methods: str | Iterable[str],
        path: str,
        handler: Handler,
        *,
        versions: Sequence[str] = ("v3", "r0"),
        **kwargs: Any,
    ) -> None:
        """Registers `path` under /_matrix/client/<version> for each version."""
        methods = [methods] if isinstance(methods, str) else list(methods)
        for version in versions:
            self.add(methods, f"/_matrix/client/{version}{path}", handler, **kwargs)

    def routes(self) -> list[Route]:
        found: list[Route] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            found.extend(node.routes.values())
            stack.extend(node.literals.values())
            stack.extend([node.param] if node.param else [])
        return found

    def find(self, method: str, segments: Sequence[str]) -> tuple[Route, dict[str, str]]:
        """The route for decoded path segments; 404/405 M_UNRECOGNIZED when there is none.

        Literal segments win over {param} ones, leftmost first; among the paths that match,
        the first that has `method` is used, so a param route can still serve a method that the
        literal route lacks. HEAD falls back to GET.
        """
        allowed: set[str] = set()
        route = _search(self._root, segments, 0, method, allowed)
        if route is None and method == "HEAD":
            route = _search(self._root, segments, 0, "GET", allowed)
        if route is None:
            if not allowed:
                raise MatrixError(404, Codes.UNRECOGNIZED, "Unrecognized request")
            raise _method_not_allowed(allowed)
        return route, {name: segments[i] for i, name in route.params}

    def _node_for(self, pattern: str) -> tuple[_Node, tuple[tuple[int, str], ...]]:
        if not pattern.startswith("/"):
            raise ValueError(f"pattern must start with '/': {pattern!r}")
        node = self._root
        params: list[tuple[int, str]] = []
        for index, segment in enumerate(pattern.split("/")[1:]):
            match = _PARAM_RE.fullmatch(segment)
            if match:
                if match[1] in {name for _, name in params}:
                    raise ValueError(f"duplicate parameter {{{match[1]}}} in {pattern!r}")
                params.append((index, match[1]))
                node.param = node.param or _Node()
                node = node.param
            elif "{" in segment or "}" in segment:
                raise ValueError(f"bad segment {segment!r} in {pattern!r}")
            else:
                node = node.literals.setdefault(segment, _Node())
        return node, tuple(params)


def _search(
    node: _Node, segments: Sequence[str], index: int, method: str, allowed: set[str]
) -> Route | None:
    if index == len(segments):
        allowed.update(node.routes)
        return node.routes.get(method)
    child = node.literals.get(segments[index])
    if child is not None:
        route = _search(child, segments, index + 1, method, allowed)
        if route is not None:
            return route
    if node.param is not None:
        return _search(node.param, segments, index + 1, method, allowed)
    return None


def _method_not_allowed(allowed: set[str]) -> MatrixError:
    methods = set(allowed) | {"OPTIONS"} | ({"HEAD"} if "GET" in allowed else set())
    return MatrixError(
        405,
        Codes.UNRECOGNIZED,
        "Unrecognized request",
        headers={"Allow": ", ".join(sorted(methods))},
    )


def split_path(raw_path: bytes) -> list[str]:
    """Percent-decodes each segment after splitting, so "%2F" inside a segment stays in it."""
    try:
        segments = [unquote_to_bytes(s).decode("utf-8") for s in raw_path.split(b"/")[1:]]
    except UnicodeDecodeError:
        raise MatrixError(400, Codes.INVALID_PARAM, "Path is not valid UTF-8") from None
    if any("\x00" in segment for segment in segments):
        raise _nul_error()
    return segments


# -- the resource ------------------------------------------------------------------------------


class _Disconnect:
    """Cancels the handler when the client goes away, so long-polls stop waiting."""

    def __init__(self) -> None:
        self.happened = False
        self.deferred: defer.Deferred[None] | None = None

    def on_lost(self, _reason: Failure) -> None:
        self.happened = True
        if self.deferred is not None:
            self.deferred.cancel()


class JsonResource(Resource):
    """Serves a Router's routes. Mount it anywhere: routes match the full request path."""

    isLeaf = True

    def __init__(
        self,
        router: Router,
        *,
        authenticator: Authenticator,
        clock: Clock,
        rate_limiters: RateLimiters | None,
        x_forwarded: bool,
        max_body_size: int,
        server_authenticator: ServerAuthenticator | None = None,
    ) -> None:
        super().__init__()
        self.router = router
        self.authenticator = authenticator
        self.server_authenticator = server_authenticator
        self.clock = clock
        self.rate_limiters = rate_limiters
        self.x_forwarded = x_forwarded
        self.max_body_size = max_body_size
        self._check_rate_limiter_names()

    def body_limit_for(self, method: bytes, path: bytes) -> int:
        """Consulted by HomeserverSite as soon as a request's headers are in."""
        try:
            route, _ = self.router.find(method.decode("ascii"), split_path(path))
        except (MatrixError, UnicodeDecodeError):
            return self.max_body_size
        return route.max_body_size if route.max_body_size is not None else self.max_body_size

    def render(self, request: server.Request) -> int:
        apply_cors(request)
        if request.method == b"OPTIONS":
            # The spec forbids running endpoint logic for OPTIONS: no auth, no routing.
            # 204 has no body and, per RFC 9110, no Content-Length either.
            request.setResponseCode(204)
            request.finish()
            return server.NOT_DONE_YET
        disconnect = _Disconnect()
        # Registered before the handler starts, so a synchronous finish cannot outrun it.
        request.notifyFinish().addErrback(disconnect.on_lost)
        d = defer.ensureDeferred(self._respond(request, disconnect))
        disconnect.deferred = d
        d.addErrback(_log_unhandled, request)
        return server.NOT_DONE_YET

    async def _respond(self, request: server.Request, disconnect: _Disconnect) -> None:
        try:
            response = await self._dispatch(request)
        except defer.CancelledError:
            if disconnect.happened:
                logger.debug("Client went away during %s", _describe(request))
                return
            logger.error("Handler cancelled: %s", _describe(request), exc_info=True)
            response = _internal_error()
        except MatrixError as e:
            if e.http_status >= 500:
                logger.warning("%s -> %d %s: %s", _describe(request), e.http_status, e.errcode, e)
            response = Response.json(e.http_status, e.to_json(), e.headers)
        except InteractiveAuthRequired as e:
            response = Response.json(401, e.body)
        except Exception:
            logger.exception("Failed to handle %s", _describe(request))
            response = _internal_error()
        if not disconnect.happened:
            _write_response(request, response)

    async def _dispatch(self, request: server.Request) -> Response:
        method = request.method.decode("ascii", "replace")
        segments = split_path(request.path)
        route, params = self.router.find(method, segments)
        limit = route.max_body_size if route.max_body_size is not None else self.max_body_size
        if _body_length(request) > limit:
            # Only reachable under a plain Site; HomeserverSite refuses these earlier.
            raise too_large_error(limit)
        api_request = ApiRequest(
            request,
            method=method,
            path="/" + "/".join(segments),
            path_params=params,
            client_ip=client_ip(request, self.x_forwarded),
        )
        await self._authenticate(route, api_request)
        self._ratelimit(route, api_request)
        result = await route.handler(api_request)
        return _as_response(result)

    async def _authenticate(self, route: Route, request: ApiRequest) -> None:
        if route.auth == "none":
            return
        if route.auth == "federation":
            if self.server_authenticator is None:
                raise MatrixError(401, Codes.UNAUTHORIZED, "Federation is not served here")
            request.origin = await self.server_authenticator(request)
            return
        token = _access_token(request)
        if token is None:
            if route.auth == "required":
                raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
            return
        request.access_token = token
        requester = await self.authenticator(token, request)
        if requester.is_guest and not route.allow_guest:
            raise MatrixError(
                403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access not allowed for this endpoint"
            )
        request.requester = requester
        # For the access log.
        request.raw.authenticated_user = requester.user_id

    def _ratelimit(self, route: Route, request: ApiRequest) -> None:
        if route.ratelimit is None or self.rate_limiters is None:
            return
        requester = request.requester
        if requester is not None and requester.is_admin:
            return
        key = requester.user_id if requester is not None else request.client_ip
        self.rate_limiters[route.ratelimit].check(key)

    def _check_rate_limiter_names(self) -> None:
        # Fail at start-up rather than with a 500 on the first request to the route.
        if self.rate_limiters is None:
            return
        missing = {r.ratelimit for r in self.router.routes() if r.ratelimit} - set(
            self.rate_limiters
        )
        if missing:
            raise ValueError(f"routes name unknown rate limiters: {sorted(missing)}")


def _access_token(request: ApiRequest) -> str | None:
    """The token from "Authorization: Bearer", else from the deprecated ?access_token=."""
    header = request.header("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MatrixError(401, Codes.MISSING_TOKEN, "Invalid Authorization header")
        return token.strip()
    return request._query_token


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int)):
        raise TypeError(f"handler returned {type(result).__name__}, not (status, body)")
    status, body = result
    if isinstance(body, Response):
        # (status, Response(...)) is accepted too; the tuple's status wins.
        body.status = status
        return body
    return Response.json(status, body)


def _write_response(request: server.Request, response: Response) -> None:
    if response.content_type == "application/json":
        request.setHeader(b"Cache-Control", JSON_CACHE_CONTROL)
    write_body(request, response.status, response.body, response.content_type, response.headers)


def _internal_error() -> Response:
    return Response.json(500, {"errcode": Codes.UNKNOWN, "error": "Internal server error"})


def _body_length(request: server.Request) -> int:
    content = request.content
    if content is None:
        return 0
    content.seek(0, 2)
    return content.tell()


def _describe(request: server.Request) -> str:
    # The path only: the query string may hold an access token.
    return f"{printable(request.method)} {printable(request.path)}"


def _log_unhandled(failure: Failure, request: server.Request) -> None:
    # _respond handles its own errors; this is for bugs in the error handling itself.
    if failure.check(defer.CancelledError):
        return  # the client went away and Twisted reports the cancellation here too
    logger.error(
        "Unhandled error responding to %s",
        _describe(request),
        exc_info=(failure.type, failure.value, failure.getTracebackObject()),
    )
    if not request._disconnected and not request.finished:
        _write_response(request, _internal_error())
