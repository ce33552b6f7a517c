"""Missed-message mail (pushers of `kind: email`): one digest of the notifications a user left
unread for a while, grouped by room."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from homeserver.rooms.current_state import member_display_name, room_name_and_alias
from storage.push_actions import Notification

if TYPE_CHECKING:
    from homeserver.mail.mailer import Mailer
    from storage.pushers import Pusher
    from storage.store import Storage

EMAIL_APP_ID = "m.email"
# Messages listed per room; the count in the mail says how many there are in all.
MAX_LISTED_PER_ROOM = 10


class EmailDigests:
    def __init__(self, storage: Storage, mailer: Mailer, link: str) -> None:
        self.storage = storage
        self.mailer = mailer
        # Where the mail sends the reader: the web client this server serves.
        self.link = link

    async def send(self, pusher: Pusher, unread: Sequence[Notification]) -> None:
        rooms: dict[str, list[dict[str, str]]] = {}
        for note in unread:
            rooms.setdefault(note.room_id, []).append(await self._line(note))
        titles = {room_id: await self._room_title(room_id) for room_id in rooms}
        variables: dict[str, Any] = {
            "user_display_name": await self._display_name(pusher.user_id),
            "count": len(unread),
            "rooms": [
                {"title": titles[room_id], "notifs": lines[-MAX_LISTED_PER_ROOM:]}
                for room_id, lines in rooms.items()
            ],
            "link": self.link,
            "address": pusher.pushkey,
        }
        where = titles[next(iter(rooms))] if len(rooms) == 1 else f"{len(rooms)} rooms"
        subject = f"{len(unread)} unread message{'s' if len(unread) != 1 else ''} in {where}"
        self.mailer.send(pusher.pushkey, subject, "notif_mail", variables)

    async def _line(self, note: Notification) -> dict[str, str]:
        event = await self.storage.events.get_event(note.event_id)
        if event is None:
            return {"sender": "someone", "body": "(a message that is no longer available)"}
        sender = await self._member_name(event.room_id, event.sender)
        body = event.content.get("body")
        if event.type == "m.room.encrypted":
            text = "sent an encrypted message"
        elif event.type == "m.room.member":
            text = "invited you" if event.content.get("membership") == "invite" else "joined"
        elif isinstance(body, str):
            text = body if len(body) <= 300 else body[:297] + "..."
        else:
            text = f"sent {event.type}"
        return {"sender": sender, "body": text}

    async def _member_name(self, room_id: str, user_id: str) -> str:
        return await member_display_name(self.storage, room_id, user_id) or user_id

    async def _room_title(self, room_id: str) -> str:
        name, alias = await room_name_and_alias(self.storage, room_id)
        return name or alias or "a conversation"

    async def _display_name(self, user_id: str) -> str:
        profile = await self.storage.accounts.get_profile(user_id)
        name = profile[0] if profile else None
        return name if isinstance(name, str) and name else user_id
