"""Typing, receipts, read markers and presence: /rooms/{roomId}/typing/{userId},
/rooms/{roomId}/receipt/{receiptType}/{eventId}, /rooms/{roomId}/read_markers and
/presence/{userId}/status. The services behind them are in homeserver/ephemeral."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.ephemeral.common import check_room_id
from homeserver.ephemeral.presence import STATES
from homeserver.ephemeral.receipts import FULLY_READ, MAIN_THREAD, RECEIPT_TYPES
from homeserver.errors import Codes, MatrixError, bad_json, forbidden
from homeserver.identifiers import check_user_id

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# A presence body is a state and a short message; nothing needs the default 10 MiB.
MAX_PRESENCE_BODY = 64 * 1024


def _requester(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


def _only_self(request: ApiRequest, what: str) -> str:
    user_id = _requester(request)
    if request.path_params["userId"] != user_id:
        raise forbidden(f"Cannot set the {what} of another user")
    return user_id


def _text(value: str, key: str) -> str:
    """Refuses lone surrogates (from "\\ud800" escapes): they cannot be stored as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_json(f"'{key}' must be valid Unicode") from None
    return value


def _typing_body(request: ApiRequest) -> tuple[bool, int | None]:
    body = request.json()
    typing = body.get("typing")
    if not isinstance(typing, bool):
        raise bad_json("'typing' must be a boolean")
    timeout = body.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0
    ):
        raise bad_json("'timeout' must be a non-negative integer (milliseconds)")
    return typing, timeout


def _thread_id(body: dict[str, Any], receipt_type: str) -> str | None:
    """The receipt's thread: absent (unthreaded), "main" or a thread root's event ID."""
    if "thread_id" not in body:
        return None
    thread_id = body["thread_id"]
    if not isinstance(thread_id, str) or not thread_id:
        raise MatrixError(400, Codes.INVALID_PARAM, "thread_id field must be a non-empty string")
    _text(thread_id, "thread_id")
    if receipt_type == FULLY_READ:
        raise MatrixError(400, Codes.INVALID_PARAM, "thread_id is not compatible with m.fully_read")
    if thread_id != MAIN_THREAD and not thread_id.startswith("$"):
        raise MatrixError(
            400, Codes.INVALID_PARAM, "thread_id must be 'main' or a thread root's event ID"
        )
    return thread_id


def _read_markers_body(request: ApiRequest) -> dict[str, str]:
    body = request.json()
    markers = {}
    for key in (FULLY_READ, *RECEIPT_TYPES):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise bad_json(f"'{key}' must be an event ID")
        markers[key] = _text(value, key)
    return markers


def _presence_body(request: ApiRequest) -> tuple[str, str | None]:
    body = request.json()
    state = body.get("presence")
    if state not in STATES:
        raise bad_json(f"'presence' must be one of {', '.join(STATES)}")
    status_msg = body.get("status_msg")
    if status_msg is not None and not isinstance(status_msg, str):
        raise bad_json("'status_msg' must be a string")
    return state, None if status_msg is None else _text(status_msg, "status_msg")


def register_routes(router: Router, hs: HomeServer) -> None:
    ephemeral = hs.ephemeral

    async def set_typing(request: ApiRequest) -> tuple[int, Any]:
        user_id = _only_self(request, "typing state")
        room_id = check_room_id(request.path_params["roomId"])
        typing, timeout = _typing_body(request)
        await ephemeral.typing.set_typing(user_id, room_id, typing, timeout)
        return 200, {}

    async def post_receipt(request: ApiRequest) -> tuple[int, Any]:
        room_id = check_room_id(request.path_params["roomId"])
        receipt_type = request.path_params["receiptType"]
        if receipt_type not in (*RECEIPT_TYPES, FULLY_READ):
            raise MatrixError(
                400,
                Codes.INVALID_PARAM,
                f"Receipt type must be one of {', '.join((*RECEIPT_TYPES, FULLY_READ))}",
            )
        # Older clients post no body at all; that is an unthreaded receipt.
        body = request.json() if request.body.strip() else {}
        thread_id = _thread_id(body, receipt_type)
        await ephemeral.receipts.post_receipt(
            _requester(request), room_id, receipt_type, request.path_params["eventId"], thread_id
        )
        return 200, {}

    async def read_markers(request: ApiRequest) -> tuple[int, Any]:
        room_id = check_room_id(request.path_params["roomId"])
        markers = _read_markers_body(request)
        await ephemeral.receipts.set_read_markers(_requester(request), room_id, markers)
        return 200, {}

    async def get_presence(request: ApiRequest) -> tuple[int, Any]:
        user_id = check_user_id(request.path_params["userId"], "userId")
        return 200, await ephemeral.presence.get_presence(_requester(request), user_id)

    async def put_presence(request: ApiRequest) -> tuple[int, Any]:
        user_id = _only_self(request, "presence")
        state, status_msg = _presence_body(request)
        await ephemeral.presence.set_presence(user_id, state, status_msg)
        return 200, {}

    router.add_client("PUT", "/rooms/{roomId}/typing/{userId}", set_typing)
    router.add_client("POST", "/rooms/{roomId}/receipt/{receiptType}/{eventId}", post_receipt)
    router.add_client("POST", "/rooms/{roomId}/read_markers", read_markers)
    router.add_client("GET", "/presence/{userId}/status", get_presence)
    router.add_client(
        "PUT", "/presence/{userId}/status", put_presence, max_body_size=MAX_PRESENCE_BODY
    )
