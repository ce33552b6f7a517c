"""Relations, threads, event context and timestamp_to_event: reading a room around one event."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError, not_found
from homeserver.relations.relations import RelationsHandler, RelationsRequest
from homeserver.relations.threads import ThreadsHandler
from homeserver.rooms.context import ContextHandler
from homeserver.sync.filtering import EventFilter, parse_event_filter
from homeserver.sync.tokens import decode_pagination_token

if TYPE_CHECKING:
    from homeserver.server import HomeServer

DEFAULT_RELATIONS_LIMIT = 5
DEFAULT_THREADS_LIMIT = 5
MAX_THREADS_LIMIT = 100
DEFAULT_CONTEXT_LIMIT = 10
MAX_CONTEXT_LIMIT = 100


def _user(request: ApiRequest) -> tuple[str, str | None]:
    assert request.requester is not None
    # No ID or type holds NUL, and PostgreSQL refuses it in a query parameter.
    if any("\x00" in value for value in request.path_params.values()):
        raise MatrixError(400, Codes.INVALID_PARAM, "Path parameters may not contain NUL")
    return request.requester.user_id, request.requester.device_id


def _room_id(request: ApiRequest) -> str:
    room_id = request.path_params["roomId"]
    if not room_id.startswith("!"):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not a room ID")
    return room_id


def _position(request: ApiRequest, name: str) -> int | None:
    token = request.query_str(name)
    return decode_pagination_token(token) if token else None


def _direction(request: ApiRequest, *, required: bool) -> bool:
    """True for backwards ("b", the default where there is one)."""
    direction = request.query_str("dir", "b", required=required)
    if direction not in ("b", "f"):
        raise MatrixError(400, Codes.INVALID_PARAM, "dir must be 'b' or 'f'")
    return direction == "b"


def _event_filter(request: ApiRequest) -> EventFilter:
    raw = request.query_str("filter")
    if not raw:
        return EventFilter()
    try:
        value = json.loads(raw)
    except ValueError:
        raise MatrixError(400, Codes.NOT_JSON, "filter is not valid JSON") from None
    return parse_event_filter(value, "filter")


def register_routes(router: Router, hs: HomeServer) -> None:
    relations = RelationsHandler(hs.storage, hs.clock)
    threads = ThreadsHandler(hs.storage, hs.clock)
    context = ContextHandler(hs.storage, hs.clock)
    max_limit = hs.config.pagination_max_limit

    async def get_relations(request: ApiRequest) -> tuple[int, Any]:
        user_id, device_id = _user(request)
        event_id = request.path_params["eventId"]
        if not event_id.startswith("$"):
            raise not_found("Event not found")
        limit = request.query_int("limit", DEFAULT_RELATIONS_LIMIT, minimum=0) or 0
        recurse = request.query_bool("recurse") if request.query_str("recurse") else None
        relations_request = RelationsRequest(
            room_id=_room_id(request),
            event_id=event_id,
            rel_type=request.path_params.get("relType"),
            event_type=request.path_params.get("eventType"),
            from_position=_position(request, "from"),
            to_position=_position(request, "to"),
            limit=max(1, min(limit, max_limit)),
            backwards=_direction(request, required=False),
            recurse=recurse,
        )
        return 200, await relations.get_relations(user_id, device_id, relations_request)

    async def list_threads(request: ApiRequest) -> tuple[int, Any]:
        user_id, device_id = _user(request)
        include = request.query_str("include", "all")
        if include not in ("all", "participated"):
            raise MatrixError(400, Codes.INVALID_PARAM, "include must be 'all' or 'participated'")
        limit = request.query_int("limit", DEFAULT_THREADS_LIMIT, minimum=1) or 1
        response = await threads.list_threads(
            user_id,
            device_id,
            _room_id(request),
            participated_only=include == "participated",
            from_position=_position(request, "from"),
            limit=min(limit, MAX_THREADS_LIMIT),
        )
        return 200, response

    async def get_context(request: ApiRequest) -> tuple[int, Any]:
        user_id, device_id = _user(request)
        limit = request.query_int("limit", DEFAULT_CONTEXT_LIMIT, minimum=0) or 0
        response = await context.get_context(
            user_id,
            device_id,
            _room_id(request),
            request.path_params["eventId"],
            min(limit, MAX_CONTEXT_LIMIT),
            _event_filter(request),
        )
        return 200, response

    async def timestamp_to_event(request: ApiRequest) -> tuple[int, Any]:
        user_id, _ = _user(request)
        ts = request.query_int("ts", required=True)
        backwards = _direction(request, required=True)
        assert ts is not None
        return 200, await context.timestamp_to_event(
            user_id, _room_id(request), ts, forwards=not backwards
        )

    for suffix in ("", "/{relType}", "/{relType}/{eventType}"):
        router.add_client(
            "GET",
            f"/rooms/{{roomId}}/relations/{{eventId}}{suffix}",
            get_relations,
            versions=("v1",),
        )
    router.add_client("GET", "/rooms/{roomId}/threads", list_threads, versions=("v1",))
    router.add_client("GET", "/rooms/{roomId}/context/{eventId}", get_context, allow_guest=True)
    router.add_client(
        "GET", "/rooms/{roomId}/timestamp_to_event", timestamp_to_event, versions=("v1",)
    )
