"""Runs the push rules of every local member of a room over each new event, once per event.

A persister preparer: before a batch of new events is written, it decides for each event which
local users it notifies and attaches those decisions (PushActionRow) to the event, so they
commit with it and the unread counts change in the same /sync that brings the event. The
room's state and the members' rulesets are read once per event, from caches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from homeserver.events.event import Event
from homeserver.identifiers import server_of
from homeserver.relations.threads import MAIN_THREAD, thread_of
from homeserver.rooms.power_levels import get_user_power_level
from push.evaluator import EventView, first_match, interpret
from push.rules_service import PushRulesService
from storage.persister import EventToPersist
from storage.push_actions import PushActionRow
from storage.state import RoomSnapshot
from storage.store import Storage

logger = logging.getLogger(__name__)


class BulkPushEvaluator:
    def __init__(
        self,
        server_name: str,
        storage: Storage,
        rules: PushRulesService,
        on_recipients: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        self.server_name = server_name
        self.storage = storage
        self.rules = rules
        # Told (event_id, users notified) for each event: the pushers wake for those users.
        self.on_recipients = on_recipients

    async def prepare(self, items: list[EventToPersist]) -> None:
        """The persister's preparer: fills each item's push_actions."""
        for item in items:
            item.push_actions = await self.evaluate(item.event)
            if item.push_actions and self.on_recipients is not None:
                self.on_recipients(item.event.event_id, [r.user_id for r in item.push_actions])

    async def evaluate(self, event: Event) -> list[PushActionRow]:
        snapshot = await self.storage.state.get_snapshot(event.room_id)
        if snapshot is None:
            return []
        users = self._recipients(event, snapshot)
        if not users:
            return []
        rulesets = await self.rules.rulesets_for(users)
        view = await self._view(event, snapshot)
        names = await self._display_names(
            snapshot, [u for u in users if rulesets[u].needs_display_name]
        )
        rows = []
        thread: str | None = None
        for user_id in users:
            rule = first_match(rulesets[user_id], view, names.get(user_id))
            if rule is None:
                continue
            decision = interpret(rule.actions)
            if not decision.notify:
                continue
            if thread is None:
                thread = await self._thread_id(event)
            rows.append(PushActionRow(user_id, thread, decision.highlight, decision.actions))
        return rows

    def _recipients(self, event: Event, snapshot: RoomSnapshot) -> list[str]:
        """Local members of the room, and a local user being invited; never the sender
        (the spec: no pushes for the user's own events)."""
        users = {
            user for user, membership in snapshot.memberships.items()
            if membership == "join" and server_of(user) == self.server_name
        }
        if event.type == "m.room.member" and event.membership == "invite" and event.state_key:
            if server_of(event.state_key) == self.server_name:
                users.add(event.state_key)
        users.discard(event.sender)
        return sorted(users)

    async def _view(self, event: Event, snapshot: RoomSnapshot) -> EventView:
        levels_id = snapshot.state.get(("m.room.power_levels", ""))
        levels = await self.storage.events.get_event(levels_id) if levels_id else None
        # None (no power levels event at all) is not the same as an empty content.
        power_levels = levels.content if levels is not None else None
        create_id = snapshot.state.get(("m.room.create", ""))
        create = await self.storage.events.get_event(create_id) if create_id else None
        sender_level = (
            get_user_power_level(event.sender, power_levels, create) if create else 0
        )
        notifications = (power_levels or {}).get("notifications")
        return EventView(
            event=_matchable(event),
            member_count=sum(1 for m in snapshot.memberships.values() if m == "join"),
            sender_power_level=int(min(sender_level, 2**62)),
            notification_levels=notifications if isinstance(notifications, Mapping) else {},
        )

    async def _display_names(self, snapshot: RoomSnapshot, users: list[str]) -> dict[str, str]:
        """Room display names, loaded only for users whose rules ask (contains_display_name)."""
        ids = [snapshot.state[("m.room.member", u)] for u in users
               if ("m.room.member", u) in snapshot.state]
        if not ids:
            return {}
        members = await self.storage.events.get_events(ids)
        names = {}
        for member in members.values():
            name = member.content.get("displayname")
            if isinstance(name, str) and name and member.state_key:
                names[member.state_key] = name
        return names

    async def _thread_id(self, event: Event) -> str:
        thread = await thread_of(self.storage, event)
        return thread if isinstance(thread, str) else MAIN_THREAD


def _matchable(event: Event) -> dict[str, Any]:
    """The event's fields that push rule conditions may name."""
    fields: dict[str, Any] = {
        "type": event.type,
        "room_id": event.room_id,
        "sender": event.sender,
        "content": event.content,
    }
    if event.state_key is not None:
        fields["state_key"] = event.state_key
    return fields
