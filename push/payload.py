"""What a push says about a notification: the push gateway API's `notification` object.

Built from plain data (the event, the room's names, the counts), so both the HTTP pusher (to a
push gateway) and the Web Push pusher (straight to the browser's push service) use the same
fields, and tests can check them without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.events.event import Event
from push.evaluator import tweaks


@dataclass(frozen=True)
class PushContext:
    """What the push tells about the room and the user, besides the event itself."""

    user_id: str
    unread_count: int
    sender_display_name: str | None
    room_name: str | None
    room_alias: str | None


def notification(
    event: Event,
    context: PushContext,
    actions: Sequence[Any],
    *,
    event_id_only: bool = False,
    include_content: bool = True,
) -> dict[str, Any]:
    """The `notification` object, without `devices` (each pusher adds its own)."""
    found = tweaks(actions)
    # Anything the user asked to hear or see highlighted is urgent; the rest may wait.
    prio = "high" if found.get("highlight") or "sound" in found else "low"
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "room_id": event.room_id,
        "counts": {"unread": context.unread_count},
        "prio": prio,
    }
    if event_id_only:
        return body
    body["type"] = event.type
    body["sender"] = event.sender
    if context.sender_display_name:
        body["sender_display_name"] = context.sender_display_name
    if context.room_name:
        body["room_name"] = context.room_name
    if context.room_alias:
        body["room_alias"] = context.room_alias
    if event.type == "m.room.member":
        body["user_is_target"] = event.state_key == context.user_id
        body["membership"] = event.content.get("membership")
    if include_content:
        body["content"] = event.content
    return body
