"""Room tags: /user/{userId}/rooms/{roomId}/tags[/{tag}] (client-server spec, "Room Tagging").

A room's tags are the room account data event `m.tag` {"tags": {tag: {"order": n}}}, so they
reach every device of the user in that room's `account_data` section of /sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError, bad_json, forbidden

if TYPE_CHECKING:
    from homeserver.server import HomeServer

TAG_EVENT = "m.tag"
MAX_TAG_BYTES = 255


def _target(request: ApiRequest) -> tuple[str, str]:
    assert request.requester is not None
    user_id = request.path_params["userId"]
    if user_id != request.requester.user_id:
        raise forbidden("Cannot access the tags of other users")
    room_id = request.path_params["roomId"]
    if not room_id.startswith("!"):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not a room ID")
    return user_id, room_id


def _tag_name(request: ApiRequest) -> str:
    tag = request.path_params["tag"]
    if not tag or len(tag.encode("utf-8")) > MAX_TAG_BYTES:
        raise MatrixError(
            400, Codes.INVALID_PARAM, f"A tag name must be 1 to {MAX_TAG_BYTES} bytes"
        )
    return tag


def _tag_content(request: ApiRequest) -> dict[str, Any]:
    body = request.json()
    order = body.get("order")
    # The spec says a number in [0, 1]; only the type is enforced, as other servers do, so
    # clients that wrote other numbers before keep working.
    if "order" in body and (isinstance(order, bool) or not isinstance(order, int | float)):
        raise bad_json("order must be a number")
    return body


def _tags_of(content: dict[str, Any] | None) -> dict[str, Any]:
    tags = (content or {}).get("tags")
    return dict(tags) if isinstance(tags, dict) else {}


def register_routes(router: Router, hs: HomeServer) -> None:
    store = hs.storage.account_data
    # Tags are read, changed and written back: one change at a time per user, so two devices
    # tagging at once cannot lose one of the tags.
    locks: dict[str, defer.DeferredLock] = {}

    async def update(
        user_id: str, room_id: str, change: Callable[[dict[str, Any]], object]
    ) -> None:
        lock = locks.setdefault(user_id, defer.DeferredLock())
        await lock.acquire()
        try:
            before = _tags_of(await store.get(user_id, room_id, TAG_EVENT))
            tags = dict(before)
            change(tags)
            # An unchanged list is not written: /sync would send every device the same tags.
            if tags != before:
                await store.put(user_id, room_id, TAG_EVENT, {"tags": tags})
                hs.notifier.wake_users([user_id])
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                locks.pop(user_id, None)

    async def get_tags(request: ApiRequest) -> tuple[int, Any]:
        user_id, room_id = _target(request)
        return 200, {"tags": _tags_of(await store.get(user_id, room_id, TAG_EVENT))}

    async def put_tag(request: ApiRequest) -> tuple[int, Any]:
        user_id, room_id = _target(request)
        tag = _tag_name(request)
        content = _tag_content(request)
        await update(user_id, room_id, lambda tags: tags.__setitem__(tag, content))
        return 200, {}

    async def delete_tag(request: ApiRequest) -> tuple[int, Any]:
        user_id, room_id = _target(request)
        tag = request.path_params["tag"]
        # Removing a tag the room does not have is not an error: the result is what was asked.
        await update(user_id, room_id, lambda tags: tags.pop(tag, None))
        return 200, {}

    router.add_client("GET", "/user/{userId}/rooms/{roomId}/tags", get_tags)
    router.add_client("PUT", "/user/{userId}/rooms/{roomId}/tags/{tag}", put_tag)
    router.add_client("DELETE", "/user/{userId}/rooms/{roomId}/tags/{tag}", delete_tag)
